"""`python -m experiments.table profile=mini [study=n_study]`: a study's result rows and, per task, the table of
median best metric per schedule x LR0 (paper Tables 2-4; the cell rule is core.results).

The rows are exactly the runs the current config names (core.bench_run.named_runs): those `python -m
experiments.benchmark -m experiment=<E> <these overrides>` writes for every experiment E of the study, or for the
`experiment=` given here. Runs on disk that it does not name (another ARC model, other settings) are counted and
ignored; runs it names that have not finished are counted as missing, and the jobs whose run cannot be named yet
(no ARC weights, no range test) are listed.

Writes ${paths.benchmark}/<study>/results.csv and table_<task>.csv, and prints the tables.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

import experiments.config  # noqa: F401  (registers the schemas)
from core.artifacts import atomic_write_text
from core.bench_run import named_runs, reader_overrides
from core.cli import stage
from core.errors import DataError
from core.results import median_table, study_rows


def command_line() -> list[str]:
    """This command's own overrides (they configure the benchmark config the runs are named from)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def write_tables(cfg: DictConfig, overrides: list[str] | None = None) -> None:
    out = Path(cfg.paths.benchmark) / cfg.study
    named = named_runs(cfg.study, reader_overrides(cfg) + (command_line() if overrides is None else overrides))
    rows = study_rows(cfg.paths.benchmark, cfg.study, named.runs)
    if rows.empty:
        raise DataError(f"no finished runs under {out} that the config names ({len(named.runs)} runs named, "
                        f"{len(named.unnamed)} more cannot be named yet)")
    for line in named.report():
        print(line)
    atomic_write_text(out / "results.csv", rows.assign(run=rows.run_dir.map(lambda d: Path(d).name))  # which run
                      .drop(columns="run_dir").to_csv(index=False))
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
