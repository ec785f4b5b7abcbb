"""Train one ARC candidate and score it on held-out points (SPEC §4, §10.1).

Ten candidates = a Hydra multirun over `seed` (`make train_arc`). Output, per candidate:
${paths.artifacts}/train_arc/<data>-<preprocessing>-s<seed>-<digest>/ with config.yaml, log.txt
(FastEstimator format), epochs.parquet (per-epoch train losses and held-out metrics), arc.h5 (the
final model: the authors' ModelSaver kept only epoch 300, SPEC §4.3), best_<metric>.h5 (the metric
study's best-by-metric models, SPEC §10.1), checkpoint.pt (resume) and DONE (summary) written last.
Every input is checked before anything is written; a rerun skips DONE candidates and resumes others.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

import arc_model.config  # noqa: F401  (registers the schema)
from arc_model.data import build_inputs, holdout_split, load_points
from arc_model.metrics import MODES
from arc_model.preprocess import check_preprocessing
from arc_model.synthetic import synthetic_points
from arc_model.trainer import CandidateTrainer
from arc_model.weights import save_keras_h5
from core.config import check_profile
from core.artifacts import atomic_write, atomic_write_text, config_digest, is_done, mark_done
from core.errors import ConfigError, DataError
from core.felog import FELogWriter
from core.training import load_checkpoint

STAGE = "train_arc"


def validate(cfg: DictConfig) -> None:
    checks = [(cfg.epochs >= 1, "epochs must be >= 1"), (cfg.batch_size >= 1, "batch_size must be >= 1"),
              (cfg.lr > 0, "lr must be > 0"), (0 <= cfg.val_dropout <= 1, "val_dropout must be in [0, 1]"),
              (0 <= cfg.data.holdout < 1, "data.holdout must be in [0, 1)"),
              (cfg.threads >= 1, "threads must be >= 1"), (cfg.log_steps >= 1, "log_steps must be >= 1"),
              (cfg.checkpoint_every >= 1, "checkpoint_every must be >= 1")]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    check_preprocessing(cfg.preprocessing)
    check_profile(cfg, needs_data=False)


def load_data(cfg: DictConfig) -> tuple[pd.DataFrame, str, str]:
    """(points, short tag, content digest). SYNTHETIC points when data.synthetic_points > 0."""
    if cfg.data.synthetic_points > 0:
        points = synthetic_points(cfg.data.synthetic_points, seed=cfg.data.split_seed)
        return points, f"synthetic{cfg.data.synthetic_points}", "synthetic"
    path = Path(cfg.data.path)
    if not path.is_file():
        raise DataError(f"data.path: ARC dataset not found: {path} (datagen writes it; "
                        f"data.synthetic_points=N trains on SYNTHETIC points instead, for timing only)")
    points = load_points(path)
    return points, path.stem, hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def run_dir(cfg: DictConfig, tag: str, data_digest: str) -> Path:
    key = OmegaConf.to_container(cfg, resolve=True)
    for volatile in ("paths", "threads", "checkpoint_every", "log_steps", "dry_run"):  # do not change the result
        key.pop(volatile)
    key["data"]["path"] = data_digest  # the content, not where it lies
    name = f"{tag}-{cfg.preprocessing}-s{cfg.seed}-{config_digest(key)}"
    return Path(cfg.paths.artifacts) / STAGE / name


def train_candidate(cfg: DictConfig) -> Path:
    validate(cfg)
    points, tag, data_digest = load_data(cfg)
    inputs, labels = build_inputs(points, cfg.preprocessing)
    train_idx, held_idx = holdout_split(points, cfg.data.holdout, cfg.data.split_seed, cfg.data.holdout_by_run)
    if len(train_idx) == 0:
        raise ConfigError(f"data.holdout={cfg.data.holdout} leaves no training points")
    out = run_dir(cfg, tag, data_digest)
    if cfg.dry_run:
        print(f"ok: {len(points)} points ({len(train_idx)} train, {len(held_idx)} held out) -> {out}")
        return out
    if is_done(out):
        print(f"done already: {out}")
        return out
    torch.set_num_threads(cfg.threads)
    trainer = CandidateTrainer(inputs, labels, train_idx, held_idx, cfg.seed, cfg.batch_size, cfg.lr,
                               cfg.val_dropout, cfg.profile.device)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    checkpoint, log_path = out / "checkpoint.pt", out / "log.txt"
    if checkpoint.exists():
        state = load_checkpoint(checkpoint, required=("trainer", "log_offset"), kind="ARC candidate")
        trainer.load_state_dict(state["trainer"])
        with open(log_path, "a") as f:
            f.truncate(state["log_offset"])
        log = FELogWriter(log_path, append=True)
        print(f"resuming {out} at epoch {trainer.epoch}")
    else:
        log = FELogWriter(log_path)
        log.start(cfg.log_steps)
    start = time.perf_counter()
    while trainer.epoch < cfg.epochs:
        trainer.train_epoch(log, cfg.log_steps)
        if trainer.epoch % cfg.checkpoint_every == 0 or trainer.epoch == cfg.epochs:
            state = {"trainer": trainer.state_dict(), "log_offset": log.tell()}
            atomic_write(checkpoint, lambda tmp: torch.save(state, tmp))
    log.write("Finish", trainer.global_step, total_time=f"{time.perf_counter() - start:.2f} sec")
    log.close()
    save_keras_h5(trainer.model.cpu(), out / "arc.h5")
    for metric, best in trainer.best.items():
        save_keras_h5(trainer.model_from(best["model"]), out / f"best_{metric}.h5")
    frame = pd.DataFrame(trainer.rows)
    atomic_write(out / "epochs.parquet", lambda tmp: frame.to_parquet(tmp, index=False))
    final = {k: v for k, v in trainer.rows[-1].items() if k in MODES or k == "val_ce"}
    summary = {"seed": cfg.seed, "data": tag, "preprocessing": cfg.preprocessing, "points": len(points),
               "train_points": len(train_idx), "held_out_points": len(held_idx), "epochs": trainer.epoch,
               "final": final, "best_epoch": {m: b["epoch"] for m, b in trainer.best.items()},
               "seconds": round(time.perf_counter() - start, 2)}
    mark_done(out, summary)
    print(f"{out}: " + ", ".join(f"{k} {v:.4f}" for k, v in final.items()))
    return out
