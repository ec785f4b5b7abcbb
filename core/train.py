"""`python -m core.train`: one training run, resumable, with FE log + Parquet records.

Output: ${paths.artifacts}/train/<task>-<optimizer>-lr<lr>-<schedule>-s<seed>-<hash>/ holding
config.yaml, log.txt (FastEstimator format), epochs.parquet, steps.parquet, checkpoint.pt and DONE
(core.runs.train_into). Rerunning the same command skips a finished run and resumes an unfinished one.
"""
from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from core.config import check_profile
from core.artifacts import config_digest
from core.cli import run_stage
from core.errors import ConfigError, exit_on_user_error
from core.instantiate import build
from core.runs import train_into
from core.training import Run, load_checkpoint


def run_name(cfg: DictConfig) -> str:
    key = OmegaConf.to_container(cfg, resolve=True)
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
    task = build(cfg.task.build, "task.build")
    schedule = build({k: v for k, v in cfg.schedule.items() if k != "name"}, "schedule")

    out = Path(cfg.paths.artifacts) / "train" / run_name(cfg)
    opt = cfg.optimizer

    def make_run() -> Run:
        run = Run(task, opt.name, opt.lr, schedule, cfg.seed, opt.momentum, opt.weight_decay,
                  cfg.max_steps_per_epoch, log_steps=cfg.log_steps, device=cfg.profile.device)
        if init_state is not None:
            run.load_state_dict(init_state)
        return run

    train_into(out, cfg, make_run, cfg.epochs, cfg.checkpoint_every, keep_checkpoint=True)
    return out


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    train_one(cfg)


if __name__ == "__main__":
    run_stage(main)
