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

Output: core.bench_run.run_dir, ${paths.benchmark}/<study>/<task>/<schedule>-lr<LR0>-s<seed>-<digest>/, with config.yaml, log.txt
(FastEstimator format), epochs.parquet, steps.parquet and DONE = the result row (task, schedule, lr0, seed,
best/final metric, epoch of best, diverged, wall seconds). experiments.table collects the rows.
"""
from __future__ import annotations

import json

from omegaconf import DictConfig

import experiments.config  # noqa: F401  (registers the schemas)
from core.bench_run import arc_weights, check_weights, lr0_of, no_weights, run_dir, schedule_kwargs, schedule_node
from core.cli import stage
from core.config import check_profile
from core.instantiate import build, build_task
from core.runs import train_into

# torch and the training loop are imported by the job that trains (benchmark_one), not at module import:
# a grid's main process only composes configs and launches workers, and starts its first job ~1.5 s sooner
# (`make bench BENCH=grid`).


def use_threads(threads: int) -> None:
    """One torch thread per job by default: the joblib launcher runs jobs side by side."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def epochs_of(cfg: DictConfig) -> int:
    """Task epochs; the n-study trains epochs * n / 3 for n > 3 (30 -> 40, 50, 60 in the paper)."""
    epochs = cfg.bench_task.epochs
    n = cfg.schedule.get("frequency", 3)
    return epochs * n // 3 if cfg.scale_epochs_with_frequency and n > 3 else epochs


def benchmark_one(cfg: DictConfig) -> dict | None:
    from core.optim import optimizer_factory
    from core.training import Run, run_options
    from experiments.optimizers import OptimizerMethod

    use_threads(cfg.threads)
    node = schedule_node(cfg)
    weights = arc_weights(cfg, node)
    if weights is None and "weights" in node:
        print(f"skip: {no_weights(cfg)}")
        return None
    check_weights(weights)
    if weights is not None:  # an earlier stage's file (or the user's): refused before anything is written
        from arc_model.weights import load_keras_h5

        load_keras_h5(weights)
    check_profile(cfg)
    kwargs = schedule_kwargs(cfg, node)
    schedule = build(node, "schedule", **kwargs, **({"weights": weights} if weights is not None else {}))
    lr0, skip = lr0_of(cfg, schedule)
    if skip:
        print(f"skip: {skip}")
        return None
    task_cfg, epochs = cfg.bench_task, epochs_of(cfg)
    task = build_task(task_cfg.build, "bench_task.build", device=cfg.profile.device)
    out = run_dir(cfg, lr0, kwargs, weights)  # the one name of this run (core.bench_run; the tables read it)
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
                   max_steps_per_epoch=task_cfg.max_steps_per_epoch, log_steps=task_cfg.log_steps,
                   **run_options(cfg.profile))

    return train_into(out, cfg, make_run, epochs, cfg.checkpoint_every, row,
                      checkpoint_seconds=cfg.checkpoint_seconds)


def run_and_print(cfg: DictConfig) -> None:
    row = benchmark_one(cfg)
    if row is not None:
        print(json.dumps(row, default=str))


main = stage("benchmark")(run_and_print)

if __name__ == "__main__":
    main()
