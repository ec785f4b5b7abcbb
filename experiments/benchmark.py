"""Stage 5, `python -m experiments.benchmark`: one run of a benchmark study (paper §4 and App. A;
docs/experiments.md §7, §10). A study is a Hydra multirun configured in configs/experiment/, e.g.
  python -m experiments.benchmark -m experiment=table2_cifar10 profile=mini

A run is task x schedule x LR0 x seed. Settings of one schedule on one task (CCD's T0, ED's gamma, SC's f,
LRmax and phase) come from the specialising config configs/bench_schedule/<task>_<schedule>.yaml; a schedule
that needs one on a task that has none is an error naming the file to add.

Methods that pick their own LR0 (SC: LRmax / f, App. A.3; SLS and Prodigy: LR-free) are swept over the study's
LR0s like the others, so one command runs a whole table, but such a run trains in one column only: SC in the
column of its own LR0, an LR-free method in the task's first LR0 (tables repeat it across columns, as the paper
does for SLS). Its jobs for the other LR0s print `skip:` and write nothing. Without `lr0` they just run.

Output: ${paths.benchmark}/<study>/<task>/<schedule>-lr<LR0>-s<seed>-<digest>/ with config.yaml, log.txt
(FastEstimator format), epochs.parquet, steps.parquet and DONE = the result row (task, schedule, lr0, seed,
best/final metric, epoch of best, diverged, wall seconds). experiments.table collects the rows.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from omegaconf import DictConfig

import experiments.config  # noqa: F401  (registers the schemas)
from core.artifacts import config_digest, is_done, location_free, read_done
from core.cli import stage
from core.config import check_profile
from core.errors import ConfigError, CorruptArtifact, DataError
from core.instantiate import build, build_task, constructor_node
from core.runs import finished_runs, train_into

# torch and the training loop are imported by the job that trains (benchmark_one, lr0_of), not at module import:
# a grid's main process only composes configs and launches workers, and starts its first job ~1.5 s sooner
# (`make bench BENCH=grid`).

SC_LR_MAX = ("authors", "from_range_test")  # sc_lr_max: the schedule's lr_max (authors') or this project's range test


def use_threads(threads: int) -> None:
    """One torch thread per job by default: the joblib launcher runs jobs side by side."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def range_test_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.benchmark) / "range_test" / cfg.bench_task.name


def schedule_node(cfg: DictConfig) -> DictConfig:
    """The schedule's constructor node; a setting no config gave for this task is an error naming the file."""
    return constructor_node(cfg.schedule, "schedule", f"schedule={cfg.schedule.name} needs it for bench_task="
                            f"{cfg.bench_task.name}: add configs/bench_schedule/{cfg.bench_task.name}_"
                            f"{cfg.schedule.name}.yaml")


def arc_weights(cfg: DictConfig, node: DictConfig) -> str | None:
    """The ARC model to deploy: the schedule's `weights` (default ${paths.selected_arc}), or with
    `arc_candidate=N` the file `<arc_model_file>.h5` of candidate N under ${paths.candidates} (metric study)."""
    if cfg.arc_candidate is not None:
        runs = finished_runs(cfg.paths.candidates)
        mine = runs[runs.candidate == cfg.arc_candidate] if "candidate" in runs else runs.iloc[:0]
        if len(mine) != 1:
            raise DataError(f"arc_candidate={cfg.arc_candidate}: {len(mine)} finished candidates with that id under "
                            f"{cfg.paths.candidates} (need exactly one)")
        return str(Path(mine.run_dir.iloc[0]) / f"{cfg.arc_model_file}.h5")
    return node.get("weights")


def lr0_of(cfg: DictConfig, schedule) -> tuple[float | None, str | None]:
    """(the run's LR0, or None for LR-free methods; why this job skips, or None)."""
    from experiments.optimizers import OptimizerMethod

    grid, lr0 = list(cfg.bench_task.lr0s), cfg.lr0
    if not grid or not all(g > 0 for g in grid):
        raise ConfigError(f"bench_task.lr0s must be a non-empty list of positive LRs, got {grid}")
    if cfg.lr0_column is not None:
        if lr0 is not None or not 0 <= cfg.lr0_column < len(grid):
            raise ConfigError(f"lr0_column={cfg.lr0_column}: give lr0 or lr0_column, a column of {grid} "
                              f"(0..{len(grid) - 1}) for {cfg.bench_task.name}")
        lr0 = grid[cfg.lr0_column]
    if lr0 is not None and not lr0 > 0:
        raise ConfigError(f"lr0 must be > 0, got {lr0}")
    if isinstance(schedule, OptimizerMethod) and schedule.lr_free:
        column = grid[0]
        if lr0 is not None and not math.isclose(lr0, column):
            return None, f"{cfg.schedule.name} is LR-free: it runs once, in the LR0 {column:g} column"
        return None, None
    if hasattr(schedule, "own_lr0"):
        own = schedule.own_lr0(grid)
        column = min(grid, key=lambda g: abs(math.log(g / own)))
        if lr0 is not None and not math.isclose(lr0, column):
            return own, f"{cfg.schedule.name} runs at its own LR0 {own:g}, in the LR0 {column:g} column"
        return own, None
    if lr0 is None:
        raise ConfigError(f"schedule {cfg.schedule.name} needs lr0 (the task's grid: {grid})")
    return lr0, None


def epochs_of(cfg: DictConfig) -> int:
    """Task epochs; the n-study trains epochs * n / 3 for n > 3 (30 -> 40, 50, 60 in the paper)."""
    epochs = cfg.bench_task.size.epochs
    n = cfg.schedule.get("frequency", 3)
    return epochs * n // 3 if cfg.scale_epochs_with_frequency and n > 3 else epochs


def range_test_lr_max(done: Path) -> float:
    """LRmax of a finished range test; CorruptArtifact naming its DONE when damaged (the range test redoes it)."""
    hint = "rerun `make range-test`: it redoes a damaged test"
    try:
        row = read_done(done)
    except CorruptArtifact as err:
        raise CorruptArtifact(f"{err} ({hint})") from None
    try:
        return float(row["lr_max"])
    except (KeyError, TypeError, ValueError):
        raise CorruptArtifact(f"{done / 'DONE'}: no LRmax in this range test's DONE marker ({hint})") from None


def file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def benchmark_one(cfg: DictConfig) -> dict | None:
    from core.optim import optimizer_factory
    from core.training import Run, run_options
    from experiments.optimizers import OptimizerMethod

    use_threads(cfg.threads)
    node = schedule_node(cfg)
    weights = arc_weights(cfg, node)
    if weights is None and "weights" in node:
        print(f"skip: schedule {cfg.schedule.name} has no ARC weights here (set paths.published_arc, or the env "
              "variable ARC_PUBLISHED_WEIGHTS, to FastEstimator's published arc.h5)")
        return None
    if weights is not None and not Path(weights).is_file():
        raise DataError(f"schedule.weights: ARC weights not found: {weights} (run `make select`, or set "
                        "paths.selected_arc=/path/arc.h5)")
    if weights is not None:  # an earlier stage's file (or the user's): refused before anything is written
        from arc_model.weights import load_keras_h5

        load_keras_h5(weights)
    check_profile(cfg)
    kwargs = {}
    if weights is not None:
        kwargs["weights"] = weights
    if "lr_max" in node and cfg.sc_lr_max not in SC_LR_MAX:
        raise ConfigError(f"sc_lr_max must be one of {', '.join(SC_LR_MAX)}, got {cfg.sc_lr_max}")
    if "lr_max" in node and (cfg.sc_lr_max == "from_range_test" or node.lr_max is None):  # SC: this profile's test
        done = range_test_dir(cfg)
        if not is_done(done):
            raise DataError(f"schedule sc: no LR range test result at {done} (run `make range-test` or "
                            f"`python -m experiments.range_test bench_task={cfg.bench_task.name}` first)")
        kwargs["lr_max"] = range_test_lr_max(done)
    schedule = build(node, "schedule", **kwargs)
    lr0, skip = lr0_of(cfg, schedule)
    if skip:
        print(f"skip: {skip}")
        return None
    task_cfg, size, epochs = cfg.bench_task, cfg.bench_task.size, epochs_of(cfg)
    task = build_task(size.build, "bench_task.size.build", device=cfg.profile.device)
    key = location_free(cfg)
    for volatile in ("paths", "threads", "lr0", "lr0_column", "sizes",
                     "checkpoint_every", "checkpoint_seconds"):  # where and how, not what: no part of the result
        key.pop(volatile, None)
    key["bench_task"].pop("sizes")  # this profile's size stays (bench_task.size); other profiles' are not this run
    key["bench_task"]["size"].pop("stand_in")  # a display name
    key["lr0"], key["schedule_kwargs"] = lr0, {k: v for k, v in kwargs.items() if k != "weights"}
    if weights is not None:
        key["schedule"]["weights"] = file_digest(weights)  # the model, not where it lies
    lr_label = "free" if lr0 is None else f"{lr0:g}"
    out = (Path(cfg.paths.benchmark) / cfg.study / task_cfg.name
           / f"{cfg.schedule.name}-lr{lr_label}-s{cfg.seed}-{config_digest(key)}")
    row = {"task": task_cfg.name, "schedule": cfg.schedule.name, "lr0": lr0, "seed": cfg.seed,
           "frequency": cfg.schedule.get("frequency")}
    if cfg.arc_candidate is not None:
        row.update(arc_candidate=cfg.arc_candidate, arc_model_file=cfg.arc_model_file)
    if isinstance(schedule, OptimizerMethod):
        optimizer = schedule.for_task(task_cfg.optimizer, task_cfg.momentum)
    else:
        optimizer = optimizer_factory(task_cfg.optimizer, momentum=task_cfg.momentum,
                                      momentum_form=task_cfg.momentum_form)

    def make_run() -> Run:
        return Run(task, optimizer, lr0 if lr0 is not None else 1.0, schedule, cfg.seed,
                   max_steps_per_epoch=size.max_steps_per_epoch, log_steps=size.log_steps, **run_options(cfg.profile))

    return train_into(out, cfg, make_run, epochs, cfg.checkpoint_every, row,
                      checkpoint_seconds=cfg.checkpoint_seconds)


def run_and_print(cfg: DictConfig) -> None:
    row = benchmark_one(cfg)
    if row is not None:
        print(json.dumps(row, default=str))


main = stage("benchmark")(run_and_print)

if __name__ == "__main__":
    main()
