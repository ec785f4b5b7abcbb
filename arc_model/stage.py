"""Stage 3, `python -m arc_model`: train one ARC candidate and score it on held-out points (docs/experiments.md §4, §10.1).

Ten candidates = a Hydra multirun over `candidate` (`make train_arc`); the candidate id seeds its
initialisation and data order. Output, per candidate:
${paths.candidates}/<data>-<preprocessing>-c<candidate>-<digest>/ with config.yaml, log.txt
(FastEstimator format), epochs.parquet (per-epoch train losses and held-out metrics), arc.h5 (the
final model: the authors' ModelSaver kept only epoch 300, docs/experiments.md §4.3), best_<metric>.h5 (the metric
study's best-by-metric models, docs/experiments.md §10.1), checkpoint.pt (resume) and DONE (summary) written last.
Every input is checked before anything is written; a rerun skips DONE candidates and resumes others.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig

import arc_model.config  # noqa: F401  (registers the schema)
from arc_model.data import build_inputs, holdout_split, load_points
from arc_model.metrics import MODES
from arc_model.preprocess import check_preprocessing
from arc_model.synthetic import synthetic_points
from arc_model.candidate_trainer import CandidateTrainer
from arc_model.weights import load_keras_h5, save_keras_h5
from core.artifacts import atomic_write_parquet, check_parquet, config_digest, location_free, read_done
from core.config import check_profile
from core.errors import ConfigError, CorruptArtifact, DataError
from core.runs import resume_into


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
    points = load_points(path, cfg.data.trust_pickle)
    return points, path.stem, hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def run_dir(cfg: DictConfig, tag: str, data_digest: str) -> Path:
    key = location_free(cfg)
    for volatile in ("paths", "threads", "checkpoint_every", "log_steps", "dry_run"):  # do not change the result
        key.pop(volatile)
    key["data"]["path"] = data_digest  # the content, not where it lies
    key["data"].pop("trust_pickle")
    name = f"{tag}-{cfg.preprocessing}-c{cfg.candidate}-{config_digest(key)}"
    return Path(cfg.paths.candidates) / name


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
    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()

    def make_trainer() -> CandidateTrainer:
        return CandidateTrainer(inputs, labels, train_idx, held_idx, cfg.candidate, cfg.batch_size, cfg.lr,
                                cfg.val_dropout, cfg.profile.device, cfg.log_steps)

    def finish(trainer: CandidateTrainer) -> dict:
        trainer.log.write("Finish", trainer.global_step, total_time=f"{time.perf_counter() - start:.2f} sec")
        trainer.log.close()
        save_keras_h5(trainer.model.cpu(), out / "arc.h5")
        for metric, best in trainer.best.items():
            save_keras_h5(trainer.model_from(best["model"]), out / f"best_{metric}.h5")
        frame = pd.DataFrame(trainer.rows)
        atomic_write_parquet(out / "epochs.parquet", frame)
        final = {k: v for k, v in trainer.rows[-1].items() if k in MODES or k == "val_ce"}
        print(f"{out}: " + ", ".join(f"{k} {v:.4f}" for k, v in final.items()))
        return {"candidate": cfg.candidate, "data": tag, "preprocessing": cfg.preprocessing, "points": len(points),
                "train_points": len(train_idx), "held_out_points": len(held_idx), "epochs": trainer.epoch,
                "final": final, "best_epoch": {m: b["epoch"] for m, b in trainer.best.items()},
                "seconds": round(time.perf_counter() - start, 2)}

    resume_into(out, cfg, make_trainer, cfg.epochs, finish, cfg.checkpoint_every, verify=verify_candidate)
    return out


def verify_candidate(out: Path) -> None:
    """A finished candidate's files read: epochs.parquet, arc.h5 and the best_<metric>.h5 its DONE names (else
    CorruptArtifact naming the file, and core.runs.resume_into trains the candidate again)."""
    check_parquet(out / "epochs.parquet")
    metrics = read_done(out).get("best_epoch") or {}
    for name in ["arc", *(f"best_{metric}" for metric in sorted(metrics))]:
        try:
            load_keras_h5(out / f"{name}.h5")
        except DataError as err:
            raise CorruptArtifact(str(err)) from None
