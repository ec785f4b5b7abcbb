"""Typed config schemas of the datagen and correct stages (a typo or wrong type fails at compose time)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import II, MISSING

from core.config import PathsConfig, ProfileConfig


@dataclass
class DatagenTaskSize:
    """A task under one profile: constructor arguments of its class and the epoch cap."""
    args: Dict[str, Any] = field(default_factory=dict)
    max_steps_per_epoch: Optional[int] = None
    epoch_minutes: Optional[float] = None  # paper only: estimated GPU minutes per epoch, for `make plan` [I]


@dataclass
class DatagenTaskConfig:
    """One row of Table 1 (docs/experiments.md §2.2), or a task of your own (examples/own_task/README.md; checked by
    datagen.generate.check_task and task_class)."""
    name: str = MISSING
    number: int = MISSING
    lr_range: List[float] = MISSING  # [Min Init LR, Max Init LR]
    target: str = MISSING  # the task class
    sizes: Dict[str, DatagenTaskSize] = field(default_factory=dict)
    # The active profile's DatagenTaskSize, one field per key (the sizing idiom, README "Sizes"): e.g.
    # `datagen_task.max_steps_per_epoch=20`; one constructor argument: datagen_task.sizes.<profile>.args.<arg>.
    args: Any = II("datagen_task.sizes.${profile.name}.args")
    max_steps_per_epoch: Optional[int] = II("datagen_task.sizes.${profile.name}.max_steps_per_epoch")
    epoch_minutes: Optional[float] = II("datagen_task.sizes.${profile.name}.epoch_minutes")


@dataclass
class DatagenSize:
    runs_per_task: int = MISSING
    frequency_min: int = 1  # the cycle length n (epochs between two ARC calls) is drawn from this range
    frequency_max: int = 10
    points_per_run: int = 10  # step-1 cycles per run = points per run (paper: 10n epochs / n)
    lr_scale: float = 1.0  # multiplies Table 1's LR0 range (see configs/experiment/datagen_table1.yaml)


@dataclass
class DatagenConfig:
    profile: ProfileConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    datagen_task: DatagenTaskConfig = MISSING
    sizes: Dict[str, DatagenSize] = field(default_factory=dict)
    seed: int = 0  # base seed of every draw
    runs: int = II("sizes.${profile.name}.runs_per_task")
    run_index: Optional[int] = None  # generate this run only (e.g. a Hydra multirun over run_index)
    frequency_min: int = II("sizes.${profile.name}.frequency_min")
    frequency_max: int = II("sizes.${profile.name}.frequency_max")
    points_per_run: int = II("sizes.${profile.name}.points_per_run")
    lr_scale: float = II("sizes.${profile.name}.lr_scale")
    # How LR0 is drawn from [Min, Max]: UNSPECIFIED (paper: "an LR0 r in [Min Init LR, Max Init LR]"). log_uniform
    # [I] spreads the runs evenly over the decades; uniform, the literal reading, puts ~90% of a two-decade range's
    # runs in its top decade. The choice shifts the label mix (datagen.correct's report; docs/measurements.md).
    lr0_distribution: str = "log_uniform"
    optimizers: List[str] = field(default_factory=lambda: ["adam", "sgd", "rmsprop"])
    # SGD's momentum, UNSPECIFIED for datagen [I]: 0.9, as every SGD in the authors' public code (MSCOCO and PTB,
    # docs/experiments.md §7.2-7.3); Keras' default 0 leaves SGD runs nearly still at Table 1's LR0s
    # (docs/measurements.md). Adam and RMSprop take none (docs/experiments.md §2.3).
    sgd_momentum: float = 0.9
    workers: int = 3  # concurrent trainings (the 3 branches of a point)
    threads_per_worker: int = 1
    parallel_runs: int = 2  # runs interleaved in the worker pool (keeps every core busy during replicates)


@dataclass
class CorrectConfig:
    profile: ProfileConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    rule: str = "full"  # full: the whole ranking must survive (paper's example [P §3.3]); argmin: only the best
    last_point: str = "keep"  # keep: a run's last point keeps its raw label (no replicate exists); drop
    ties: str = "keep"  # keep: a tie for the best loss is labelled keep [I]; index: the raw label (lowest index)


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="datagen_schema", node=DatagenConfig)
    cs.store(name="correct_schema", node=CorrectConfig)
    cs.store(group="datagen_task", name="datagen_task_schema", node=DatagenTaskConfig)


register_configs()
