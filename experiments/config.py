"""Typed schemas of the experiments stage (benchmark studies, LR range test), registered with Hydra.

A typo in a key or a wrong type fails at compose time, naming the key. Per-profile sizes of a task
live in its bench_task config under `sizes.<profile>`; a field per key (`bench_task.epochs`, ...) reads the active one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING

from core.config import PathsConfig, ProfileConfig


@dataclass
class BenchTaskSize:
    """What one benchmark task costs under a profile (docs/experiments.md §7 values in `paper`)."""

    build: Any = MISSING  # {_target_: experiments.tasks...., kwargs}
    epochs: int = MISSING
    max_steps_per_epoch: Optional[int] = None  # COCO: 1500 "epochs" of a reshuffled train set
    log_steps: int = 100
    range_epochs: int = MISSING  # LR range test: "epochs" of range_steps_per_epoch steps, eval after each
    range_steps_per_epoch: int = 10
    range_ramp_steps: int = MISSING  # lr = range_lr_max * step / range_ramp_steps
    stand_in: Optional[str] = None  # smoke/mini: the task's name in every table and figure, e.g. "... (CIFAR10 stand-in)"


@dataclass
class BenchTaskConfig:
    """A benchmark task. Schedule settings that differ per task (CCD's T0, ED's gamma, SC's f, LRmax and
    phase) are not here: they specialise the schedule in configs/bench_schedule/<task>_<schedule>.yaml."""

    name: str = MISSING
    optimizer: str = MISSING  # adam | sgd (docs/experiments.md §7.1-7.3)
    momentum: float = 0.0
    momentum_form: str = "torch"  # sgd: tf (v = m v - lr g, the paper's TF code) | torch (core.optim)
    lr0s: List[float] = MISSING  # the task's LR0 grid: the columns of its table (paper Tables 2-4)
    range_lr_max: float = MISSING  # LRmax_test of the range test
    range_criterion: str = "metric"  # metric | loss: what the range test optimises (COCO: eval loss)
    range_holdout_fraction: float = 0.0  # CIFAR: eval on 20% of the train set during the range test
    sizes: Dict[str, BenchTaskSize] = field(default_factory=dict)
    # The active profile's BenchTaskSize, one field per key (the sizing idiom, README "Sizes"): `bench_task.epochs=7`
    # overrides it on whatever profile runs. `build` is a node: override the whole node, or one constructor argument
    # in its profile's entry (bench_task.sizes.<profile>.build.<arg>: the arguments differ per profile).
    build: Any = II("bench_task.sizes.${profile.name}.build")
    epochs: int = II("bench_task.sizes.${profile.name}.epochs")
    max_steps_per_epoch: Optional[int] = II("bench_task.sizes.${profile.name}.max_steps_per_epoch")
    log_steps: int = II("bench_task.sizes.${profile.name}.log_steps")
    range_epochs: int = II("bench_task.sizes.${profile.name}.range_epochs")
    range_steps_per_epoch: int = II("bench_task.sizes.${profile.name}.range_steps_per_epoch")
    range_ramp_steps: int = II("bench_task.sizes.${profile.name}.range_ramp_steps")
    stand_in: Optional[str] = II("bench_task.sizes.${profile.name}.stand_in")


@dataclass
class StageSize:
    checkpoint_every: int = 1  # epochs between checkpoints = resume granularity ...
    checkpoint_seconds: float = 0.0  # ... but no sooner than this after the last one (runs of seconds write none)
    sc_lr_max: str = "authors"  # SC's LRmax: authors (the schedule's lr_max) | from_range_test (experiments.range_test)
    study_seeds: str = "0"  # seeds of a study sized per profile (n_study, metric_study: `seed: ${study_seeds}`)


@dataclass
class BenchmarkConfig:
    """One run of a benchmark study: task x schedule x LR0 x seed (configs/experiment/ holds the studies)."""

    profile: ProfileConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    bench_task: BenchTaskConfig = MISSING
    schedule: Any = MISSING
    study: str = "benchmark"  # the run goes to ${paths.benchmark}/<study>/<task>/
    lr0: Optional[float] = None  # the run's LR0; null for a method that picks its own (SC, SLS, Prodigy)
    lr0_column: Optional[int] = None  # instead of lr0: the task's LR0 number k (0-based), for studies over tasks
    seed: int = 0
    threads: int = 1  # torch threads per job (the joblib launcher runs jobs in parallel)
    scale_epochs_with_frequency: bool = False  # n-study (App. A.5): epochs * n / 3 for n > 3
    arc_candidate: Optional[int] = None  # metric study: deploy this candidate of ${paths.candidates} ...
    arc_model_file: str = "arc"  # ... its final model (arc) or a best_<metric> model (docs/experiments.md §10.1)
    sizes: Dict[str, StageSize] = field(default_factory=dict)
    checkpoint_every: int = II("sizes.${profile.name}.checkpoint_every")
    checkpoint_seconds: float = II("sizes.${profile.name}.checkpoint_seconds")
    sc_lr_max: str = II("sizes.${profile.name}.sc_lr_max")
    study_seeds: Optional[str] = None  # a study's seeds on this profile, `${sizes.${profile.name}.study_seeds}`


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
