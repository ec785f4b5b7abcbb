"""`python -m experiments.range_test bench_task=<task>`: the LR range test ahead of super-convergence
(paper App. A.3; docs/experiments.md §7.4 "LR range test").

lr = range_lr_max * step / range_ramp_steps from 0; every "epoch" is range_steps_per_epoch train
steps followed by a full evaluation (CIFAR: on 20% of the train set; COCO: eval loss is minimised;
PTB: perplexity). LRmax = the LR in force at the eval with the best value (visualize_lr_selection.py).
Output: ${paths.benchmark}/range_test/<task>/ with log.txt, epochs.parquet and DONE =
{lr_max, best_epoch, best_value, criterion}; the benchmark's SC runs read it.
"""
from __future__ import annotations

import json
import math

from omegaconf import DictConfig

import experiments.config  # noqa: F401  (registers the schemas)
from core.config import check_profile
from core.cli import stage
from core.errors import ConfigError
from core.history import RunHistory
from core.instantiate import build_task
from core.optim import optimizer_factory
from core.runs import train_into
from core.schedules import LinearRamp
from core.training import Run, run_options
from core.bench_run import range_test_dir
from experiments.benchmark import use_threads


def pick_lr_max(history: RunHistory, criterion: str, metric_mode: str) -> tuple[float, int, float]:
    """(LRmax, 1-based epoch, value): the eval with the best metric (or lowest eval loss) and its LR."""
    if criterion == "loss":
        values, mode = history.eval_loss, "min"
    else:
        values, mode = history.eval_metric, metric_mode
    finite = [(v, e) for e, v in enumerate(values, 1) if math.isfinite(v)]
    if not finite:
        raise ConfigError("LR range test: no finite eval value (lower bench_task.range_lr_max or range_ramp_steps)")
    value, epoch = (max if mode == "max" else min)(finite, key=lambda pair: pair[0])
    return history.epoch_lr[epoch - 1], epoch, value


def range_test(cfg: DictConfig) -> dict:
    use_threads(cfg.threads)
    task_cfg = cfg.bench_task
    if task_cfg.range_criterion not in ("metric", "loss"):
        raise ConfigError(f"bench_task.range_criterion must be 'metric' or 'loss', got {task_cfg.range_criterion}")
    check_profile(cfg)
    out = range_test_dir(cfg)
    holdout = {"holdout_fraction": task_cfg.range_holdout_fraction} if task_cfg.range_holdout_fraction else {}
    task = build_task(task_cfg.build, "bench_task.build", device=cfg.profile.device, **holdout)
    ramp = LinearRamp(task_cfg.range_lr_max, task_cfg.range_ramp_steps)

    def make_run() -> Run:
        # the optimizer's initial LR is overwritten at every step by the ramp
        optimizer = optimizer_factory(task_cfg.optimizer, momentum=task_cfg.momentum,
                                      momentum_form=task_cfg.momentum_form)
        return Run(task, optimizer, task_cfg.range_lr_max / task_cfg.range_ramp_steps, ramp, cfg.seed,
                   max_steps_per_epoch=task_cfg.range_steps_per_epoch, log_steps=task_cfg.range_steps_per_epoch,
                   **run_options(cfg.profile))

    def summarize(run: Run) -> dict:
        lr_max, epoch, value = pick_lr_max(run.history, task_cfg.range_criterion, run.task.metric_mode)
        return {"lr_max": lr_max, "best_range_epoch": epoch, "best_value": value}

    row = {"task": task_cfg.name, "criterion": task_cfg.range_criterion}
    return train_into(out, cfg, make_run, task_cfg.range_epochs, 1, row, summarize)


def run_and_print(cfg: DictConfig) -> None:
    print(json.dumps(range_test(cfg), default=str))


main = stage("range_test")(run_and_print)

if __name__ == "__main__":
    main()
