"""REPORT.md: the run's tables beside the paper's, its main figures, the selection result, ARC's decisions on held-out
points (every candidate, the published and the selected ARC: figures.decisions) and per benchmark cell, each stage's
wall time, and each claim of the paper measured on this run (holds / does not hold / cannot tell, with
the numbers).

The claims (paper §4.1-4.3, §5), tested on the medians of the paper's rows (figures.cells):
  1. the decays (CD, CCD, ED) beat BLR at a task's largest LR0 and lose to it at its smallest;
  2. at the smallest LR0, ARC raises the LR (at least half of its runs make a x1.618 decision, read from the runs'
     `multiplying lr by` log lines or their LR column) and wins there (the best median of the paper's rows);
  3. ARC is never the worst of the paper's rows in any task x LR0 column (alone: a tie for the lowest median
     with another schedule is reported, not counted as the worst).
The same tests run on the paper's printed Tables 2-4 (figures/paper_values.csv), as a check of the claims'
wording against the paper's own numbers.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from arc_model.metrics import ACTIONS as ACTION_NAMES, matrix_of, recall_precision
from figures.paper import display, fmt, paper_values, task_label
from figures.plots import action, decision_counts, decisions

DECAYS = ("cd", "ccd", "ed")
HOLDS, FAILS, UNKNOWN = "holds", "does not hold", "cannot tell"


def _better(a: float, b: float, mode: str) -> bool:
    return a > b if mode == "max" else a < b


def _medians(cells: pd.DataFrame, task: str) -> dict[tuple[str, float], float]:
    mine = cells[(cells.task == task) & cells.median_best.notna()]
    return {(r.schedule, r.lr0): r.median_best for r in mine.itertuples()}


def _grid(cells: pd.DataFrame, task: str) -> list[float]:
    mine = cells[(cells.task == task) & cells.schedule.isin(("constant",) + DECAYS + ("arc",))
                 & cells.median_best.notna()]
    return sorted(mine.lr0.unique(), reverse=True)


def _overall(per_task: list[tuple[str, str, str]]) -> str:
    verdicts = [v for _, v, _ in per_task]
    by = lambda word: ", ".join(t for t, v, _ in per_task if v == word)  # noqa: E731
    if FAILS in verdicts:
        held = by(HOLDS)
        return f"{FAILS}" + (f" (holds on {held})" if held else "")
    if HOLDS in verdicts:
        unknown = by(UNKNOWN)
        return HOLDS + (f" (cannot tell on {unknown})" if unknown else "")
    return UNKNOWN


def claim_decays(cells: pd.DataFrame) -> tuple[str, list[tuple[str, str, str]]]:
    """Claim 1, per task: (task, verdict, numbers)."""
    out = []
    for task in sorted(cells.task.unique()):
        metric, mode = cells[cells.task == task].metric.iloc[0], cells[cells.task == task].metric_mode.iloc[0]
        med, grid = _medians(cells, task), _grid(cells, task)
        if len(grid) < 2:
            out.append((task, UNKNOWN, "fewer than two LR0 columns"))
            continue
        big, small = grid[0], grid[-1]
        need = [(s, lr0) for s in ("constant",) + DECAYS for lr0 in (big, small)]
        missing = [f"{display(s)} at {lr0:g}" for s, lr0 in need if (s, lr0) not in med]
        if missing:
            out.append((task, UNKNOWN, "no median for " + ", ".join(missing)))
            continue
        text = lambda s, lr0: fmt(med[(s, lr0)], metric)  # noqa: E731
        beats = [d for d in DECAYS if _better(med[(d, big)], med[("constant", big)], mode)]
        loses = [d for d in DECAYS if _better(med[("constant", small)], med[(d, small)], mode)]
        numbers = (f"LR0 {big:g}: BLR {text('constant', big)} vs " + ", ".join(f"{display(d)} {text(d, big)}"
                                                                                for d in DECAYS)
                   + f" ({len(beats)} of 3 beat BLR); LR0 {small:g}: BLR {text('constant', small)} vs "
                   + ", ".join(f"{display(d)} {text(d, small)}" for d in DECAYS) + f" ({len(loses)} of 3 lose)")
        if len({med[k] for k in need}) == 1:
            out.append((task, UNKNOWN, numbers + "; every median is equal"))
        else:
            out.append((task, HOLDS if len(beats) == 3 and len(loses) == 3 else FAILS, numbers))
    return _overall(out), out


def raised(rows: pd.DataFrame, task: str, lr0: float, reference: str = "arc") -> tuple[int, int]:
    """(ARC runs of the cell that raised the LR at least once, ARC runs of the cell)."""
    mine = rows[(rows.task == task) & (rows.schedule == reference)]
    mine = mine[(mine.lr0 - lr0).abs() <= 1e-9 * lr0]
    count = sum(any(action(f) == "raise" for _, f in decisions(run_dir)) for run_dir in mine.run_dir)
    return count, len(mine)


def decisions_markdown(rows: pd.DataFrame, schedules: tuple[str, ...] = ("arc", "arc_published")) -> str | None:
    """ARC's decisions per task, LR0 and ARC row (figures.plots.decision_counts): how many of its calls raised, kept
    and decreased the LR, summed over the cell's runs, whether any lowered it, and first one line per ARC row saying
    in which cells it lowers the LR. None when no run of those schedules exists."""
    counts = decision_counts(rows, schedules)
    if counts.empty:
        return None
    summary = []
    for schedule, mine in counts.groupby("schedule", sort=False):
        lowered = mine[mine.decrease > 0]
        where = ", ".join(f"{task_label(r.task)} at LR0 {r.lr0:g}" for r in lowered.itertuples())
        summary.append(f"- {display(schedule)} lowers the LR (a x0.618 call): **{'yes' if len(lowered) else 'no'}**, "
                       f"in {len(lowered)} of {len(mine)} cells" + (f" ({where})" if where else ""))
    lines = ["| task | LR0 | ARC | runs | raise | keep | decrease | calls per run | lowers the LR |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in counts.to_dict("records"):  # records: `raise` is no attribute name
        lines.append(f"| {task_label(r['task'])} | {r['lr0']:g} | {display(r['schedule'])} | {r['runs']} | "
                     f"{r['raise']} | {r['keep']} | {r['decrease']} | "
                     f"{(r['raise'] + r['keep'] + r['decrease']) / r['runs']:.1f} | "
                     f"{'yes' if r['decrease'] else 'no'} |")
    return "\n".join(summary + [""] + lines)


def _rate(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}%"


def confusion_markdown(cm) -> str:
    """One confusion matrix: rows the true label, columns the predicted one, with totals."""
    lines = ["| true \\ predicted | raise | keep | decrease | true total |", "|---|---|---|---|---|"]
    for name, row in zip(ACTION_NAMES, cm):
        lines.append(f"| {name} | " + " | ".join(f"{int(v)}" for v in row) + f" | {int(row.sum())} |")
    return "\n".join(lines + ["| predicted total | " + " | ".join(f"{int(v)}" for v in cm.sum(axis=0))
                               + f" | {int(cm.sum())} |"])


def heldout_markdown(table: pd.DataFrame, notes: list[str]) -> str:
    """REPORT.md's held-out section from figures.decisions.heldout_table: a compact row per ARC model (predicted
    shares, decrease recall and precision), then the confusion matrices of the published and the selected ARC."""
    out = ["Each ARC model's argmax on the held-out points of ARC's training data (the candidates' `data.holdout` "
           "split of configs/train_arc.yaml, docs/experiments.md §10.1) against their corrected labels (§2.1). "
           "Decrease recall: of the points whose best move was x0.618, the share the model predicts as decrease; "
           "decrease precision: of its decrease predictions, the share that were right.", ""]
    if not table.empty:
        out += ["| ARC model | held-out points | true decrease | predicts raise | keep | decrease | lowers the LR "
                "| decrease recall | decrease precision | accuracy |", "|---|---|---|---|---|---|---|---|---|---|"]
        for row in table.to_dict("records"):
            cm = matrix_of(row)
            recall, precision = recall_precision(cm, "decrease")
            shares = cm.sum(axis=0) / cm.sum()
            name = f"**{row['model']}**" if row["role"] != "candidate" else row["model"]
            out.append(f"| {name} | {int(cm.sum())} | {_rate(cm[2].sum() / cm.sum())} | "
                       + " | ".join(_rate(v) for v in shares)
                       + f" | {'yes' if cm[:, 2].sum() else 'no'} | {_rate(recall)} | {_rate(precision)} | "
                       f"{_rate(np.trace(cm) / cm.sum())} |")
        out.append("")
        for row in table[table.role != "candidate"].to_dict("records"):
            out += [f"**{row['model']} ARC** (`{row['weights']}`, preprocessing `{row['preprocessing']}`), on "
                    f"{row['held_out_source']}:", "", confusion_markdown(matrix_of(row)), ""]
    out += [f"- {line}" for line in notes]
    if table.empty and not notes:
        out.append("(no ARC model scored)")
    return "\n".join(out).rstrip("\n")


def claim_arc_small(cells: pd.DataFrame, rows: pd.DataFrame | None) -> tuple[str, list[tuple[str, str, str]]]:
    """Claim 2, per task. Without rows (the paper's table) only the `wins` half is tested."""
    out = []
    for task in sorted(cells.task.unique()):
        mine = cells[(cells.task == task) & (cells.block == "paper") & cells.median_best.notna()]
        metric, mode = cells[cells.task == task].metric.iloc[0], cells[cells.task == task].metric_mode.iloc[0]
        grid = _grid(cells, task)
        if not grid:
            out.append((task, UNKNOWN, "no LR0 column"))
            continue
        small = grid[-1]
        column = mine[mine.lr0 == small]
        arc = column[column.schedule == "arc"]
        if arc.empty or len(column) < 2:
            out.append((task, UNKNOWN, f"LR0 {small:g}: no ARC median or nothing to compare with"))
            continue
        value = arc.median_best.iloc[0]
        others = column[column.schedule != "arc"]
        best_other = others.median_best.max() if mode == "max" else others.median_best.min()
        who = others[others.median_best == best_other].schedule.iloc[0]
        wins = _better(value, best_other, mode)
        numbers = (f"LR0 {small:g}: ARC {fmt(value, metric)} vs best other {display(who)} "
                   f"{fmt(best_other, metric)}")
        verdict = HOLDS if wins else FAILS
        if column.median_best.nunique() == 1:
            verdict, numbers = UNKNOWN, numbers + "; every median is equal"
        if rows is not None:
            up, total = raised(rows, task, small)
            numbers = f"{up} of {total} ARC runs raised the LR; " + numbers
            if total == 0:
                verdict = UNKNOWN
            elif verdict != UNKNOWN and up * 2 < total:
                verdict = FAILS
        else:
            numbers += " (raising is not in the printed table)"
        out.append((task, verdict, numbers))
    return _overall(out), out


def claim_never_worst(cells: pd.DataFrame) -> tuple[str, list[tuple[str, str, str]]]:
    """Claim 3: per task, the columns where ARC's median is the worst of the paper's rows."""
    out = []
    for task in sorted(cells.task.unique()):
        mine = cells[(cells.task == task) & (cells.block == "paper") & cells.median_best.notna()]
        metric, mode = cells[cells.task == task].metric.iloc[0], cells[cells.task == task].metric_mode.iloc[0]
        worst, tied, looked = [], [], 0
        for lr0, column in sorted(mine.groupby("lr0"), key=lambda item: -item[0]):
            arc = column[column.schedule == "arc"]
            others = column[column.schedule != "arc"]
            if arc.empty or others.empty or column.median_best.nunique() == 1:
                continue
            looked += 1
            value = arc.median_best.iloc[0]
            if any(_better(value, v, mode) for v in others.median_best):
                continue
            same = [display(s) for s, v in zip(others.schedule, others.median_best) if v == value]
            if same:
                tied.append(f"LR0 {lr0:g} (ARC {fmt(value, metric)}, tied with {', '.join(same)})")
            else:
                worst.append(f"LR0 {lr0:g} (ARC {fmt(value, metric)})")
        note = ("; shares the lowest median at " + ", ".join(tied)) if tied else ""
        if not looked:
            out.append((task, UNKNOWN, "no column with ARC and a differing schedule"))
        elif worst:
            out.append((task, FAILS, "ARC alone is the worst at " + ", ".join(worst) + note))
        else:
            out.append((task, HOLDS, f"ARC is not alone the worst in any of {looked} columns" + note))
    return _overall(out), out


def paper_cells() -> pd.DataFrame:
    """The paper's printed Tables 2-4 as cells (median_best in the runs' unit)."""
    table = paper_values()
    modes = {"accuracy": "max", "mAP": "max", "perplexity": "min"}
    return pd.DataFrame({"task": table.task, "schedule": table.schedule, "lr0": table.lr0, "metric": table.metric,
                         "metric_mode": table.metric.map(modes), "median_best": table.value, "block": "paper"})


CLAIMS = [("Decays (CD, CCD, ED) beat BLR at the largest LR0 and lose to it at the smallest", claim_decays),
          ("ARC raises the LR at the smallest LR0 and wins there", claim_arc_small),
          ("ARC is never the worst schedule", claim_never_worst)]


def claims_markdown(cells: pd.DataFrame, rows: pd.DataFrame) -> str:
    paper = paper_cells()
    lines = ["| claim of the paper | in this run | in the paper's own Tables 2-4 |", "|---|---|---|"]
    details = []
    for name, test in CLAIMS:
        ours = test(cells, rows) if test is claim_arc_small else test(cells)
        theirs = test(paper, None) if test is claim_arc_small else test(paper)
        mine = _overall([(task_label(task), verdict, numbers) for task, verdict, numbers in ours[1]])  # = ours[0]
        lines.append(f"| {name} | **{mine}** | {theirs[0]} |")
        details += [f"**{name}**", ""]
        details += [f"- {task_label(task)}: {verdict}. {numbers}" for task, verdict, numbers in ours[1]]
        details += [f"- the paper's table, {task}: {verdict}. {numbers}" for task, verdict, numbers in theirs[1]]
        details.append("")
    return "\n".join(lines) + "\n\n" + "\n".join(details)


def stage_times(artifacts: Path, benchmark: Path, selection: Path, candidates: Path) -> tuple[str, pd.DataFrame]:
    """(how they were measured, table of stage and seconds): ${paths.artifacts}/logs/stage_times.jsonl when it
    exists, else the training seconds recorded in the runs' DONE rows (no start-up, data preparation or
    scoring outside the timed epochs)."""
    from core.runs import finished_runs

    log = artifacts / "logs" / "stage_times.jsonl"
    if log.is_file():
        entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        table = pd.DataFrame(entries).groupby("stage", sort=False).seconds.sum().reset_index()
        return f"measured by the pipeline ({log.name}, summed per stage)", table
    rows = []

    def add(stage: str, frame: pd.DataFrame, column: str):
        if not frame.empty and column in frame:
            rows.append({"stage": stage, "seconds": float(pd.to_numeric(frame[column], errors="coerce").sum()),
                         "runs": len(frame)})

    add("train_arc (candidates)", finished_runs(candidates), "seconds")
    add("select (proxy runs)", finished_runs(selection / "runs", "*/*"), "wall_seconds")
    add("range-test", finished_runs(benchmark / "range_test", "*"), "wall_seconds")
    for study in sorted(p.name for p in benchmark.iterdir() if p.is_dir() and p.name != "range_test") \
            if benchmark.is_dir() else []:
        add(f"benchmark: {study}", finished_runs(benchmark / study, "*/*"), "wall_seconds")
    how = (f"{log} does not exist yet: the sum of the training seconds in the runs' DONE rows per stage "
           "(datagen records none; start-up, data loading and evaluation outside the timed epochs are not counted)")
    return how, pd.DataFrame(rows, columns=["stage", "seconds", "runs"])


def rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def write_report(path: Path, title: str, intro: list[str], cells: pd.DataFrame, rows: pd.DataFrame,
                 tables: list[tuple[str, str, str]], figures: list[tuple[str, Path]], warnings: list[str],
                 selection: str | None = None, times: tuple[str, pd.DataFrame] | None = None,
                 extra: list[str] | None = None, decisions_table: str | None = None,
                 dataset: str | None = None, heldout: str | None = None) -> Path:
    """tables: (task, our table markdown, the paper's / side-by-side markdown); decisions_table: ARC's decisions
    in the benchmark runs (decisions_markdown); dataset: ARC's training data (dataset_markdown); heldout: ARC's
    decisions on held-out points (heldout_markdown)."""
    here = path.parent
    out = [f"# {title}", ""] + intro + [""]
    out += ["## 1. The paper's claims, measured", "", claims_markdown(cells, rows), ""]
    out += ["## 2. Tables 2-4 beside the paper's", ""]
    for task, ours, theirs in tables:
        out += [ours, "", theirs, ""] if theirs else [ours, ""]
    out += ["## 3. Figures", ""]
    for caption, fig in figures:
        out += [f"**{caption}**", "", f"![{caption}]({rel(fig, here)})", ""]
    if not figures:
        out += ["(none rendered)", ""]
    section = 4
    if dataset is not None:
        out += [f"## {section}. ARC's training data: label mix", "", dataset, ""]
        section += 1
    if selection is not None:
        out += [f"## {section}. Model selection (proxy task)", "", selection, ""]
        section += 1
    if heldout is not None:
        out += [f"## {section}. ARC's decisions on held-out points", "", heldout, ""]
        section += 1
    if decisions_table is not None:
        out += [f"## {section}. ARC's decisions in the benchmark runs", "",
                "Every call of each ARC row, summed over a cell's runs (x1.618 raise, x1 keep, x0.618 decrease).", "",
                decisions_table, ""]
        section += 1
    if times is not None:
        how, table = times
        out += [f"## {section}. Wall time per stage", "", f"Source: {how}.", ""]
        if table.empty:
            out += ["(no timed runs found)", ""]
        else:
            out += ["| stage | seconds |" + (" runs |" if "runs" in table else ""),
                    "|---|---|" + ("---|" if "runs" in table else "")]
            for r in table.to_dict("records"):
                runs = f" {int(r['runs'])} |" if "runs" in r and not pd.isna(r.get("runs")) else ""
                out.append(f"| {r['stage']} | {r['seconds']:.1f} |{runs}")
            out.append("")
        section += 1
    out += [f"## {section}. Completeness", ""]
    out += [f"- {w}" for w in warnings] if warnings else ["Every cell has the runs its study's configs ask for."]
    out.append("")
    if extra:
        out += extra
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(out).rstrip("\n") + "\n"
    from core.artifacts import atomic_write_text

    atomic_write_text(path, text)
    return path


def dataset_markdown(dataset_dir: Path) -> str | None:
    """The label-correction report of ARC's training set (datagen.correct's report.txt: the mix per task, the
    published ARC's agreement, what the mix depends on) as a fenced block; None when there is none."""
    report = dataset_dir / "report.txt"
    if not report.is_file():
        return None
    return f"From `{report.name}` of `make correct`:\n\n```\n{report.read_text().rstrip()}\n```"


def selection_markdown(selection_dir: Path) -> str | None:
    """The proxy selection's scores.csv as a table, with the selected candidate; None when there is none."""
    scores_path = selection_dir / "scores.csv"
    if not scores_path.is_file():
        return None
    from core.artifacts import is_done, read_done
    from figures.plots import selection_roles

    scores = pd.read_csv(scores_path).sort_values("score", ascending=False, ignore_index=True)
    done = read_done(selection_dir) if is_done(selection_dir) else {}
    labels, selected, published = selection_roles(scores, done)
    winner = [n for n, s in zip(labels, selected) if s]
    lines = [f"Selected ARC: **{winner[0]}** (the best proxy score; the stage's tie rule)." if winner else
             "No winner recorded (selection not finished).", "",
             "| candidate | score (mean best eval accuracy) | runs |", "|---|---|---|"]
    for name, s, p, r in zip(labels, selected, published, scores.to_dict("records")):
        mark = " (selected)" if s else " (published)" if p else ""
        lines.append(f"| {name}{mark} | {100 * r['score']:.2f}% | {r.get('runs', '')} |")
    return "\n".join(lines)
