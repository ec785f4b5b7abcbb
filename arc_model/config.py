"""Typed schema of configs/train_arc.yaml (registered with Hydra's ConfigStore as `train_arc_schema`):
a typo in a key or a wrong type fails at compose time, naming the key."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING

from core.config import PathsConfig, ProfileConfig


@dataclass
class CandidateSize:
    """What one candidate costs under a profile."""

    epochs: int = MISSING
    synthetic_points: int = 0  # > 0: train on that many SYNTHETIC points instead of data.path
    holdout: float = 0.3  # held-out fraction for the candidate metrics (docs/experiments.md §10.1); 0 = all data (§4.3)


@dataclass
class ArcDataConfig:
    path: str = "${paths.dataset}/dataset.parquet"  # core.points .parquet or the authors' .pkl
    trust_pickle: bool = False  # a .pkl is unpickled (runs code from the file) only with this opt-in
    synthetic_points: int = II("sizes.${profile.name}.synthetic_points")
    holdout: float = II("sizes.${profile.name}.holdout")  # per profile: paper 0 (HEAD, §4.3), mini/smoke 0.3 (§10.1)
    holdout_by_run: bool = False  # False = random points, as the authors' v1 split
    split_seed: int = 0  # the same split (and synthetic points) for every candidate: metrics compare


@dataclass
class TrainArcConfig:
    """One ARC candidate (docs/experiments.md §4): Adam 1e-4, batch 128, val-channel dropout 0.5, hybrid loss."""

    profile: ProfileConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    sizes: Dict[str, CandidateSize] = field(default_factory=dict)
    data: ArcDataConfig = field(default_factory=ArcDataConfig)
    candidate: int = 1  # candidate id, which seeds its initialisation and data order; the multirun sweeps 1..10
    epochs: int = II("sizes.${profile.name}.epochs")
    batch_size: int = 128
    lr: float = 1e-4
    val_dropout: float = 0.5  # Sometimes(RemoveValLoss, prob=0.5), docs/experiments.md §4.4
    preprocessing: str = "repo"  # repo (authors' deployed code, FE) | paper (§3.4 wording)
    log_steps: int = 5
    checkpoint_every: int = 10  # epochs between resumable checkpoints
    threads: int = 1  # torch CPU threads per candidate (the joblib launcher runs candidates in parallel)
    dry_run: bool = False  # check config and data, print the run directory, write nothing (make's pre-flight)


ConfigStore.instance().store(name="train_arc_schema", node=TrainArcConfig)
