"""Structured-config schemas (dataclasses) registered with Hydra's ConfigStore.

Each stage's primary config lists its schema first in the defaults list, so the YAML files and
command-line overrides are merged into typed nodes: an unknown key or a value of the wrong type
fails at compose time, naming the key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
from omegaconf import II, MISSING


@dataclass
class ProfileConfig:
    """smoke (seconds, tests), mini (default; 2-core CPU, offline) or paper (GPU/SLURM, real data).

    A profile holds cross-stage settings only. Each stage's primary config keeps one budget block
    per profile under `budgets.<profile name>`, so a stage's sizes live next to the stage.
    """

    name: str = MISSING
    device: str = "cpu"
    requires_data_dir: bool = False  # paper: real datasets are read from paths.data


@dataclass
class TrainBudget:
    """What one `python -m core.train` run costs under a profile."""

    epochs: int = MISSING
    log_steps: int = 100


@dataclass
class PathsConfig:
    root: str = "${oc.env:ARC_REPRO_ROOT,.}"
    data: str = "${paths.root}/data"
    artifacts: str = "${paths.root}/artifacts/${profile.name}"


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass
class TrainConfig:
    """One training run of a task under an optimizer and an LR schedule (core.train)."""

    profile: ProfileConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    budgets: Dict[str, TrainBudget] = field(default_factory=dict)
    task: Any = MISSING  # {name, build: {_target_: ...}, sizes: {smoke|mini|paper: {...}}}
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: Any = MISSING  # {name, _target_: ...}
    seed: int = 0
    epochs: int = II("budgets.${profile.name}.epochs")
    log_steps: int = II("budgets.${profile.name}.log_steps")
    max_steps_per_epoch: Optional[int] = None
    checkpoint_every: int = 1  # epochs between checkpoints (resume granularity)
    init_checkpoint: Optional[str] = None  # start from this checkpoint instead of a fresh model


@dataclass
class SlurmLauncherConf(SlurmQueueConf):
    """hydra-submitit-launcher 1.2.0's SlurmQueueConf lacks `srun_args`, so `hydra.launcher.srun_args=[...]`
    is rejected by the structured config although submitit accepts it. The launcher forwards every
    non-base key as `slurm_<key>` to submitit, so adding the field here is enough."""

    srun_args: Optional[List[str]] = None


def check_profile(cfg, needs_data: bool = True) -> None:
    """Checks every stage runs before writing: the profile's device exists here, and the dataset root
    exists where the profile reads real datasets (`needs_data=False` for stages that read none)."""
    from pathlib import Path

    import torch

    from core.errors import ConfigError, DataError

    if str(cfg.profile.device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"profile.device={cfg.profile.device} but no CUDA device is visible "
                          "(override with profile.device=cpu)")
    if needs_data and cfg.profile.requires_data_dir and not Path(cfg.paths.data).is_dir():
        raise DataError(f"paths.data: data directory not found: {cfg.paths.data} "
                        f"(profile '{cfg.profile.name}' reads real datasets from it)")


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(group="profile", name="profile_schema", node=ProfileConfig)
    cs.store(group="optimizer", name="optimizer_schema", node=OptimizerConfig)
    cs.store(group="paths", name="paths_schema", node=PathsConfig)
    cs.store(group="hydra/launcher", name="slurm_schema", node=SlurmLauncherConf, provider="arc_repro")


register_configs()
