"""`python -m experiments.table profile=mini [study=n_study]`: a study's result rows and, per task, the table of
median best metric per schedule x LR0 (paper Tables 2-4; the cell rule is core.results).

Writes ${paths.benchmark}/<study>/results.csv and table_<task>.csv, and prints the tables.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

import experiments.config  # noqa: F401  (registers the schemas)
from core.artifacts import atomic_write_text
from core.cli import stage
from core.errors import DataError
from core.results import median_table, study_rows


def write_tables(cfg: DictConfig) -> None:
    out = Path(cfg.paths.benchmark) / cfg.study
    rows = study_rows(cfg.paths.benchmark, cfg.study)
    if rows.empty:
        raise DataError(f"no finished runs under {out}")
    atomic_write_text(out / "results.csv", rows.drop(columns="run_dir").to_csv(index=False))
    for task in sorted(rows.task.unique()):
        table = median_table(rows, task)
        atomic_write_text(out / f"table_{task}.csv", table.to_csv())
        task_rows = rows[rows.task == task]
        print(f"\n{task}: median best {task_rows.metric.iloc[0]} ({task_rows.metric_mode.iloc[0]}) over seeds, "
              f"{len(task_rows)} runs, {task_rows.wall_seconds.sum():.0f} s of training")
        print(table.to_string(float_format=lambda v: f"{v:.4f}"))


main = stage("benchmark")(write_tables)

if __name__ == "__main__":
    main()
