"""`python -m core.train`: one training run, resumable, with FE log + Parquet records.

Output: ${paths.artifacts}/train/<task>-<optimizer>-lr<lr>-<schedule>-s<seed>-<hash>/ holding
config.yaml, log.txt (FastEstimator format), epochs.parquet, steps.parquet, checkpoint.pt and DONE.
Rerunning the same command skips a finished run and resumes an unfinished one from its checkpoint.
"""
from __future__ import annotations

import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

import core.config  # noqa: F401  (registers the schemas)
from core.artifacts import atomic_write, atomic_write_text, config_digest, is_done, mark_done
from core.cli import run_stage
from core.errors import ConfigError, DataError, exit_on_user_error
from core.instantiate import build
from core.training import Run, load_checkpoint


def validate_common(cfg: DictConfig) -> None:
    """Checks shared by every stage; raise before anything is written."""
    if cfg.optimizer.lr <= 0:
        raise ConfigError(f"optimizer.lr must be > 0, got {cfg.optimizer.lr}")
    if str(cfg.profile.device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"profile.device={cfg.profile.device} but no CUDA device is visible "
                          "(override with profile.device=cpu)")
    if cfg.profile.requires_data_dir and not Path(cfg.paths.data).is_dir():
        raise DataError(f"paths.data: data directory not found: {cfg.paths.data} "
                        f"(profile '{cfg.profile.name}' reads real datasets from it)")


def run_name(cfg: DictConfig) -> str:
    key = OmegaConf.to_container(cfg, resolve=True)
    key.pop("paths", None)
    return (f"{cfg.task.name}-{cfg.optimizer.name}-lr{cfg.optimizer.lr:g}-{cfg.schedule.name}-s{cfg.seed}"
            f"-{config_digest(key)}")


def train_one(cfg: DictConfig) -> Path:
    validate_common(cfg)
    if cfg.epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {cfg.epochs}")
    init_state = load_checkpoint(cfg.init_checkpoint) if cfg.init_checkpoint else None
    task = build(cfg.task.build, "task.build")
    schedule = build({k: v for k, v in cfg.schedule.items() if k != "name"}, "schedule")

    out = Path(cfg.paths.artifacts) / "train" / run_name(cfg)
    if is_done(out):
        print(f"done already: {out}")
        return out
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    opt = cfg.optimizer
    run = Run(task, opt.name, opt.lr, schedule, cfg.seed, opt.momentum, opt.weight_decay,
              cfg.max_steps_per_epoch, log_steps=cfg.log_steps, device=cfg.profile.device)
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        run.restore(checkpoint)
        print(f"resuming {out} at epoch {run.epoch}")
    elif init_state is not None:
        run.load_state_dict(init_state)
    run.open_log(out / "log.txt")
    start = time.perf_counter()
    while run.epoch < cfg.epochs and not run.history.diverged:
        run.train(min(cfg.checkpoint_every, cfg.epochs - run.epoch), total_epochs=cfg.epochs)
        run.save(checkpoint)
    run.finish_log(time.perf_counter() - start)
    history = run.history
    atomic_write(out / "epochs.parquet", lambda tmp: history.epoch_frame().to_parquet(tmp, index=False))
    atomic_write(out / "steps.parquet", lambda tmp: history.step_frame().to_parquet(tmp, index=False))
    best, best_epoch = history.best_metric(task.metric_mode)
    summary = {"best_metric": best, "best_epoch": best_epoch, "final_metric": history.eval_metric[-1],
               "diverged": history.diverged, "metric": task.metric_name, "epochs": history.epochs}
    mark_done(out, summary)
    print(f"{out}: {task.metric_name} best {best:.4f} at epoch {best_epoch}, diverged={history.diverged}")
    return out


@hydra.main(version_base="1.3", config_path="../configs", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    train_one(cfg)


if __name__ == "__main__":
    run_stage(main)
