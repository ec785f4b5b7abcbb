"""Typed schemas of the experiments stage (benchmark grid, LR range test, n-study), registered with Hydra.

A typo in a key or a wrong type fails at compose time, naming the key. Per-profile sizes of a task
live in its bench_task config under `sizes.<profile>`; `bench_task.size` selects the active one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING

from core.config import PathsConfig, ProfileConfig


@dataclass
class TaskSizes:
    """What one benchmark task costs under a profile (SPEC §7 values in `paper`)."""

    build: Any = MISSING  # {_target_: experiments.tasks...., kwargs}
    epochs: int = MISSING
    max_steps_per_epoch: Optional[int] = None  # COCO: 1500 "epochs" of a reshuffled train set
    log_steps: int = 100
    ccd_t0: int = MISSING  # CCD first cycle length (Tmul 2)
    sc_phase_epochs: int = MISSING  # SC phase boundary a
    sc_lr_max: Optional[float] = None  # null: take LRmax from this profile's LR range test
    range_epochs: int = MISSING  # LR range test: "epochs" of range_steps_per_epoch steps, eval after each
    range_steps_per_epoch: int = 10
    range_ramp_steps: int = MISSING  # lr = range_lr_max * step / range_ramp_steps


@dataclass
class BenchTaskConfig:
    name: str = MISSING
    optimizer: str = MISSING  # adam | sgd (SPEC §7.1-7.3)
    momentum: float = 0.0
    lr0s: List[float] = MISSING  # the LR0 grid (SPEC §7)
    ed_gamma: float = MISSING
    sc_f: float = MISSING  # LR0 = LRmax / f (App. A.3)
    range_lr_max: float = MISSING  # LRmax_test of the range test
    range_criterion: str = "metric"  # metric | loss: what the range test optimises (COCO: eval loss)
    range_holdout_fraction: float = 0.0  # CIFAR: eval on 20% of the train set during the range test
    sizes: Dict[str, TaskSizes] = field(default_factory=dict)
    size: Any = II("bench_task.sizes.${profile.name}")


@dataclass
class StageBudget:
    checkpoint_every: int = 1  # epochs between checkpoints = resume granularity


@dataclass
class BenchmarkConfig:
    """One run of the grid (task x schedule x LR0 x seed) or of the n-study (stage=n_study)."""

    profile: ProfileConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    bench_task: BenchTaskConfig = MISSING
    schedule: Any = MISSING
    stage: str = "benchmark"
    lr0_index: Optional[int] = None  # index into bench_task.lr0s; null for SC / LR-free methods
    seed: int = 0
    threads: int = 1  # torch threads per job (the joblib launcher runs jobs in parallel)
    arc_weights: str = "${paths.artifacts}/selection/arc.h5"
    scale_epochs_with_frequency: bool = False  # n-study (App. A.5): epochs * n / 3 for n > 3
    budgets: Dict[str, StageBudget] = field(default_factory=dict)
    checkpoint_every: int = II("budgets.${profile.name}.checkpoint_every")


@dataclass
class RangeTestConfig:
    profile: ProfileConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    bench_task: BenchTaskConfig = MISSING
    seed: int = 0
    threads: int = 1


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="benchmark_schema", node=BenchmarkConfig)
    cs.store(name="range_test_schema", node=RangeTestConfig)
    cs.store(group="bench_task", name="bench_task_schema", node=BenchTaskConfig)


register_configs()
