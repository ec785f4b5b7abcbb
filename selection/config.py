"""Schema of configs/selection.yaml (registered in Hydra's ConfigStore as `selection_schema`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING

from core.config import PathsConfig, ProfileConfig


@dataclass
class SelectionSize:
    epochs: int = MISSING
    repeats: int = MISSING
    task: Any = MISSING  # {_target_: selection.proxy.<factory>, ...}


@dataclass
class SelectionConfig:
    """One proxy run of an ARC candidate (selection.select.score_run), or the pick of the best (selection.pick)."""

    profile: ProfileConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    sizes: Dict[str, SelectionSize] = field(default_factory=dict)
    candidate: str = "1"  # the candidate id to score, or "published" (paths.published_arc)
    lr0: Optional[float] = None  # one of lr0s
    repeat: int = 0  # seed of the proxy run; repeats >= sizes.<profile>.repeats skip
    lr0s: List[float] = MISSING  # configs/experiment/proxy_selection.yaml
    frequency: int = 3
    epochs: int = II("sizes.${profile.name}.epochs")
    repeats: int = II("sizes.${profile.name}.repeats")
    task: Any = II("sizes.${profile.name}.task")
    # torch threads per job, as every stage: jobs run side by side (joblib workers, a second pipeline), and torch's
    # default (all cores each) oversubscribes a small CPU: a smoke proxy run took ~20 s beside another pipeline
    threads: int = 1  # 0 = torch's default


ConfigStore.instance().store(name="selection_schema", node=SelectionConfig)
