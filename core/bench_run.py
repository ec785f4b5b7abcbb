"""One benchmark job: its schedule's inputs (ARC weights, SC's LRmax), its LR0, and the one name of the run
directory it writes (docs/experiments.md §7, §8). experiments.benchmark trains into `run_dir`; the table readers
(experiments.table, figures) read the runs `named_runs` names for the current config, and nothing else.

A run directory is ${paths.benchmark}/<study>/<task>/<schedule>-lr<LR0>-s<seed>-<digest>, the digest over the
whole job config without where and how it runs (paths, threads, checkpoints), with the LR0 it trains at, SC's
LRmax and the ARC model's file digest. So a run with other weights (a new `make select`), epochs or settings
lands beside an earlier run; which of them a table shows is decided by the config (`named_runs`), not by file times.
"""
from __future__ import annotations

import functools
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from core.artifacts import config_digest, is_done, location_free, read_done
from core.errors import ConfigError, CorruptArtifact, DataError, UserError
from core.instantiate import build, constructor_node
from core.runs import done_row, finished_runs, verify_run_files

SC_LR_MAX = ("authors", "from_range_test")  # sc_lr_max: the schedule's lr_max (authors') or this project's range test
RUN_NAME = re.compile(r"^(?P<schedule>.+)-lr(?P<lr>[^-]+)-s(?P<seed>\d+)-[0-9a-f]+$")  # what run_dir writes
VOLATILE = ("paths", "threads", "lr0", "lr0_column", "sizes", "checkpoint_every", "checkpoint_seconds", "study_seeds")


def range_test_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.benchmark) / "range_test" / cfg.bench_task.name


def schedule_node(cfg: DictConfig) -> DictConfig:
    """The schedule's constructor node; a setting no config gave for this task is an error naming the file."""
    return constructor_node(cfg.schedule, "schedule", f"schedule={cfg.schedule.name} needs it for bench_task="
                            f"{cfg.bench_task.name}: add configs/bench_schedule/{cfg.bench_task.name}_"
                            f"{cfg.schedule.name}.yaml")


def arc_weights(cfg: DictConfig, node: DictConfig) -> str | None:
    """The ARC model to deploy: the schedule's `weights` (default ${paths.selected_arc}), or with
    `arc_candidate=N` the file `<arc_model_file>.h5` of candidate N under ${paths.candidates} (metric study)."""
    if cfg.arc_candidate is not None:
        runs = finished_runs(cfg.paths.candidates)
        mine = runs[runs.candidate == cfg.arc_candidate] if "candidate" in runs else runs.iloc[:0]
        if len(mine) != 1:
            raise DataError(f"arc_candidate={cfg.arc_candidate}: {len(mine)} finished candidates with that id under "
                            f"{cfg.paths.candidates} (need exactly one)")
        return str(Path(mine.run_dir.iloc[0]) / f"{cfg.arc_model_file}.h5")
    return node.get("weights")


def no_weights(cfg: DictConfig) -> str:
    """Why an ARC job whose schedule has no weights file (weights: null) trains nothing."""
    return (f"schedule {cfg.schedule.name} has no ARC weights here (set paths.published_arc, or the env variable "
            "ARC_PUBLISHED_WEIGHTS, to FastEstimator's published arc.h5)")


def check_weights(weights: str | None) -> None:
    if weights is not None and not Path(weights).is_file():
        raise DataError(f"schedule.weights: ARC weights not found: {weights} (run `make select`, or set "
                        "paths.selected_arc=/path/arc.h5)")


def range_test_lr_max(done: Path) -> float:
    """LRmax of a finished range test; CorruptArtifact naming its DONE when damaged (the range test redoes it)."""
    hint = "rerun `make range-test`: it redoes a damaged test"
    try:
        row = read_done(done)
    except CorruptArtifact as err:
        raise CorruptArtifact(f"{err} ({hint})") from None
    try:
        return float(row["lr_max"])
    except (KeyError, TypeError, ValueError):
        raise CorruptArtifact(f"{done / 'DONE'}: no LRmax in this range test's DONE marker ({hint})") from None


def schedule_kwargs(cfg: DictConfig, node: DictConfig) -> dict:
    """What the schedule gets beyond its config: SC's LRmax from this profile's range test (sc_lr_max)."""
    if "lr_max" not in node:
        return {}
    if cfg.sc_lr_max not in SC_LR_MAX:
        raise ConfigError(f"sc_lr_max must be one of {', '.join(SC_LR_MAX)}, got {cfg.sc_lr_max}")
    if cfg.sc_lr_max == "from_range_test" or node.lr_max is None:
        done = range_test_dir(cfg)
        if not is_done(done):
            raise DataError(f"schedule sc: no LR range test result at {done} (run `make range-test` or "
                            f"`python -m experiments.range_test bench_task={cfg.bench_task.name}` first)")
        return {"lr_max": range_test_lr_max(done)}
    return {}


def single_lr0_column(schedule) -> bool:
    """Whether a schedule (its class or an instance) trains in one LR0 column only: an LR-free method (`lr_free`,
    experiments.optimizers.OptimizerMethod) runs once, SC (`own_lr0`) at its own LR0 in the column nearest to it.
    The one home of the fact: lr0_of, the planner and the tables read it here."""
    return bool(getattr(schedule, "lr_free", False)) or hasattr(schedule, "own_lr0")


@functools.lru_cache(maxsize=None)
def single_column_schedules(schedule_dir: str | None = None) -> tuple[str, ...]:
    """The names of configs/schedule/*.yaml whose `_target_` class trains in one LR0 column (single_lr0_column):
    sc, sls and prodigy in this repository. A config without its own `_target_` (arc_published: ARC's) is not."""
    from hydra.utils import get_object

    from core.cli import CONFIGS

    names = []
    for path in sorted(Path(schedule_dir or CONFIGS / "schedule").glob("*.yaml")):
        target = OmegaConf.load(path).get("_target_")
        if target and single_lr0_column(get_object(target)):
            names.append(path.stem)
    return tuple(names)


def lr0_of(cfg: DictConfig, schedule) -> tuple[float | None, str | None]:
    """(the run's LR0, or None for LR-free methods; why this job skips, or None). `schedule`: the built schedule,
    or its class where it has no `own_lr0` (the class says `lr_free`)."""
    grid, lr0 = list(cfg.bench_task.lr0s), cfg.lr0
    if not grid or not all(g > 0 for g in grid):
        raise ConfigError(f"bench_task.lr0s must be a non-empty list of positive LRs, got {grid}")
    if cfg.lr0_column is not None:
        if lr0 is not None or not 0 <= cfg.lr0_column < len(grid):
            raise ConfigError(f"lr0_column={cfg.lr0_column}: give lr0 or lr0_column, a column of {grid} "
                              f"(0..{len(grid) - 1}) for {cfg.bench_task.name}")
        lr0 = grid[cfg.lr0_column]
    if lr0 is not None and not lr0 > 0:
        raise ConfigError(f"lr0 must be > 0, got {lr0}")
    if getattr(schedule, "lr_free", False):  # experiments.optimizers.OptimizerMethod.lr_free
        column = grid[0]
        if lr0 is not None and not math.isclose(lr0, column):
            return None, f"{cfg.schedule.name} is LR-free: it runs once, in the LR0 {column:g} column"
        return None, None
    if hasattr(schedule, "own_lr0"):
        own = schedule.own_lr0(grid)
        column = min(grid, key=lambda g: abs(math.log(g / own)))
        if lr0 is not None and not math.isclose(lr0, column):
            return own, f"{cfg.schedule.name} runs at its own LR0 {own:g}, in the LR0 {column:g} column"
        return own, None
    if lr0 is None:
        raise ConfigError(f"schedule {cfg.schedule.name} needs lr0 (the task's grid: {grid})")
    return lr0, None


def file_digest(path: str) -> str:
    stat = Path(path).stat()
    return _digest(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _digest(path: str, mtime_ns: int, size: int) -> str:  # a study names hundreds of runs of one model file
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def run_dir(cfg: DictConfig, lr0: float | None, kwargs: dict, weights: str | None) -> Path:
    """The directory of the run `cfg` trains at `lr0` with schedule inputs `kwargs` and ARC model `weights`."""
    key = location_free(cfg)
    for volatile in VOLATILE:  # where and how, not what: no part of the result
        key.pop(volatile, None)
    task = key["bench_task"]  # other profiles' sizes are not this run; this profile's are the task's sized fields,
    sized = task.pop("sizes")[cfg.profile.name]  # grouped under `size` as run names have always been digested
    task["size"] = {k: task.pop(k) for k in sized}
    task["size"].pop("stand_in")  # a display name
    key["lr0"], key["schedule_kwargs"] = lr0, dict(kwargs)
    if weights is not None:
        key["schedule"]["weights"] = file_digest(weights)  # the model, not where it lies
    lr_label = "free" if lr0 is None else f"{lr0:g}"
    return (Path(cfg.paths.benchmark) / cfg.study / cfg.bench_task.name
            / f"{cfg.schedule.name}-lr{lr_label}-s{cfg.seed}-{config_digest(key)}")


def planned_run(cfg: DictConfig) -> tuple[Path | None, str]:
    """(the run directory experiments.benchmark writes for this job config, '') or (None, why the job trains
    nothing); a UserError (missing weights, no range test) where the run cannot be named yet."""
    from hydra.utils import get_object

    node = schedule_node(cfg)
    weights = arc_weights(cfg, node)
    if weights is None and "weights" in node:
        return None, no_weights(cfg)
    check_weights(weights)
    kwargs = schedule_kwargs(cfg, node)
    cls = get_object(node._target_)  # ARC's constructor loads its model: only SC (own_lr0) is built
    lr0, skip = lr0_of(cfg, build(node, "schedule", **kwargs) if hasattr(cls, "own_lr0") else cls)
    return (None, skip) if skip else (run_dir(cfg, lr0, kwargs, weights), "")


def finished_job(cfg: DictConfig) -> str | None:
    """The line a benchmark job prints when it has nothing to do: `done already: <run>` for a finished run (its
    files verified as the job verifies them; a damaged one is redone), `skip: <why>` for a job that trains nothing.
    None when the job must run, or when its run cannot be named yet (the job then says why). The sweeper asks it of
    every job before launching (`hydra.sweeper.finished` in configs/benchmark.yaml)."""
    try:
        path, skip = planned_run(cfg)
    except UserError:
        return None
    if path is None:
        return f"skip: {skip}"
    return f"done already: {path}" if done_row(path, verify_run_files) is not None else None


# ---- the runs the current config names ----------------------------------------------------------------------
def study_experiments(study: str, experiment_dir: Path | None = None) -> list[str]:
    """configs/experiment/*.yaml whose `study` is `study` and that sweep benchmark runs (a bench_task or schedule
    in the sweep or the defaults; the benchmark study is Tables 2-4 plus the extended baselines)."""
    from core.cli import CONFIGS

    names = []
    for path in sorted(Path(experiment_dir or CONFIGS / "experiment").glob("*.yaml")):
        node = OmegaConf.load(path)
        params = OmegaConf.select(node, "hydra.sweeper.params") or {}
        keys = set(params) | {str(k).replace("override ", "").strip().lstrip("/") for item in node.get("defaults") or []
                              if OmegaConf.is_dict(item) for k in item}
        if str(node.get("study", "benchmark")) == study and keys & {"bench_task", "schedule"}:
            names.append(path.stem)
    return names


def reader_overrides(cfg: DictConfig) -> list[str]:
    """The overrides that give a reader's profile and paths (figures, experiments.table) to the benchmark config."""
    paths = OmegaConf.to_container(cfg.paths, resolve=True)
    quoted = {k: "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'" for k, v in paths.items() if v is not None}
    return [f"profile={cfg.profile.name}", *(f"paths.{k}={v}" for k, v in quoted.items())]


@dataclass
class NamedRuns:
    runs: list[Path] = field(default_factory=list)  # the run directories the config names
    unnamed: list[str] = field(default_factory=list)  # jobs whose run cannot be named yet, with why

    def report(self, limit: int = 3) -> list[str]:
        """Lines naming the jobs whose runs cannot be named (they count as missing), at most `limit` of them."""
        lines = [f"missing: {len(self.unnamed)} jobs' runs cannot be named yet (their inputs are missing)"] \
            if self.unnamed else []
        return lines + [f"  {line}" for line in self.unnamed[:limit]]


def named_runs(study: str, overrides: list[str]) -> NamedRuns:
    """The runs `python -m experiments.benchmark -m experiment=<E> <overrides>` writes for every experiment E of
    `study` (or the `experiment=` among `overrides`). The caller registers the benchmark schema."""
    from core.sweep import job_configs, sweep_jobs

    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("experiment=")]
    rest = [o for o in overrides if not o.startswith("experiment=")]
    out = NamedRuns()
    for experiment in chosen or study_experiments(study):
        jobs = sweep_jobs("benchmark", [f"experiment={experiment}", *rest])
        for job, cfg in zip(jobs, job_configs("benchmark", jobs)):
            try:
                path, _ = planned_run(cfg)
            except UserError as err:
                swept = " ".join(o for o in job if o not in rest and not o.startswith("experiment="))
                out.unnamed.append(f"{experiment}: {swept}: {err}")
                continue
            if path is not None:
                out.runs.append(path)
    return out
