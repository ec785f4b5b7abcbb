"""`python -m core.single_run`: one training run of a task, resumable, with FE log + Parquet records.

Output: ${paths.single_runs}/<task>-<optimizer>-lr<lr>-<schedule>-s<seed>-<hash>/ holding
config.yaml, log.txt (FastEstimator format), epochs.parquet, steps.parquet, checkpoint.pt and DONE
(core.runs.train_into). Rerunning the same command skips a finished run and resumes an unfinished one.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from core.artifacts import config_digest, location_free
from core.cli import stage
from core.config import check_profile
from core.errors import ConfigError
from core.instantiate import build, constructor_node
from core.optim import optimizer_factory
from core.runs import train_into
from core.training import Run, load_checkpoint, run_options


def run_name(cfg: DictConfig) -> str:
    key = location_free(cfg)
    key.pop("paths", None)
    return (f"{cfg.task.name}-{cfg.optimizer.name}-lr{cfg.optimizer.lr:g}-{cfg.schedule.name}-s{cfg.seed}"
            f"-{config_digest(key)}")


def train_one(cfg: DictConfig) -> Path:
    check_profile(cfg)
    if cfg.optimizer.lr <= 0:
        raise ConfigError(f"optimizer.lr must be > 0, got {cfg.optimizer.lr}")
    if cfg.epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {cfg.epochs}")
    init_state = load_checkpoint(cfg.init_checkpoint) if cfg.init_checkpoint else None
    task = build(cfg.task.build, "task.build", device=cfg.profile.device)
    schedule = build(constructor_node(cfg.schedule, "schedule", "set it on the command line"), "schedule")

    out = Path(cfg.paths.single_runs) / run_name(cfg)
    opt = cfg.optimizer

    def make_run() -> Run:
        optimizer = optimizer_factory(opt.name, opt.momentum, opt.weight_decay)
        run = Run(task, optimizer, opt.lr, schedule, cfg.seed, cfg.max_steps_per_epoch, log_steps=cfg.log_steps,
                  **run_options(cfg.profile))
        if init_state is not None:
            run.load_state_dict(init_state)
        return run

    train_into(out, cfg, make_run, cfg.epochs, cfg.checkpoint_every, keep_checkpoint=True)
    return out


main = stage("train")(train_one)

if __name__ == "__main__":
    main()
