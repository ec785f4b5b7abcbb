"""Structured-config schemas (dataclasses) registered with Hydra's ConfigStore.

Each stage's primary config lists its schema first in the defaults list, so the YAML files and
command-line overrides are merged into typed nodes: an unknown key or a value of the wrong type
fails at compose time, naming the key.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import omegaconf.base
from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
from omegaconf import II, MISSING, grammar_parser

# OmegaConf parses an interpolation with its ANTLR grammar every time the value is read, ~1-2 ms a string (omegaconf
# 2.3: base.py `_maybe_resolve_interpolation`). The sizing rule below makes every sized field an interpolation, and
# naming a run resolves its whole config (core.artifacts.location_free), so the readers that name every run of a
# study parsed the same dozen strings thousands of times (docs/measurements.md). A parse tree depends on the string
# alone and resolving only reads it, so the trees are kept. [I] This replaces omegaconf.base's module attribute, a
# library internal: requirements-lock.txt pins omegaconf, and tests/test_config.py checks the memo is in place.
if not hasattr(omegaconf.base.parse, "cache_info"):
    omegaconf.base.parse = functools.lru_cache(maxsize=4096)(grammar_parser.parse)


@dataclass
class ProfileConfig:
    """smoke (seconds, tests), mini (default; 2-core CPU, offline) or paper (GPU/SLURM, real data).

    A profile holds cross-stage settings only. Sizes follow one rule everywhere: whatever a profile
    scales (a stage, a task, a schedule's setting on a task) carries a `sizes: {smoke, mini, paper}` block
    beside it, and the active one is picked by interpolation, `${...sizes.${profile.name}}`
    (`check_sizes` names a block that lacks the profile).
    """

    name: str = MISSING
    device: str = "cpu"
    requires_data_dir: bool = False  # paper: real datasets are read from paths.data
    # Speed options of core.training.Run (core.training.run_options); the defaults are the authors' fp32 computation
    precision: str = "fp32"  # fp32 | bf16 (autocast forward passes to bfloat16)
    channels_last: bool = False  # conv models and 4-D batches in channels-last memory format
    compile: bool = False  # torch.compile the model the steps run
    # torch.compile's mode: default | reduce-overhead (CUDA graphs) | max-autotune | max-autotune-no-cudagraphs.
    # On one H200 (make bench-gpu, 2026-11-30) `default` was slower than no compile on every paper task and
    # reduce-overhead faster on three of them (bench/bench_gpu.py's header has the figures)
    compile_mode: str = "default"


@dataclass
class TrainSize:
    """What one `python -m core.single_run` run costs under a profile."""

    epochs: int = MISSING
    log_steps: int = 100


@dataclass
class PathsConfig:
    """Every directory the pipeline reads or writes. Each stage writes only under its own key and finds its
    input only under the key of the stage before it: this is where stages hand over."""

    root: str = "${oc.env:ARC_REPRO_ROOT,.}"
    data: str = "${paths.root}/data"  # the paper profile's datasets (FastEstimator loaders' root_dir)
    weights: str = "${paths.root}/weights"  # pretrained weight files the paper profile reads (never downloaded)
    artifacts: str = "${paths.root}/artifacts/${profile.name}"
    datagen: str = "${paths.artifacts}/datagen"  # stage 1: one Parquet file per generated run, per task
    dataset: str = "${paths.artifacts}/dataset"  # stage 2: dataset.parquet (corrected labels) + report
    candidates: str = "${paths.artifacts}/candidates"  # stage 3: one directory per ARC candidate
    # App. A.1's five candidates, trained with the authors' 30% held-out split on every profile (make
    # metric-candidates, configs/experiment/metric_candidates.yaml); the metric study deploys their best_<metric>.h5
    metric_candidates: str = "${paths.artifacts}/metric_candidates"
    selection: str = "${paths.artifacts}/selection"  # stage 4: proxy runs and scores.csv
    selected_arc: str = "${paths.selection}/arc.h5"  # stage 4's winner: the ARC every benchmark deploys
    benchmark: str = "${paths.artifacts}/benchmark"  # stage 5: <study>/<task>/<run>/ and range_test/<task>/
    figures: str = "${paths.artifacts}/figures"  # stage 6: tables and figures, per study
    single_runs: str = "${paths.artifacts}/single_runs"  # python -m core.single_run
    # FastEstimator's published ARC (arc.h5), scored and benchmarked beside the selected one when set
    published_arc: Optional[str] = "${oc.env:ARC_PUBLISHED_WEIGHTS,null}"


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass
class TrainConfig:
    """One training run of a task under an optimizer and an LR schedule (core.single_run)."""

    profile: ProfileConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    sizes: Dict[str, TrainSize] = field(default_factory=dict)
    task: Any = MISSING  # {name, build: {_target_: ...}, sizes: {smoke|mini|paper: {...}}}
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: Any = MISSING  # {name, _target_: ...}
    seed: int = 0
    epochs: int = II("sizes.${profile.name}.epochs")
    log_steps: int = II("sizes.${profile.name}.log_steps")
    max_steps_per_epoch: Optional[int] = None
    checkpoint_every: int = 1  # epochs between checkpoints (resume granularity)
    init_checkpoint: Optional[str] = None  # start from this checkpoint instead of a fresh model


@dataclass
class SlurmLauncherConf(SlurmQueueConf):
    """hydra-submitit-launcher 1.2.0's SlurmQueueConf lacks `srun_args`, so `hydra.launcher.srun_args=[...]`
    is rejected by the structured config although submitit accepts it. The launcher forwards every
    non-base key as `slurm_<key>` to submitit, so adding the field here is enough."""

    srun_args: Optional[List[str]] = None


def check_sizes(cfg, profile: str, where: str = "") -> None:
    """Every `sizes` block in the config must hold the active profile (else its `${...}` pick fails)."""
    from omegaconf import DictConfig

    from core.errors import ConfigError

    if not isinstance(cfg, DictConfig):
        return
    for key in cfg.keys():
        node = cfg._get_node(key)
        if not isinstance(node, DictConfig) or node._is_missing() or node._is_none():
            continue
        path = f"{where}.{key}" if where else str(key)
        if key == "sizes" and profile not in node:
            raise ConfigError(f"{path}: no sizes for profile '{profile}' (has {', '.join(map(str, node.keys()))})")
        if key != "sizes":
            check_sizes(node, profile, path)


def check_profile(cfg, needs_data: bool = True) -> None:
    """Checks every stage runs before writing: each `sizes` block has the profile, the profile's device
    exists here, and the dataset root exists where the profile reads real datasets (`needs_data=False` for
    stages that read none)."""
    from pathlib import Path

    import torch

    from core.errors import ConfigError, DataError

    check_sizes(cfg, cfg.profile.name)
    if str(cfg.profile.device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"profile.device={cfg.profile.device} but no CUDA device is visible "
                          "(override with profile.device=cpu)")
    if needs_data and cfg.profile.requires_data_dir and Path(cfg.paths.data).is_file():
        raise DataError(f"paths.data: {cfg.paths.data} is a file, not the directory of datasets "
                        f"(profile '{cfg.profile.name}' reads real datasets from it)")
    if needs_data and cfg.profile.requires_data_dir and not Path(cfg.paths.data).is_dir():
        raise DataError(f"paths.data: data directory not found: {cfg.paths.data} "
                        f"(profile '{cfg.profile.name}' reads real datasets from it)")


# the keys of the paths group that are a stage's output directory (paths.selected_arc is a file of selection's)
OUTPUT_PATHS = ("datagen", "dataset", "candidates", "metric_candidates", "selection", "benchmark", "figures",
                "single_runs")
# Pairs (a, b) where `paths.a: ${paths.b}` routes a stage to b's directory rather than overlapping it: the metric
# candidates' training and the metric study set paths.candidates to ${paths.metric_candidates}
# (configs/experiment/metric_candidates.yaml, metric_study.yaml); any other equal or nested pair is refused
ROUTED = {("candidates", "metric_candidates")}


def check_paths(cfg) -> None:
    """Each stage writes only under its own key of the paths group (core.cli checks this for every stage before
    it starts): no two output keys may name the same directory or one inside the other (e.g.
    `paths.candidates=${paths.datagen}`, or paths.benchmark inside the dataset directory), and none may be a file."""
    from itertools import combinations
    from pathlib import Path

    from core.errors import ConfigError

    try:
        paths = cfg.paths
    except Exception:  # noqa: BLE001 (a primary config without the paths group)
        return
    if paths is None:
        return
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(paths, resolve=False) if OmegaConf.is_config(paths) else dict(paths)
    resolved = {}
    for key in OUTPUT_PATHS:
        value = paths.get(key)
        if value is not None:
            resolved[key] = Path(str(value)).expanduser().resolve()
    for (key_a, a), (key_b, b) in combinations(resolved.items(), 2):
        if (key_a, key_b) in ROUTED and raw.get(key_a) == f"${{paths.{key_b}}}":
            continue
        if a == b or a in b.parents or b in a.parents:
            how = "the same directory" if a == b else "one inside the other"
            raise ConfigError(f"paths.{key_a} ({a}) and paths.{key_b} ({b}) are {how}: every stage writes into "
                              "its own directory, so no two output keys of the paths group may overlap")
    for key, path in resolved.items():
        if path.is_file():
            raise ConfigError(f"paths.{key}: {path} is a file, not an output directory")


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(group="profile", name="profile_schema", node=ProfileConfig)
    cs.store(group="optimizer", name="optimizer_schema", node=OptimizerConfig)
    cs.store(group="paths", name="paths_schema", node=PathsConfig)
    cs.store(group="hydra/launcher", name="slurm_schema", node=SlurmLauncherConf, provider="arc_repro")


register_configs()
