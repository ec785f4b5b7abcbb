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
from core.cli import CONFIGS
from core.config import check_profile
from core.artifacts import atomic_write_text, check_parquet, config_digest, mark_done
from core.errors import ConfigError, CorruptArtifact, one_line
from core.runs import warn
from core.optim import OPTIMIZERS
from core.tasks import Task
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


def task_class(target: str) -> type:
    """The class `datagen_task.target` names: importable, a core.tasks.Task, none of the protocol's methods left
    abstract (core/tasks/__init__.py; a user's own task, examples/own_task/, is held to the same)."""
    module, _, cls_name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except Exception as err:  # noqa: BLE001 (ImportError, AttributeError, or whatever the user's module raises)
        raise ConfigError(f"datagen_task.target: cannot import {target} ({one_line(err)})") from None
    if not (inspect.isclass(cls) and issubclass(cls, Task)):
        raise ConfigError(f"datagen_task.target: {target} is not a subclass of core.tasks.Task (the protocol of a "
                          "task: core/tasks/__init__.py)")
    if inspect.isabstract(cls):
        raise ConfigError(f"datagen_task.target: {target} does not define {sorted(cls.__abstractmethods__)} of "
                          "core.tasks.Task (core/tasks/__init__.py)")
    return cls


def task_node(cfg: DictConfig) -> dict:
    """The instantiate node of the task under this profile; its arguments are checked against the class (datagen
    builds it with `device=` too, core.instantiate.build_task)."""
    task, key = cfg.datagen_task, f"datagen_task.sizes.{cfg.profile.name}.args"
    cls = task_class(str(task.target))
    args = OmegaConf.to_container(cfg.datagen_task.args, resolve=True)
    params = dict(inspect.signature(cls).parameters)
    if issubclass(cls, DatagenTask):  # the 12 tasks hand their shared options on to DatagenTask (**kwargs)
        params = {**inspect.signature(DatagenTask).parameters, **params}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values()) and not issubclass(cls, DatagenTask)
    unknown = [] if takes_any else sorted(set(args) - set(params))
    if unknown:
        raise ConfigError(f"{key}: {task.target} takes no {unknown}")
    if "device" not in params and not takes_any:
        raise ConfigError(f"datagen_task.target: {task.target} takes no device= (datagen builds every task on the "
                          "profile's device, as core.tasks.Task.__init__ takes it)")
    needed = sorted(n for n, p in params.items() if p.default is p.empty and n not in (*args, "device")
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
    if needed:
        raise ConfigError(f"{key}: {task.target} needs {needed}")
    return {"_target_": task.target, **args}


def check_task(cfg: DictConfig) -> None:
    """The datagen_task config itself, before its class is imported: every field given, lr_range two numbers
    0 < min <= max, and a number no other task on the search path has (numbers seed every draw of a run,
    datagen.procedure.draw_run: two tasks with one number would share their optimizers, LR0s and cycle lengths)."""
    task = cfg.datagen_task
    missing = sorted(k for k in ("name", "number", "lr_range", "target") if OmegaConf.is_missing(task, k))
    if missing:
        raise ConfigError(f"{', '.join(f'datagen_task.{k}' for k in missing)} has no value (the fields of a task: "
                          f"datagen/config.py DatagenTaskConfig)")
    lr = list(task.lr_range)
    if len(lr) != 2 or not 0 < lr[0] <= lr[1]:
        raise ConfigError(f"datagen_task.lr_range must be [min, max] with 0 < min <= max, got {lr}")
    if not task.name or not all(c.isalnum() or c in "_-." for c in task.name):
        raise ConfigError(f"datagen_task.name must be letters, digits, '_', '-' or '.' (its directory under "
                          f"paths.datagen), got '{task.name}'")
    for other, number, where in task_numbers():
        if number == task.number and other != task.name:
            raise ConfigError(f"datagen_task.number: {task.name} and {other} ({where}) both have number {number}; "
                              f"numbers seed each task's draws, give {task.name} its own")


def task_numbers() -> list[tuple[str, int, Path]]:
    """(name, number, file) of every datagen_task config on the search path: configs/ and the directories that
    `hydra.searchpath` adds (a user's own tasks). A sweep's jobs are not told the sweep's other choices, so a number is
    checked against every task a sweep could name [I]. Files without an integer number are left to their own job."""
    dirs = [CONFIGS]
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            dirs += [Path(s.path) for s in HydraConfig.get().runtime.config_sources if s.schema == "file"]
    except Exception:  # noqa: BLE001 (composed outside Hydra's entry point, e.g. tests: configs/ only)
        pass
    found = {}
    for file in sorted({f.resolve() for d in dirs for f in (d / "datagen_task").glob("*.yaml")}):
        try:
            node = OmegaConf.load(file)
            name, number = node.get("name"), node.get("number")
        except Exception:  # noqa: BLE001
            continue
        if isinstance(number, int) and not isinstance(number, bool) and isinstance(name, str):
            found.setdefault((name, number), file)
    return [(name, number, file) for (name, number), file in found.items()]


def lr_range(cfg: DictConfig) -> list[float]:
    """Table 1's [Min, Max] LR0 times the profile's lr_scale."""
    return [v * cfg.lr_scale for v in cfg.datagen_task.lr_range]


def validate(cfg: DictConfig, will_train: bool = True) -> None:
    check_task(cfg)
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
# the models (docs/experiments.md §2.3), and task 2's codebook as FastEstimator's Hadamard op builds it. A change of
# any of them changes this name, so the digest of the points changes and datasets of the old code are refused
# instead of mixed with new points.
CONVENTIONS = "keras-optimizers+keras-init+fe-hadamard"


def generation_key(cfg: DictConfig, node: dict) -> dict:
    """What determines the points (not where they go, nor how many processes make them)."""
    return {"task": node, "conventions": CONVENTIONS, "lr_range": lr_range(cfg), "seed": cfg.seed,
            "frequency": [cfg.frequency_min, cfg.frequency_max], "points_per_run": cfg.points_per_run,
            "optimizers": list(cfg.optimizers), "sgd_momentum": cfg.sgd_momentum,
            "max_steps_per_epoch": cfg.datagen_task.max_steps_per_epoch,
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

    def one_run(index: int) -> Path:
        plan = draw_run(task.name, task.number, index, cfg.seed, list(cfg.optimizers), lr_range(cfg),
                        (cfg.frequency_min, cfg.frequency_max), cfg.lr0_distribution)
        print(f"{plan.run_id}: {plan.optimizer} lr0={plan.lr0:.3g} frequency={plan.frequency}", flush=True)
        spec = RunSpec(plan, json.dumps(node, sort_keys=True), cfg.points_per_run, cfg.sgd_momentum,
                       task.max_steps_per_epoch, cfg.profile.device)
        return generate_run(spec, out / f"run-{index:03d}.parquet", pool, log=lambda m: print(m, flush=True))

    start = time.perf_counter()
    with ThreadPoolExecutor(cfg.parallel_runs) as threads:
        list(threads.map(one_run, pending))
    if all((out / f"run-{i:03d}.parquet").exists() for i in range(cfg.runs)):
        mark_done(out, {"runs": cfg.runs, "digest": config_digest(key)})
    print(f"{task.name}: {len(pending)} runs generated in {time.perf_counter() - start:.1f} s -> {out}", flush=True)
    return out

