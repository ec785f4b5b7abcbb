"""Schema of configs/figures.yaml (registered in Hydra's ConfigStore as `figures_schema`)."""
from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from core.config import PathsConfig, ProfileConfig


@dataclass
class FiguresConfig:
    profile: ProfileConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    study: str = "benchmark"  # ${paths.benchmark}/<study>/ to render (benchmark, n_study, metric_study)
    reference: str = "arc"  # the schedule others are t-tested against
    alpha: float = 0.05


ConfigStore.instance().store(name="figures_schema", node=FiguresConfig)
