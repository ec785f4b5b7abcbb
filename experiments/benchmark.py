"""`python -m experiments.benchmark`: one run of the benchmark grid (paper §4, SPEC §7) or of the
invocation-frequency study (`--config-name n_study`, App. A.5). The grid is a Hydra multirun.

Output: ${paths.artifacts}/experiments/<stage>/<task>/<schedule>-lr<LR0>-s<seed>-<digest>/ with
config.yaml, log.txt (FastEstimator format), epochs.parquet, steps.parquet and DONE = the result row (task,
schedule, lr0, seed, best/final metric, epoch of best, diverged, wall seconds). experiments.table
collects the rows.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

import experiments.config  # noqa: F401  (registers the schemas)
from core.config import check_profile
from core.cli import run_stage
from core.artifacts import config_digest, is_done, read_done
from core.errors import ConfigError, DataError, exit_on_user_error
from core.instantiate import build
from core.runs import train_into
from core.training import Run
from experiments.optimizers import OptimizerMethod, attach

SC_F_RANGE = (5.0, 40.0)  # App. A.3: f in [5, 40]


def use_threads(threads: int) -> None:
    """One torch thread per job by default: the joblib launcher runs jobs side by side."""
    if threads > 0:
        torch.set_num_threads(threads)


def range_test_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.artifacts) / "experiments" / "range_test" / cfg.bench_task.name


def sc_lr0(lr_max: float, f: float, grid: list[float]) -> float:
    """LR0 = LRmax / f' with f' in [5, 40] landing on a grid LR0, closest to the task's f (App. A.3:
    the paper picked f = 19.8 / 10 / 23.2 so that LR0 = 0.01 / 0.001 / 1.0); LRmax / f if none fits."""
    fits = [g for g in grid if SC_F_RANGE[0] <= lr_max / g <= SC_F_RANGE[1]]
    if not fits:
        return lr_max / f
    return min(fits, key=lambda g: abs(math.log(lr_max / g / f)))


def choose_lr0(cfg: DictConfig, schedule_node: DictConfig) -> tuple[float | None, dict]:
    """(LR0 or None for LR-free methods, schedule kwargs filled in here). Validates before any work."""
    task, target = cfg.bench_task, schedule_node._target_
    method_cls = hydra.utils.get_class(target)
    lr_free = issubclass(method_cls, OptimizerMethod) and method_cls.lr_free
    if cfg.lr0_index is not None and not 0 <= cfg.lr0_index < len(task.lr0s):
        raise ConfigError(f"lr0_index must be in 0..{len(task.lr0s) - 1} for {task.name}, got {cfg.lr0_index}")
    if lr_free:
        if cfg.lr0_index is not None:
            raise ConfigError(f"schedule {cfg.schedule.name} chooses its own step size: drop lr0_index")
        return None, {}
    if target.endswith("SuperConvergence") and schedule_node.get("lr_max") is None:
        done = range_test_dir(cfg)
        if not is_done(done):
            raise DataError(f"schedule sc: no LR range test result at {done} (run `make range-test` or "
                            f"`python -m experiments.range_test bench_task={task.name}` first)")
        lr_max = read_done(done)["lr_max"]
        lr0 = task.lr0s[cfg.lr0_index] if cfg.lr0_index is not None else sc_lr0(lr_max, task.sc_f, list(task.lr0s))
        return lr0, {"lr_max": lr_max}
    if target.endswith("SuperConvergence") and cfg.lr0_index is None:  # paper: LRmax given (0.198 / 0.01 / 23.2)
        return sc_lr0(schedule_node.lr_max, task.sc_f, list(task.lr0s)), {}
    if cfg.lr0_index is None:
        raise ConfigError(f"schedule {cfg.schedule.name} needs lr0_index (0..{len(task.lr0s) - 1}: {list(task.lr0s)})")
    return task.lr0s[cfg.lr0_index], {}


def epochs_of(cfg: DictConfig) -> int:
    """Task epochs; the n-study trains epochs * n / 3 for n > 3 (30 -> 40, 50, 60 in the paper)."""
    epochs = cfg.bench_task.size.epochs
    n = cfg.schedule.get("frequency", 3)
    return epochs * n // 3 if cfg.scale_epochs_with_frequency and n > 3 else epochs


def benchmark_one(cfg: DictConfig) -> dict:
    use_threads(cfg.threads)
    schedule_node = OmegaConf.create({k: v for k, v in cfg.schedule.items() if k != "name"})
    weights = schedule_node.get("weights")
    if weights is not None and not Path(weights).is_file():
        raise DataError(f"schedule.weights: ARC weights not found: {weights} (set arc_weights=/path/arc.h5)")
    check_profile(cfg)
    lr0, schedule_kwargs = choose_lr0(cfg, schedule_node)
    task = build(cfg.bench_task.size.build, "bench_task.size.build")
    schedule = build(schedule_node, "schedule", **schedule_kwargs)
    size, epochs = cfg.bench_task.size, epochs_of(cfg)
    key = OmegaConf.to_container(cfg, resolve=True)
    for volatile in ("paths", "threads", "arc_weights"):
        key.pop(volatile, None)
    key["lr0"], key["schedule_kwargs"] = lr0, schedule_kwargs
    lr_label = "free" if lr0 is None else f"{lr0:g}"
    out = (Path(cfg.paths.artifacts) / "experiments" / cfg.stage / cfg.bench_task.name
           / f"{cfg.schedule.name}-lr{lr_label}-s{cfg.seed}-{config_digest(key)}")
    row = {"task": cfg.bench_task.name, "schedule": cfg.schedule.name, "lr0": lr0, "seed": cfg.seed,
           "frequency": cfg.schedule.get("frequency")}

    def make_run() -> Run:
        start_lr = lr0 if lr0 is not None else 1.0
        run = Run(task, cfg.bench_task.optimizer, start_lr, schedule, cfg.seed, cfg.bench_task.momentum,
                  max_steps_per_epoch=size.max_steps_per_epoch or task.steps_per_epoch,
                  log_steps=size.log_steps, device=cfg.profile.device)
        if isinstance(schedule, OptimizerMethod):
            attach(run, schedule, cfg.bench_task.optimizer, start_lr, cfg.bench_task.momentum)
        return run

    return train_into(out, cfg, make_run, epochs, cfg.checkpoint_every, row)


@hydra.main(version_base="1.3", config_path="../configs", config_name="benchmark")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    print(json.dumps(benchmark_one(cfg), default=str))


if __name__ == "__main__":
    run_stage(main)
