"""Benchmark result rows and the one computation of a table cell (paper Tables 2-4, docs/experiments.md §8.1),
shared by experiments.table and the figures stage.

A cell (task, schedule, LR0) holds the runs of that schedule at that LR0; its value is the median over runs of
each run's best eval value (max accuracy/mAP, min perplexity). An LR-free method (SLS, Prodigy; lr0 empty)
fills every column of its task, as the paper prints SLS; SC sits in the column of the LR0 it ran at.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.runs import finished_runs

COLUMNS = ["task", "schedule", "lr0", "seed", "frequency", "metric", "metric_mode", "best_metric", "best_epoch",
           "final_metric", "diverged", "epochs", "wall_seconds"]
VARIANTS = ("frequency", "arc_candidate", "arc_model_file")  # settings a study may sweep within one schedule


def model_file_label(model_file: str) -> str:
    """A candidate's model file as a label: `arc` (its last epoch) reads `final`, `best_mcc` stays."""
    return "final" if model_file == "arc" else str(model_file)


def study_rows(benchmark_dir: str | Path, study: str = "benchmark") -> pd.DataFrame:
    """One row per finished run of `study` (${paths.benchmark}/<study>/<task>/<run>/), with `run_dir`.

    Where a study sweeps a setting within one schedule (the n-study's frequency, the metric study's model file),
    the schedule label names it, e.g. `arc n=2`, so that each variant is its own table row. The ARC candidate
    (`arc_candidate`) is not named: like the seed, it is a repeat that a cell pools (paper A.1, A.5)."""
    extra = [c for c in VARIANTS if c not in COLUMNS]
    rows = finished_runs(Path(benchmark_dir) / study, "*/*", COLUMNS + extra, require=("epochs.parquet",))
    labels = rows.schedule.astype(object).copy()
    for schedule, group in rows.groupby("schedule"):
        for column, prefix in (("frequency", "n="), ("arc_model_file", "")):
            values = group[column].dropna()
            if values.nunique() > 1:
                text = [f"{prefix}{int(v) if isinstance(v, float) else model_file_label(v)}" for v in group[column]]
                labels[group.index] = labels[group.index] + " " + pd.Series(text, index=group.index)
    return rows.assign(schedule=labels).drop(columns=[c for c in extra if rows[c].isna().all()])


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
