"""Generate (`python -m datagen`) the ARC points of one Table-1 task (all its runs, or `run_index` only).

Output: ${paths.datagen}/<task>/run-<index>.parquet, one per finished training run (core.points
columns, written atomically), config.json (the generating config; a rerun with a different one is refused
rather than mixing datasets), and DONE once every run of the task exists. A rerun skips finished runs and
resumes unfinished ones from their last point. Tasks x runs scale out as a Hydra multirun, e.g.
  python -m datagen -m datagen_task=svhn_vgg19bn,imdb_lstm run_index=0,1,2 hydra/launcher=local
(`hydra/launcher=slurm` on a cluster; `python -m datagen -m` alone sweeps the 12 tasks of Table 1).
"""
from __future__ import annotations

import atexit
import importlib
import inspect
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import datagen.config  # noqa: F401  (registers the schemas)
from core.config import check_profile
from core.artifacts import atomic_write_text, check_parquet, config_digest, mark_done
from core.errors import ConfigError, CorruptArtifact, one_line
from core.runs import warn
from core.optim import OPTIMIZERS
from datagen.branches import BranchPool
from datagen.procedure import LR0_DISTRIBUTIONS, RunSpec, draw_run, generate_run
from datagen.tasks.base import DatagenTask

_POOL: BranchPool | None = None


def shared_pool(workers: int, threads: int) -> BranchPool:
    """One worker pool per process, reused by every job of a sequential Hydra multirun."""
    global _POOL
    if _POOL is None or _POOL.workers != workers or _POOL.lost:
        if _POOL is not None:
            _POOL.close()
        _POOL = BranchPool(workers, threads)
        atexit.register(_POOL.close)
    return _POOL


def task_node(cfg: DictConfig) -> dict:
    """The instantiate node of the task under this profile; its arguments are checked against the class."""
    task, size = cfg.datagen_task, cfg.datagen_task.size
    module, _, cls_name = task.target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError):
        raise ConfigError(f"datagen_task.target: cannot import {task.target}") from None
    args = OmegaConf.to_container(size.args, resolve=True)
    accepted = set(inspect.signature(cls.__init__).parameters) | set(inspect.signature(DatagenTask.__init__).parameters)
    unknown = sorted(set(args) - accepted)
    if unknown:
        raise ConfigError(f"datagen_task.sizes.{cfg.profile.name}.args: {task.target} takes no {unknown}")
    return {"_target_": task.target, **args}


def lr_range(cfg: DictConfig) -> list[float]:
    """Table 1's [Min, Max] LR0 times the profile's lr_scale."""
    return [v * cfg.lr_scale for v in cfg.datagen_task.lr_range]


def validate(cfg: DictConfig, will_train: bool = True) -> None:
    lo, hi = cfg.datagen_task.lr_range
    if not 0 < lo <= hi:
        raise ConfigError(f"datagen_task.lr_range must satisfy 0 < min <= max, got {list(cfg.datagen_task.lr_range)}")
    if not 1 <= cfg.frequency_min <= cfg.frequency_max:
        raise ConfigError(f"frequency_min/frequency_max must satisfy 1 <= min <= max, got {cfg.frequency_min}, "
                          f"{cfg.frequency_max}")
    if not cfg.lr_scale > 0:
        raise ConfigError(f"lr_scale must be > 0, got {cfg.lr_scale}")
    for key in ("points_per_run", "runs", "workers", "threads_per_worker", "parallel_runs"):
        if cfg[key] < 1:
            raise ConfigError(f"{key} must be >= 1, got {cfg[key]}")
    if cfg.run_index is not None and not 0 <= cfg.run_index < cfg.runs:
        raise ConfigError(f"run_index must be in [0, runs={cfg.runs}), got {cfg.run_index}")
    if cfg.lr0_distribution not in LR0_DISTRIBUTIONS:
        raise ConfigError(f"lr0_distribution must be one of {list(LR0_DISTRIBUTIONS)}, got '{cfg.lr0_distribution}'")
    bad = [o for o in cfg.optimizers if o not in OPTIMIZERS]
    if bad or not cfg.optimizers:
        raise ConfigError(f"optimizers: choose from {list(OPTIMIZERS)}, got {list(cfg.optimizers)}")
    if will_train:
        check_profile(cfg)


# What the trainings compute beyond the config: the Keras optimizers and the Keras initialisation and BN settings of
# the models (docs/experiments.md §2.3). A change of either changes this name, so the digest of the points changes
# and datasets of the old code are refused instead of mixed with new points.
CONVENTIONS = "keras-optimizers+keras-init"


def generation_key(cfg: DictConfig, node: dict) -> dict:
    """What determines the points (not where they go, nor how many processes make them)."""
    return {"task": node, "conventions": CONVENTIONS, "lr_range": lr_range(cfg), "seed": cfg.seed,
            "frequency": [cfg.frequency_min, cfg.frequency_max], "points_per_run": cfg.points_per_run,
            "optimizers": list(cfg.optimizers), "sgd_momentum": cfg.sgd_momentum,
            "max_steps_per_epoch": cfg.datagen_task.size.max_steps_per_epoch,
            "device": cfg.profile.device,
            # only when not the default, so that log-uniform datasets made before this setting keep their digest
            **({"lr0_distribution": cfg.lr0_distribution} if cfg.lr0_distribution != "log_uniform" else {})}


def stored_digest(config_file: Path) -> str:
    """The digest in a task's config.json; DataError naming the file when it is damaged (the points beside it
    cannot be told apart from another config's, so they are not reused silently)."""
    try:
        return str(json.loads(config_file.read_text())["digest"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CorruptArtifact(f"{config_file}: unreadable ({one_line(err)}); remove {config_file.parent} to "
                              "generate the task again") from None


def finished_run(path: Path) -> bool:
    """Whether the run file `path` exists and reads; a damaged one is removed (one warning) and made again."""
    if not path.exists():
        return False
    try:
        check_parquet(path)
        return True
    except CorruptArtifact as err:
        warn(f"{err}; generating that run again")
        path.unlink(missing_ok=True)
        return False


def generate_task(cfg: DictConfig) -> Path:
    validate(cfg)
    node = task_node(cfg)
    key = generation_key(cfg, node)
    out = Path(cfg.paths.datagen) / cfg.datagen_task.name
    config_file = out / "config.json"
    if config_file.exists() and stored_digest(config_file) != config_digest(key):
        raise ConfigError(f"{config_file}: points here were generated with another config; remove {out} or set "
                          f"paths.root elsewhere")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_file, json.dumps({"digest": config_digest(key), **key}, indent=1, default=str))

    task = cfg.datagen_task
    indices = [cfg.run_index] if cfg.run_index is not None else list(range(cfg.runs))
    pending = [i for i in indices if not finished_run(out / f"run-{i:03d}.parquet")]
    print(f"{task.name}: {len(indices) - len(pending)} of {len(indices)} runs done already", flush=True)
    pool = shared_pool(cfg.workers, cfg.threads_per_worker)
    size = task.size

    def one_run(index: int) -> Path:
        plan = draw_run(task.name, task.number, index, cfg.seed, list(cfg.optimizers), lr_range(cfg),
                        (cfg.frequency_min, cfg.frequency_max), cfg.lr0_distribution)
        print(f"{plan.run_id}: {plan.optimizer} lr0={plan.lr0:.3g} frequency={plan.frequency}", flush=True)
        spec = RunSpec(plan, json.dumps(node, sort_keys=True), cfg.points_per_run, cfg.sgd_momentum,
                       size.max_steps_per_epoch, cfg.profile.device)
        return generate_run(spec, out / f"run-{index:03d}.parquet", pool, log=lambda m: print(m, flush=True))

    start = time.perf_counter()
    with ThreadPoolExecutor(cfg.parallel_runs) as threads:
        list(threads.map(one_run, pending))
    if all((out / f"run-{i:03d}.parquet").exists() for i in range(cfg.runs)):
        mark_done(out, {"runs": cfg.runs, "digest": config_digest(key)})
    print(f"{task.name}: {len(pending)} runs generated in {time.perf_counter() - start:.1f} s -> {out}", flush=True)
    return out

