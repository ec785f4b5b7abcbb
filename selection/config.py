"""Schema of configs/selection.yaml (registered in Hydra's ConfigStore as `selection_schema`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING

from core.config import PathsConfig, ProfileConfig


@dataclass
class SelectionBudget:
    epochs: int = MISSING
    repeats: int = MISSING
    task: Any = MISSING  # {_target_: selection.proxy.<factory>, ...}


@dataclass
class SelectionConfig:
    """Score every ARC candidate on the proxy task and keep the best one (paper §3.5, SPEC §6)."""

    profile: ProfileConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    budgets: Dict[str, SelectionBudget] = field(default_factory=dict)
    candidates_dir: str = "${paths.artifacts}/train_arc"  # DONE dirs holding arc.h5 (make train_arc)
    candidates: Optional[List[str]] = None  # candidate dir names to score; None = every finished one
    lr0s: List[float] = field(default_factory=lambda: [0.1, 0.001, 0.00001])  # SPEC §6
    frequency: int = 3
    epochs: int = II("budgets.${profile.name}.epochs")
    repeats: int = II("budgets.${profile.name}.repeats")
    task: Any = II("budgets.${profile.name}.task")
    threads: int = 0  # torch threads per process; 0 = torch's default


ConfigStore.instance().store(name="selection_schema", node=SelectionConfig)
