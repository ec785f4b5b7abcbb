"""Result rows and the per-task table of median best metric per schedule x LR0 (paper Tables 2-4, SPEC §8).

`collect(artifacts)` reads every finished run's DONE row of a stage; `median_table(rows, task)` is the
table other stages and figures call. Best = max accuracy/mAP or min perplexity over epochs, median over
seeds. LR-free methods (SLS, Prodigy) are repeated across the LR0 columns, as the paper does for SLS;
SC sits in the column of the LR0 its range test chose.
`python -m experiments.table profile=mini` writes results.csv and table_<task>.csv and prints them
(`--config-name n_study`: the frequency study, one row per n).
"""
from __future__ import annotations

import json
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig

import experiments.config  # noqa: F401  (registers the schemas)
from core.artifacts import DONE_MARKER, atomic_write_text
from core.errors import DataError, exit_on_user_error

COLUMNS = ["task", "schedule", "lr0", "seed", "frequency", "metric", "metric_mode", "best_metric", "best_epoch",
           "final_metric", "diverged", "epochs", "wall_seconds"]


def collect(artifacts: str | Path, stage: str = "benchmark") -> pd.DataFrame:
    """One row per finished run under ${artifacts}/experiments/<stage>/<task>/<run>/DONE."""
    root = Path(artifacts) / "experiments" / stage
    rows = [json.loads(p.read_text()) for p in sorted(root.glob(f"*/*/{DONE_MARKER}"))]
    return pd.DataFrame(rows, columns=COLUMNS)


def median_table(rows: pd.DataFrame, task: str) -> pd.DataFrame:
    """Median (over seeds) best metric, index = schedule, columns = LR0 (descending, as the paper)."""
    rows = rows[rows.task == task]
    fixed, free = rows[rows.lr0.notna()], rows[rows.lr0.isna()]
    table = fixed.groupby(["schedule", "lr0"]).best_metric.median().unstack("lr0")
    table = table.reindex(columns=sorted(table.columns, reverse=True))
    for schedule, group in free.groupby("schedule"):
        table.loc[schedule] = group.best_metric.median()
    return table


@hydra.main(version_base="1.3", config_path="../configs", config_name="benchmark")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    rows = collect(cfg.paths.artifacts, cfg.stage)
    if rows.empty:
        raise DataError(f"no finished runs under {Path(cfg.paths.artifacts) / 'experiments' / cfg.stage}")
    if cfg.stage == "n_study":  # one row per invocation frequency n (App. A.5, Fig. 14)
        rows = rows.assign(schedule=[f"{s} n={int(n)}" for s, n in zip(rows.schedule, rows.frequency)])
    out = Path(cfg.paths.artifacts) / "experiments" / cfg.stage
    atomic_write_text(out / "results.csv", rows.to_csv(index=False))
    for task in sorted(rows.task.unique()):
        table = median_table(rows, task)
        atomic_write_text(out / f"table_{task}.csv", table.to_csv())
        task_rows = rows[rows.task == task]
        print(f"\n{task}: median best {task_rows.metric.iloc[0]} ({task_rows.metric_mode.iloc[0]}) over seeds, "
              f"{len(task_rows)} runs, {task_rows.wall_seconds.sum():.0f} s of training")
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
