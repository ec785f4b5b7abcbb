"""Tables 2-4 in the paper's layout, from the long form (figures.cells): Markdown, LaTeX, CSV and the rank summary.

A table holds the paper's seven rows in its order (BLR, CD, CCD, ED, SC, SLS, ARC), then, below a rule, every
other schedule of the study (the extended baselines, the published ARC, a study's variants). A cell is printed as
the paper prints it (accuracy x100 with 2 decimals, mAP 4, perplexity 1) with `*` = best median of its LR0 column
(the paper's bold), `#` = Student's t-test against ARC's runs at p < alpha, and `†` = an incomplete cell (the
footnotes say which runs are missing). The compact table of tables.md comes from the same cells: every schedule by
its own name (the reference first, then by name), `*` and `#` without footnotes.
"""
from __future__ import annotations

import math

import pandas as pd

from figures.paper import TABLE_NUMBER, display, fmt, metric_unit, task_label

DAGGER = "†"


def marked(cell: pd.Series, latex: bool = False) -> str:
    """The median as printed with its markers: `*` (LaTeX bold) best of the column, `#` t-test against ARC;
    empty for a cell without runs."""
    if pd.isna(cell.median_best):
        return ""
    text = fmt(cell.median_best, cell.metric)
    if latex and cell.best:
        text = rf"\textbf{{{text}}}"
    elif cell.best:
        text += "*"
    if cell.significant:
        text += r"\textsuperscript{\#}" if latex else "#"
    return text


def cell_text(cell: pd.Series, latex: bool = False) -> str:
    text = marked(cell, latex) or "–"
    if not cell.complete:
        text += r"$^\dagger$" if latex else DAGGER
    return text


def title(task: str, metric: str, study: str = "benchmark") -> str:
    number = TABLE_NUMBER.get(task) if study in ("benchmark", "fe_logs") else None
    head = f"Table {number}: " if number else ""
    return f"{head}{task_label(task)}, median over runs of each run's best {metric_unit(metric)}"


def _grid(cells: pd.DataFrame) -> list[float]:
    return sorted(cells.lr0.unique(), reverse=True)


def _rows(cells: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """(block, schedules in order) for the paper's rows, then the others."""
    schedules = list(dict.fromkeys(cells.schedule))
    blocks = [("paper", [s for s in schedules if (cells[cells.schedule == s].block == "paper").all()])]
    blocks.append(("extended", [s for s in schedules if s not in blocks[0][1]]))
    return [b for b in blocks if b[1]]


def markdown_table(cells: pd.DataFrame, study: str = "benchmark") -> str:
    """One task's table in the paper's layout, with footnotes for incomplete cells."""
    task, metric = cells.task.iloc[0], cells.metric.iloc[0]
    grid = _grid(cells)
    lines = [f"### {title(task, metric, study)}", "",
             "| schedule | " + " | ".join(f"LR0 {lr0:g}" for lr0 in grid) + " |", "|---" * (len(grid) + 1) + "|"]
    blocks = _rows(cells)
    for i, (block, schedules) in enumerate(blocks):
        if i and len(blocks) > 1:
            name = "beyond the paper" if study == "benchmark" else "other rows"
            lines.append(f"| *{name}* |" + " |" * len(grid))
        for schedule in schedules:
            mine = cells[cells.schedule == schedule]
            texts = []
            for lr0 in grid:
                cell = mine[mine.lr0 == lr0]
                texts.append(cell_text(cell.iloc[0]) if len(cell) else "")
            lines.append(f"| {display(schedule)} | " + " | ".join(texts) + " |")
    notes = [f"{DAGGER} {display(c.schedule)}, LR0 {c.lr0:g}: {c.n_runs} of {c.n_expected:.0f} runs ({c.missing})"
             for c in cells.itertuples() if not c.complete]
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def compact_markdown(cells: pd.DataFrame, reference: str = "arc") -> str:
    """One task's compact table (tables.md): a row per schedule by its own name, `reference` first, then by name;
    a column per LR0 of the grid; the cell as marked() prints it."""
    task, metric = cells.task.iloc[0], cells.metric.iloc[0]
    grid = _grid(cells)
    schedules = sorted(set(cells.schedule), key=lambda s: (s != reference, s))
    lines = [f"### {task_label(task)}: median best {metric}", "",
             "| schedule | " + " | ".join(f"LR0 {lr0:g}" for lr0 in grid) + " |", "|---" * (len(grid) + 1) + "|"]
    for schedule in schedules:
        mine = cells[cells.schedule == schedule]
        texts = [marked(mine[mine.lr0 == lr0].iloc[0]) if (mine.lr0 == lr0).any() else "" for lr0 in grid]
        lines.append(f"| {schedule} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


def side_by_side(cells: pd.DataFrame) -> str:
    """Ours beside the paper's printed cell, for the paper's rows; empty when no cell has a paper value."""
    mine = cells[cells.block == "paper"]
    if mine.paper_value.isna().all():
        return ""
    task, metric = cells.task.iloc[0], cells.metric.iloc[0]
    grid = _grid(mine)
    lines = [f"#### {task_label(task)} beside the paper (ours / paper's printed value, {metric_unit(metric)})", "",
             "| schedule | " + " | ".join(f"LR0 {lr0:g} ours | paper" for lr0 in grid) + " |",
             "|---" * (2 * len(grid) + 1) + "|"]
    for schedule in dict.fromkeys(mine.schedule):
        texts = []
        for lr0 in grid:
            cell = mine[(mine.schedule == schedule) & (mine.lr0 == lr0)]
            if len(cell):
                texts += [cell_text(cell.iloc[0]), fmt(cell.paper_value.iloc[0], metric)]
            else:
                texts += ["", ""]
        lines.append(f"| {display(schedule)} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


def paper_only_table(paper: pd.DataFrame, task: str) -> str:
    """The paper's printed table of a task (figures/paper_values.csv), as printed."""
    mine = paper[paper.task == task]
    if mine.empty:
        return ""
    grid = sorted(mine.lr0.unique(), reverse=True)
    unit = {"percent": "accuracy (%)", "fraction": "mAP", "perplexity": "perplexity"}[mine.unit.iloc[0]]
    lines = [f"#### The paper's Table {TABLE_NUMBER.get(task, '')} ({task}, {unit}, as printed)", "",
             "| schedule | " + " | ".join(f"LR0 {lr0:g}" for lr0 in grid) + " |", "|---" * (len(grid) + 1) + "|"]
    for schedule in dict.fromkeys(mine.schedule):
        texts = []
        for lr0 in grid:
            cell = mine[(mine.schedule == schedule) & ((mine.lr0 - lr0).abs() < 1e-12)]
            decimals = {"percent": 2, "fraction": 4, "perplexity": 1}[mine.unit.iloc[0]]
            texts.append(f"{cell.paper_value.iloc[0]:.{decimals}f}" if len(cell) else "")
        lines.append(f"| {display(schedule)} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


def rank_markdown(ranks: pd.DataFrame) -> str:
    lines = ["### Mean rank per schedule across tasks and LR0 columns (1 = best)", "",
             "| schedule | mean rank among the paper's rows | mean rank among all rows | columns | tasks |",
             "|---|---|---|---|---|"]
    for r in ranks.itertuples():
        paper = "" if math.isnan(r.mean_rank_paper) else f"{r.mean_rank_paper:.2f}"
        lines.append(f"| {display(r.schedule)} | {paper} | {r.mean_rank_all:.2f} | {r.columns} | {r.tasks} |")
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    return str(text).replace("_", r"\_").replace("%", r"\%").replace("#", r"\#")


def latex_table(cells: pd.DataFrame, study: str = "benchmark") -> str:
    """One task's table as a booktabs LaTeX table; bold = best median, # = t-test vs ARC, dagger = incomplete."""
    task, metric = cells.task.iloc[0], cells.metric.iloc[0]
    grid = _grid(cells)
    lines = [r"\begin{table}[t]", r"\centering",
             rf"\caption{{{_tex(title(task, metric, study))}. Bold: best median of the column; \# Student's t-test "
             r"against ARC, $p < 0.05$; $^\dagger$ incomplete cell.}",
             rf"\label{{tab:{_tex(study)}-{_tex(task)}}}",
             r"\begin{tabular}{l" + "r" * len(grid) + "}", r"\toprule",
             "Schedule & " + " & ".join(f"$LR_0 = {lr0:g}$" for lr0 in grid) + r" \\", r"\midrule"]
    for i, (_, schedules) in enumerate(_rows(cells)):
        if i:
            lines.append(r"\midrule")
        for schedule in schedules:
            mine = cells[cells.schedule == schedule]
            texts = []
            for lr0 in grid:
                cell = mine[mine.lr0 == lr0]
                texts.append(cell_text(cell.iloc[0], latex=True) if len(cell) else "")
            lines.append(_tex(display(schedule)) + " & " + " & ".join(t.replace("–", "--") for t in texts) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"
