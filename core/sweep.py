"""How a Hydra multirun becomes jobs: the one expansion the benchmark (through Hydra), the planner (pipeline.plan) and
the table readers (core.bench_run.named_runs, figures.expected) share.

A sweep is the composed config's `hydra.sweeper.params` followed by the command line's overrides; Hydra's basic
sweeper (hydra/_internal/core_plugins/basic_sweeper.py, `sweep`: params first, then the arguments) parses them with
its OverridesParser and takes the product with `split_arguments`, a later override of a key replacing the earlier
one in place. `job_overrides` calls those two functions, so `range()`, `choice()`, quoted values and group sweeps
expand as the benchmark's multirun expands them (configs/hydra/default.yaml's sweeper subclasses the basic one and
keeps its jobs). `glob()` needs Hydra's config loader and is not supported here [I]: no study uses it.

A job's config is Hydra's compose of its overrides. Composing costs ~0.6 s (measured here, a benchmark config), so
`job_configs` composes once per distinct set of config-group (and `hydra.`) overrides and applies each job's value
overrides as Hydra's config loader does after composing (config_loader_impl.py: `_apply_overrides_to_config` of the
defaults list's `config_overrides`, in command-line order). The sweeper uses it too, to leave out the jobs that have
nothing to do before it launches any (hydra_plugins/arc_sweeper), and the in-process launcher composes its jobs
the same way (`SweepConfigs`, which also sets the `hydra` fields Hydra derives from a job's overrides), and so do the
joblib launcher's workers, each keeping its compositions from one job to the next (`GroupingLoader`).
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from omegaconf import DictConfig, OmegaConf

from core.cli import CONFIGS


def sweep_params(cfg: DictConfig) -> dict:
    """`hydra.sweeper.params` of a config composed with `return_hydra_config=True` ({} when it has none)."""
    params = OmegaConf.select(cfg, "hydra.sweeper.params")
    return OmegaConf.to_container(params, resolve=True) if params is not None else {}


def job_overrides(params: Mapping | None, overrides: Sequence[str] = ()) -> list[list[str]]:
    """The jobs of a sweep, each as its list of `key=value` overrides, in Hydra's job order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    strings = [f"{k}={v}" for k, v in (params or {}).items()] + list(overrides)
    if not strings:
        return [[]]
    (batch,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(strings), None)
    return [list(job) for job in batch]


def as_dict(job: Sequence[str]) -> dict[str, str]:
    """{key: value string} of one job's overrides."""
    return dict(o.split("=", 1) for o in job)


class OverrideKinds:
    """Each distinct override string parsed once (a grid's jobs share their strings; Hydra's parser costs ~1 ms a
    rule) and sorted as Hydra's config loader sorts it: a config-group choice, a `hydra.` key or a deletion changes
    what is composed; any other override is a value the loader sets after composing."""

    def __init__(self, repository) -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        self.parser, self.repository, self.parsed = OverridesParser.create(), repository, {}

    def split(self, job: Sequence[str]) -> tuple[tuple[str, ...], list]:
        """(the job's composing override strings, its value overrides as parsed Overrides), each in job order."""
        for line in job:
            if line not in self.parsed:
                o = self.parser.parse_overrides([line])[0]
                self.parsed[line] = o, (o.is_delete() or o.is_hydra_override()
                                        or self.repository.group_exists(o.key_or_group.lstrip("/")))
        return (tuple(line for line in job if self.parsed[line][1]),
                [self.parsed[line][0] for line in job if not self.parsed[line][1]])


def job_configs(config_name: str, jobs: Sequence[Sequence[str]], hydra: bool = False) -> list[DictConfig]:
    """Each job's composed config, with its `hydra` node if `hydra` (the caller registers the config's schema,
    e.g. `import experiments.config`)."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.global_hydra import GlobalHydra

    out, composed = [], {}
    running = GlobalHydra.instance().is_initialized()  # inside a stage's Hydra app: compose with its loader (CONFIGS)
    with contextlib.nullcontext() if running else initialize_config_dir(str(CONFIGS), version_base="1.3"):
        kinds = OverrideKinds(GlobalHydra.instance().config_loader().repository)  # type: ignore[attr-defined]
        for job in jobs:
            groups, values = kinds.split(job)
            if groups not in composed:
                composed[groups] = compose(config_name, list(groups), return_hydra_config=hydra)
            cfg = composed[groups].copy()
            ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
            out.append(cfg)
    return out


class SweepConfigs:
    """What Hydra's `ConfigLoaderImpl.load_sweep_config(master_config, job_overrides)` returns (a job's config, its
    `hydra` node included), composed once per set of composing overrides as `job_configs` composes: the in-process
    launcher composed every job afresh, ~0.3 s a job (Hydra re-reads the YAML files each time), for smoke runs that
    train in 0.1 s (docs/measurements.md). Value overrides are set on a copy of that composition, and the `hydra`
    fields Hydra derives from a job's overrides (`hydra.overrides.task`, `hydra.job.override_dirname`) are set as
    `_load_configuration_impl` sets them (hydra-core 1.3.2, config_loader_impl.py). tests/test_core_sweep.py compares
    every job of a grid with Hydra's own composition."""

    def __init__(self, loader) -> None:
        self.loader, self.kinds, self.bases = loader, OverrideKinds(loader.repository), {}

    def __call__(self, master_config: DictConfig, sweep_overrides: Sequence[str]) -> DictConfig:
        from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
        from hydra.types import RunMode
        from omegaconf import open_dict

        lines = [*OmegaConf.to_container(master_config.hydra.overrides.hydra), *sweep_overrides]
        groups, values = self.kinds.split(lines)
        if groups not in self.bases:
            self.bases[groups] = self.loader.load_configuration(
                config_name=master_config.hydra.job.config_name, overrides=list(groups), run_mode=RunMode.RUN)
        cfg = self.bases[groups].copy()
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        task = [self.kinds.parsed[line][0] for line in lines if not self.kinds.parsed[line][0].is_hydra_override()]
        dirname = cfg.hydra.job.config.override_dirname
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in task]
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=task, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)  # as load_sweep_config does
        return cfg


class GroupingLoader:
    """Hydra's config loader, but `load_sweep_config` (all a launcher asks of it to compose a job) is a `SweepConfigs`:
    one composition per set of config-group overrides. The covering sweeper hands it to the in-process launcher and to
    the joblib launcher (hydra_plugins/arc_sweeper). joblib sends it to its workers with every job; unpickled there,
    it is the worker's one instance for this sweep (`_worker_loader`, keyed by a token of the sweep), so a worker
    composes each set of config groups once instead of every job afresh (docs/measurements.md). submitit
    runs each job in its own process, where keeping compositions buys nothing: it keeps Hydra's loader."""

    def __init__(self, loader, token: str | None = None) -> None:
        import uuid

        self._loader, self.token = loader, token or uuid.uuid4().hex
        self.load_sweep_config = SweepConfigs(loader)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "_loader":  # pickle's and copy's probes: not Hydra's loader's
            raise AttributeError(name)
        return getattr(self._loader, name)

    def __reduce__(self):
        return _worker_loader, (self._loader, self.token)


_WORKER_LOADERS: dict[str, GroupingLoader] = {}


def _worker_loader(loader, token: str) -> GroupingLoader:
    """The GroupingLoader of sweep `token` in this process: made from the first job's loader, then kept."""
    if token not in _WORKER_LOADERS:
        _WORKER_LOADERS[token] = GroupingLoader(loader, token)
    return _WORKER_LOADERS[token]


def sweep_jobs(config_name: str, overrides: Sequence[str]) -> list[list[str]]:
    """The jobs of `python -m <stage> -m <overrides>` of `config_name`: its sweeper params (composed without the
    command line's sweeps, as Hydra composes a multirun's config), then the command line."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    single = [o.input_line for o in OverridesParser.create().parse_overrides(list(overrides))
              if not o.is_sweep_override()]
    (base,) = job_configs(config_name, [single], hydra=True)
    return job_overrides(sweep_params(base), overrides)
