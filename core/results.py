"""Benchmark result rows and the one computation of a table cell (paper Tables 2-4, docs/experiments.md §8.1),
shared by experiments.table and the figures stage.

A cell (task, schedule, LR0) holds the runs of that schedule at that LR0; its value is the median over runs of
each run's best eval value (max accuracy/mAP, min perplexity). An LR-free method (SLS, Prodigy; lr0 empty)
fills every column of its task, as the paper prints SLS; SC sits in the column of the LR0 it ran at.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from core.artifacts import DONE_MARKER
from core.runs import finished_runs

COLUMNS = ["task", "schedule", "lr0", "seed", "frequency", "metric", "metric_mode", "best_metric", "best_epoch",
           "final_metric", "diverged", "epochs", "wall_seconds"]
VARIANTS = ("frequency", "arc_candidate", "arc_model_file")  # settings a study may sweep within one schedule
JOB = ["task", "schedule", "lr0", "seed", *VARIANTS]  # what names one job of a study's grid (a table's run)


def model_file_label(model_file: str) -> str:
    """A candidate's model file as a label: `arc` (its last epoch) reads `final`, `best_mcc` stays."""
    return "final" if model_file == "arc" else str(model_file)


def study_rows(benchmark_dir: str | Path, study: str = "benchmark", named: Iterable[Path] | None = None
               ) -> pd.DataFrame:
    """One row per finished run of `study` (${paths.benchmark}/<study>/<task>/<run>/), with `run_dir`.

    `named`: the run directories the current config names (core.bench_run.named_runs): exactly those are read;
    one line counts the runs on disk that the config does not name (another ARC model, other settings), and one
    those it names that have not finished. Without `named` (nothing names the runs: FastEstimator logs, ad-hoc
    grids), `latest_runs` picks one run per job.

    Where a study sweeps a setting within one schedule (the n-study's frequency, the metric study's model file),
    the schedule label names it, e.g. `arc n=2`, so that each variant is its own table row. The ARC candidate
    (`arc_candidate`) is not named: like the seed, it is a repeat that a cell pools (paper A.1, A.5)."""
    extra = [c for c in VARIANTS if c not in COLUMNS]
    root = Path(benchmark_dir) / study
    rows = finished_runs(root, "*/*", COLUMNS + extra, require=("epochs.parquet",))
    rows = latest_runs(rows) if named is None else only_named(rows, root, named)
    labels = rows.schedule.astype(object).copy()
    for schedule, group in rows.groupby("schedule"):
        for column, prefix in (("frequency", "n="), ("arc_model_file", "")):
            values = group[column].dropna()
            if values.nunique() > 1:
                text = [f"{prefix}{int(v) if isinstance(v, float) else model_file_label(v)}" for v in group[column]]
                labels[group.index] = labels[group.index] + " " + pd.Series(text, index=group.index)
    return rows.assign(schedule=labels).drop(columns=[c for c in extra if rows[c].isna().all()])


def only_named(rows: pd.DataFrame, root: Path, named: Iterable[Path]) -> pd.DataFrame:
    """The rows of the runs in `named`, matched by <task>/<run> (the run name holds the config's digest)."""
    wanted = {(Path(p).parent.name, Path(p).name) for p in named}
    keep = rows.run_dir.map(lambda run: (Path(run).parent.name, Path(run).name) in wanted).astype(bool)
    if not keep.any():  # nothing to read: the reader's one error line says so (a stage writes nothing on bad input)
        return rows.iloc[:0]
    if (~keep).any():
        print(f"{root}: {int((~keep).sum())} runs on disk not named by the config, ignored")
    missing = len(wanted) - int(keep.sum())
    if missing:
        print(f"{root}: {missing} of the {len(wanted)} runs the config names are not finished (missing)")
    return rows[keep].reset_index(drop=True)


def latest_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """The most recently finished run of each job (`JOB`: task, schedule, LR0, seed and swept variant), for
    readers that no config names the runs of (study_rows without `named`).

    A run directory is named by its whole config (experiments.benchmark), so a rerun with other weights (a new
    `make select`), epochs or schedule settings lands beside the earlier run instead of replacing it. Pooling both
    would mix two models or two settings in one cell (measured: after re-selecting, every ARC cell held 10 runs,
    5 of each candidate). The run that finished last stands in for the one the current config wrote; it is not
    that run after select A, benchmark, select B, benchmark, select A, benchmark (A's runs are done already and
    keep their older files), which is why the table readers pass `named`. One line names how many runs were left
    out."""
    if rows.empty:
        return rows
    finished_at = rows.run_dir.map(lambda run: (Path(run) / DONE_MARKER).stat().st_mtime_ns)
    order = finished_at.sort_values(kind="stable").index
    superseded = rows.loc[order, JOB].astype(str).duplicated(keep="last")
    if superseded.any():
        root = Path(rows.run_dir.iloc[0]).parent.parent
        print(f"{root}: {int(superseded.sum())} runs left out, each superseded by a later run of the same task, "
              "schedule, LR0 and seed (another model or setting)")
    return rows.drop(index=superseded[superseded].index).reset_index(drop=True)


def cell_runs(rows: pd.DataFrame, schedule: str, lr0: float) -> pd.Series:
    """Best values of the runs behind one cell of a task's rows (LR-free methods fill every column)."""
    mine = rows[rows.schedule == schedule]
    fixed = mine[mine.lr0.notna()]
    if fixed.empty:
        return mine.best_metric
    return fixed[fixed.lr0.round(12) == round(lr0, 12)].best_metric


def lr0_columns(rows: pd.DataFrame) -> list[float]:
    """A task's LR0 columns, largest first (as the paper prints them)."""
    return sorted(rows.lr0.dropna().unique(), reverse=True)


def median_table(rows: pd.DataFrame, task: str) -> pd.DataFrame:
    """Median best value per cell: index = schedule, columns = LR0 (descending)."""
    rows = rows[rows.task == task]
    schedules = sorted(rows.schedule.unique())
    return pd.DataFrame({lr0: {s: cell_runs(rows, s, lr0).median() for s in schedules}
                         for lr0 in lr0_columns(rows)}).reindex(schedules)
