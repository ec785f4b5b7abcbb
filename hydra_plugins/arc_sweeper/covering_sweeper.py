"""Hydra's basic sweeper, validating a covering subset of each batch instead of every job, and stopping the
joblib launcher's idle workers when the sweep ends; a sweep that fails removes the sweep directory it created.

Before launching, BasicSweeper composes every job's config once to catch composition errors early, and the
launcher then composes it again: two compositions per job. A benchmark grid's job costs ~0.35 s to compose
(profiled: 40 compositions = 28 s of a 48 s, 20-job smoke grid; a smoke run trains in 0.1 s), and with the
joblib launcher this validation runs serially in the parent while the workers wait.

This sweeper validates a small set of jobs that together bring every override value of the batch: it takes,
again and again, the job with the most values not yet covered (the first such job in batch order), so every value
of every swept parameter (every config-group choice, every LR0, every seed) is composed once before any job runs.
For a full grid that is as many compositions as the longest parameter has values: 8 schedules x 3 LR0s x 5 seeds
= 120 jobs are validated by 8 compositions (taking jobs in batch order instead needed 14). A failure that only one
combination of values produces surfaces when the launcher composes that job. Jobs, order and results are
BasicSweeper's. Hydra only loads plugins from the `hydra_plugins` namespace; configs/hydra/default.yaml
selects this class.

A stage whose jobs can be finished already names, in `hydra.sweeper.finished`, a function of a job's config that
returns the line to print for a job with nothing to do (e.g. `done already: <run>`), or None. The sweeper asks it of
every job (`core.sweep.job_configs`: one composition per distinct set of config groups, the names the tables read)
and launches only the rest. A finished job otherwise costs a composition and a job start, ~0.3 s: rerunning a
finished smoke benchmark (540 jobs) took ~150 s before, which `make reproduce` pays again after every kill.

With the joblib launcher (hydra/launcher=local) a command exited ~1 s after its last run (timestamps of the runs'
files, `make bench BENCH=grid`), 0.7 s of it loky waiting at interpreter exit for its idle workers to exit by
themselves; killing them once the sweep ends takes 0.06 s (`stop_workers`; every job has returned by then).
"""
# No `from __future__ import annotations` here: Hydra's plugin scan executes this module without a sys.modules entry,
# and a dataclass with string annotations then fails to build (CoveringSweeperConf below).
import contextlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, Optional

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore


@dataclass
class CoveringSweeperConf:
    _target_: str = "hydra_plugins.arc_sweeper.covering_sweeper.CoveringSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None
    finished: Optional[str] = None  # dotted name of f(job config) -> line | None: a job with nothing to do


ConfigStore.instance().store(group="hydra/sweeper", name="covering", node=CoveringSweeperConf, provider="arc_repro")


def covering_jobs(batch: Sequence[Sequence[str]]) -> list[Sequence[str]]:
    """Jobs of `batch` (in batch order) that together hold every override of `batch`, chosen greedily: the job
    bringing the most overrides not yet held, the earliest on a tie."""
    jobs = [set(overrides) for overrides in batch]
    needed = set().union(*jobs)
    chosen: set[int] = set()
    seen: set[str] = set()
    while seen != needed:
        index = max(range(len(jobs)), key=lambda i: (len(jobs[i] - seen), -i))
        chosen.add(index)
        seen |= jobs[index]
    return [batch[i] for i in sorted(chosen)]


class CoveringSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None,
                 finished: Optional[str] = None) -> None:
        super().__init__(max_batch_size, params)
        self.finished = finished

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        launch = self.launcher.launch  # a batch whose jobs are all finished is not launched (BasicSweeper.sweep
        self.launcher.launch = lambda batch, initial_job_idx: launch(batch, initial_job_idx) if batch else []  # would)
        from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

        # jobs in this process, or in joblib's workers that each run many: composed once per set of config groups
        # (per worker). submitit's jobs each run in a process of their own and keep Hydra's loader.
        if type(self.launcher) in (BasicLauncher, JoblibLauncher):
            from core.sweep import GroupingLoader

            loader = GroupingLoader(hydra_context.config_loader)
            self.launcher.hydra_context = replace(hydra_context, config_loader=loader)

    def get_job_batch(self) -> Sequence[Sequence[str]]:
        batch = super().get_job_batch()
        if self.finished is None or not batch:
            return batch
        from hydra.utils import get_object
        from omegaconf import OmegaConf

        from core.sweep import job_configs

        done = get_object(self.finished)
        hydra_overrides = list(OmegaConf.to_container(self.config.hydra.overrides.hydra))  # as the launcher composes
        configs = job_configs(str(self.config.hydra.job.config_name), [[*hydra_overrides, *job] for job in batch])
        pending = []
        for job, cfg in zip(batch, configs):
            line = done(cfg)
            if line is None:
                pending.append(job)
            else:
                print(line, flush=True)
        return pending

    def sweep(self, arguments: list[str]) -> Any:
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        created = not sweep_dir.exists()
        try:
            return super().sweep(arguments)
        except BaseException:  # a failed stage (a job's one-line error exits): leave no sweep directory behind
            if created:
                remove_hydra_record(sweep_dir)
            raise
        finally:  # after the launcher's Parallel has returned (or raised): no job is left running
            stop_workers()

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        super().validate_batch_is_legal(covering_jobs(batch))


def remove_hydra_record(sweep_dir: Path) -> None:
    """Remove a sweep directory this sweep created, if it holds only what Hydra writes there (multirun.yaml and the
    jobs' empty working directories, since configs/hydra/default.yaml sets output_subdir null), then its parent
    `multirun/` if that is left empty. Anything else in it is kept: it is not Hydra's to remove."""
    if not sweep_dir.is_dir():
        return
    files = [p for p in sweep_dir.rglob("*") if not p.is_dir()]
    if any(p != sweep_dir / "multirun.yaml" for p in files):
        return
    shutil.rmtree(sweep_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        sweep_dir.parent.rmdir()  # only when empty


def stop_workers() -> None:
    """Kill the idle workers of joblib's loky executor, if this process started one."""
    from joblib.externals.loky import reusable_executor

    executor = reusable_executor._executor  # loky's one reusable executor (joblib's MemmappingExecutor)
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)
