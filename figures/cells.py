"""The long form of Tables 2-4: one row per task x schedule x LR0 column, with the statistics around the cell.

The cell value itself is core.results.cell_runs(...).median() (the one cell computation: the median over runs
of each run's best eval value). Around it: the run count against the runs the study's configs ask for
(figures.expected), a bootstrap 95% CI of the median (scipy.stats.bootstrap, percentile method, fixed seed),
two-sided p-values against ARC's runs in the same column (Student's t-test as the paper's `#`, and
Mann-Whitney U), `*` (best median of the column), the rank in the column, and the paper's printed cell.

Before the cells, SC's runs (at their own LR0 = LRmax / f) are placed in the grid column nearest that LR0 in log
scale, as the paper prints SC and as experiments.benchmark files them; the long form keeps their own LR0 in
`run_lr0`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import bootstrap, mannwhitneyu, ttest_ind

from core.bench_run import single_column_schedules
from core.results import cell_runs, lr0_columns
from figures.expected import Expectation
from figures.paper import paper_value

CELL_COLUMNS = ["task", "schedule", "lr0", "metric", "metric_mode", "median_best", "n_runs", "n_expected", "complete",
                "missing", "ci_low", "ci_high", "p_ttest_vs_arc", "p_mannwhitney_vs_arc", "paper_value", "best",
                "significant", "rank_paper", "rank_all", "block", "run_lr0", "seeds"]


@dataclass
class CellOptions:
    reference: str = "arc"
    alpha: float = 0.05
    paper_rows: list = field(default_factory=lambda: ["constant", "cd", "ccd", "ed", "sc", "sls", "arc"])
    single_column: list = field(default_factory=lambda: list(single_column_schedules()))
    optional: dict = field(default_factory=dict)
    ci_level: float = 0.95
    ci_resamples: int = 9999
    ci_seed: int = 0

    @classmethod
    def from_cfg(cls, cfg) -> "CellOptions":
        return cls(cfg.reference, cfg.alpha, list(cfg.paper_rows), list(single_column_schedules()), dict(cfg.optional),
                   cfg.ci_level, cfg.ci_resamples, cfg.ci_seed)


def base(label: str) -> str:
    """`arc n=2` -> `arc`: the schedule behind a study's variant label."""
    return str(label).split(" ")[0]


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def ordered(schedules, paper_rows) -> list[str]:
    """The paper's rows in its order, then the others by name."""
    schedules = list(dict.fromkeys(schedules))
    return [s for s in paper_rows if s in schedules] + sorted(s for s in schedules if s not in paper_rows)


def task_grid(rows: pd.DataFrame, single_column, expected: dict[str, Expectation] | None = None) -> list[float]:
    """A task's LR0 columns, largest first: the LR0s of its fixed-LR0 schedules and of its configs' sweeps."""
    fixed = rows[~rows.schedule.map(base).isin(single_column) & rows.lr0.notna()]
    grid = list(lr0_columns(fixed))
    for exp in (expected or {}).values():
        for lr0 in exp.lr0s or ():
            if not any(_same(lr0, g) for g in grid):
                grid.append(float(lr0))
    if not grid:
        grid = list(lr0_columns(rows))
    return sorted(grid, reverse=True)


def place(rows: pd.DataFrame, grid: list[float]) -> tuple[pd.DataFrame, list[str]]:
    """Runs whose LR0 is off the grid (SC's own LR0) moved to the nearest grid column in log scale; `run_lr0`
    keeps the LR0 they ran at. Returns the rows and one note per moved schedule."""
    rows = rows.assign(run_lr0=rows.lr0)
    notes = []
    if not grid:
        return rows, notes
    for index, lr0 in rows.lr0.items():
        if pd.isna(lr0) or any(_same(lr0, g) for g in grid) or lr0 <= 0:
            continue
        rows.at[index, "lr0"] = min(grid, key=lambda g: abs(math.log(g / lr0)))
    moved = rows[rows.lr0.notna() & (rows.lr0 != rows.run_lr0)]
    for schedule, group in moved.groupby("schedule"):
        own = ", ".join(f"{v:g}" for v in sorted(group.run_lr0.unique()))
        notes.append(f"{schedule} ran at its own LR0 {own} (LRmax / f); its runs sit in the LR0 "
                     f"{group.lr0.iloc[0]:g} column.")
    return rows, notes


def median_ci(values, level: float = 0.95, resamples: int = 9999, seed: int = 0) -> tuple[float, float]:
    """Bootstrap CI of the median (percentile method, a fixed seed per cell); NaN for fewer than 2 runs."""
    x = np.asarray([v for v in values if not pd.isna(v)], dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        result = bootstrap((x,), np.median, confidence_level=level, n_resamples=resamples, method="percentile",
                           vectorized=True, rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def p_values(reference, runs) -> tuple[float, float]:
    """(Student's t-test, Mann-Whitney U), two-sided; NaN unless both sides have 2+ runs."""
    a = [v for v in reference if not pd.isna(v)]
    b = [v for v in runs if not pd.isna(v)]
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        t = float(ttest_ind(a, b).pvalue)
        try:
            u = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
        except ValueError:
            u = math.nan
    return t, u


def _seed_list(seeds) -> str:
    return ", ".join(str(int(s)) for s in seeds)


def task_cells(rows: pd.DataFrame, task: str, opts: CellOptions, expected: dict[str, Expectation] | None = None,
               unfinished: list[dict] | None = None, paper: pd.DataFrame | None = None
               ) -> tuple[pd.DataFrame, list[str], list[str]]:
    """(cells of one task, warning lines of the completeness gate, notes) from the study's rows."""
    rows = rows[rows.task == task]
    expected = {k: v for k, v in (expected or {}).items()}
    grid = task_grid(rows, opts.single_column, expected)
    rows, notes = place(rows, grid)
    metric, mode = rows.metric.iloc[0], rows.metric_mode.iloc[0]
    found_labels = set(rows.schedule)
    warn: list[str] = []
    for label, exp in expected.items():
        if label in found_labels:
            continue
        if base(label) in opts.optional or label in opts.optional:
            notes.append(f"{label}: no runs ({opts.optional.get(label, opts.optional.get(base(label)))}).")
            continue
        cells = "one column" if exp.lr0s is None else "LR0 " + ", ".join(f"{v:g}" for v in exp.lr0s)
        pending = [u["name"] for u in unfinished or [] if u["task"] == task and u["schedule"] == label]
        line = (f"no finished runs; {exp.source} asks for seeds {_seed_list(exp.seeds)} at {cells}"
                + (f"; unfinished: {', '.join(pending)}" if pending else ""))
        warn.append(f"incomplete: {task} / {label}: {line}")
        notes.append(f"† {label}: {line}.")
    schedules = ordered(found_labels, opts.paper_rows)
    ref_label = opts.reference
    out = []
    for label in schedules:
        exp = expected.get(label)
        for lr0 in grid:
            runs = cell_runs(rows, label, lr0)
            in_column = exp is not None and exp.lr0s is not None and any(_same(lr0, v) for v in exp.lr0s)
            if runs.empty and not in_column:
                continue
            seeds = sorted(rows.loc[runs.index, "seed"].dropna().astype(int).tolist()) if len(runs) else []
            n_expected, missing_text, complete = math.nan, "", True
            if exp is not None:
                missing = [s for s in exp.seeds if seeds.count(s) < exp.candidates]  # pooled candidates: each
                n_expected = len(exp.seeds) * exp.candidates
                complete = not missing
                if missing:
                    pending = [u for u in unfinished or [] if u["task"] == task and u["schedule"] == label
                               and u["seed"] in missing
                               and (u["lr0"] is None or exp.lr0s is None or _same(u["lr0"], lr0))]
                    missing_text = f"missing seeds {_seed_list(missing)}"
                    if pending:
                        missing_text += "; unfinished: " + ", ".join(f"{u['name']} ({u['why']})" for u in pending)
                    warn.append(f"incomplete: {task} / {label} / LR0 {lr0:g}: {len(seeds)} of {n_expected} runs "
                                f"({missing_text}; {exp.source})")
            ci_low, ci_high = median_ci(runs.tolist(), opts.ci_level, opts.ci_resamples, opts.ci_seed)
            p_t, p_u = (math.nan, math.nan)
            if label != ref_label:
                p_t, p_u = p_values(cell_runs(rows, ref_label, lr0).tolist(), runs.tolist())
            run_lr0 = rows.loc[runs.index, "run_lr0"].dropna().unique() if len(runs) else []
            out.append({"task": task, "schedule": label, "lr0": lr0, "metric": metric, "metric_mode": mode,
                        "median_best": runs.median() if len(runs) else math.nan, "n_runs": len(runs),
                        "n_expected": n_expected, "complete": complete, "missing": missing_text,
                        "ci_low": ci_low, "ci_high": ci_high, "p_ttest_vs_arc": p_t, "p_mannwhitney_vs_arc": p_u,
                        "paper_value": paper_value(paper, task, label, lr0) if paper is not None else math.nan,
                        "significant": bool(not math.isnan(p_t) and p_t < opts.alpha),
                        "block": "paper" if label in opts.paper_rows else "extended",
                        "run_lr0": float(run_lr0[0]) if len(run_lr0) == 1 else math.nan,
                        "seeds": _seed_list(seeds)})
    cells = pd.DataFrame(out, columns=[c for c in CELL_COLUMNS if c not in ("best", "rank_paper", "rank_all")])
    return mark(cells), warn, notes


def mark(cells: pd.DataFrame) -> pd.DataFrame:
    """`best` (the column's best median, as `*`) and the rank of each median in its column (1 = best)."""
    cells = cells.copy()
    cells["best"] = False
    cells["rank_paper"] = math.nan
    cells["rank_all"] = math.nan
    for _, column in cells.groupby(["task", "lr0"]):
        valid = column[column.median_best.notna()]
        if valid.empty:
            continue
        ascending = valid.metric_mode.iloc[0] == "min"
        best = valid.median_best.min() if ascending else valid.median_best.max()
        cells.loc[valid.index, "best"] = valid.median_best == best
        cells.loc[valid.index, "rank_all"] = valid.median_best.rank(ascending=ascending, method="average")
        paper = valid[valid.block == "paper"]
        cells.loc[paper.index, "rank_paper"] = paper.median_best.rank(ascending=ascending, method="average")
    return cells[CELL_COLUMNS]


def mean_ranks(cells: pd.DataFrame) -> pd.DataFrame:
    """Per schedule: mean rank over every task x LR0 column it has a median in (1 = best), among the paper's rows
    and among all schedules; the columns counted."""
    valid = cells[cells.median_best.notna()]
    table = valid.groupby("schedule").agg(mean_rank_paper=("rank_paper", "mean"), mean_rank_all=("rank_all", "mean"),
                                          columns=("rank_all", "size"), tasks=("task", "nunique"))
    return table.sort_values(["mean_rank_all", "mean_rank_paper"]).reset_index()
