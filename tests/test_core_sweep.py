"""core.sweep: the sweep expansion the benchmark, the planner and the figures share."""
from __future__ import annotations

from core.sweep import as_dict, job_overrides, sweep_jobs
from figures.expected import expected_runs
from pipeline.plan import Planner


def test_sweep_expands_as_hydra_does():
    jobs = [as_dict(j) for j in job_overrides({"lr0": "0.1,0.01"}, ["seed=range(0,2)"])]
    assert [(j["lr0"], j["seed"]) for j in jobs] == [("0.1", "0"), ("0.1", "1"), ("0.01", "0"), ("0.01", "1")]
    assert job_overrides({"seed": "0,1,2", "lr0": "0.1"}, ["seed=5"]) == [["seed=5", "lr0=0.1"]]  # replaced in place
    assert [as_dict(j)["schedule"] for j in job_overrides({}, ["schedule=choice(cd,arc)"])] == ["cd", "arc"]
    assert len(job_overrides({}, ["paths.root='/a,b'"])) == 1  # a quoted comma is a value, not a sweep


def test_planner_benchmark_and_figures_name_the_same_jobs():
    """table2_cifar10 on smoke with seed=0: (task, schedule, LR0, seed) of every job, before skips."""
    planner = Planner(["profile=smoke"])
    base, _ = planner._study_sweep("table2_cifar10")
    from core.sweep import sweep_params

    plan = {(j.get("bench_task", "cifar10"), j["schedule"], float(j["lr0"]), int(j["seed"]))
            for j in planner.jobs(sweep_params(base), ["seed=0"])}
    bench = {(j.get("bench_task", "cifar10"), j["schedule"], float(j["lr0"]), int(j["seed"]))
             for j in map(as_dict, sweep_jobs("benchmark", ["experiment=table2_cifar10", "profile=smoke", "seed=0"]))}
    figures = {("cifar10", label, lr0, seed) for label, exp in expected_runs("benchmark", [], seeds=[0])["cifar10"].items()
               if exp.source.endswith("table2_cifar10.yaml") for lr0 in exp.lr0s for seed in exp.seeds}
    assert len(plan) == 8 * 3 and plan == bench == figures


def test_sweep_configs_equal_hydras_own_composition_of_every_job():
    """core.sweep.SweepConfigs (the in-process launcher's job configs, hydra_plugins/arc_sweeper) against Hydra's
    load_sweep_config, job by job, for grids of config groups and values (the n-study also overrides a nested key)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    import experiments.config  # noqa: F401  (registers the schema)
    from core.cli import CONFIGS
    from core.sweep import SweepConfigs

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONFIGS)))
    for command in (["experiment=table2_cifar10", "profile=smoke", "seed=0"],
                    ["experiment=n_study", "profile=mini", "hydra.job.chdir=false", "arc_candidate=1", "lr0=0.01"]):
        master = loader.load_configuration("benchmark", command, RunMode.MULTIRUN)
        grouped = SweepConfigs(loader)
        jobs = sweep_jobs("benchmark", command)
        assert len(jobs) >= 12
        for job in jobs:
            hydra_own = loader.load_sweep_config(master, job)
            ours = grouped(master, job)
            assert OmegaConf.to_container(ours) == OmegaConf.to_container(hydra_own), job
            assert ours.hydra.overrides.task == hydra_own.hydra.overrides.task
        assert len(grouped.bases) < len(jobs) / 2  # composed once per set of config groups


def _compose_in_worker(loader, master, job, singletons):
    """What Hydra's joblib launcher does first in a worker (hydra_joblib_launcher/_core.py, execute_job)."""
    import os

    from hydra.core.singleton import Singleton
    from hydra.core.utils import setup_globals
    from omegaconf import OmegaConf

    setup_globals()
    Singleton.set_state(singletons)
    cfg = loader.load_sweep_config(master, job)
    return os.getpid(), len(loader.load_sweep_config.bases), OmegaConf.to_container(cfg)


def test_joblib_workers_keep_their_compositions_from_job_to_job_and_compose_as_hydra():
    """core.sweep.GroupingLoader as the covering sweeper hands it to the joblib launcher: sent to loky's workers with
    every job, it is one loader per worker and sweep, so a worker composes each set of config groups once."""
    import os
    import pickle

    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.core.singleton import Singleton
    from hydra.types import RunMode
    from joblib.externals.loky import get_reusable_executor
    from omegaconf import OmegaConf

    import experiments.config  # noqa: F401  (registers the schema)
    from core.cli import CONFIGS
    from core.sweep import GroupingLoader
    from hydra_plugins.arc_sweeper.covering_sweeper import stop_workers

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONFIGS)))
    grouping = GroupingLoader(loader)
    once, again = pickle.loads(pickle.dumps(grouping)), pickle.loads(pickle.dumps(grouping))
    assert once is again and once is not grouping  # one per process and sweep
    assert pickle.loads(pickle.dumps(GroupingLoader(loader))) is not once  # another sweep: its own
    assert grouping.repository is loader.repository  # Hydra's loader's other attributes, unchanged

    command = ["profile=smoke", "bench_task=ptb", "lr0=1.0", "seed=0,1,2", "schedule=constant,greedy"]
    master = loader.load_configuration("benchmark", command, RunMode.MULTIRUN)
    jobs = sweep_jobs("benchmark", command)  # constant, greedy, constant, ...
    singletons = Singleton.get_state()
    try:  # one loky worker (joblib's executor) running the jobs one after the other
        worker = get_reusable_executor(max_workers=1)
        results = [worker.submit(_compose_in_worker, grouping, master, job, singletons).result() for job in jobs]
    finally:
        stop_workers()
    for job, (_, _, cfg) in zip(jobs, results):
        assert cfg == OmegaConf.to_container(loader.load_sweep_config(master, job)), job
    assert len({pid for pid, _, _ in results}) == 1 and results[0][0] != os.getpid()
    assert [count for _, count, _ in results] == [1, 2, 2, 2, 2, 2]  # 2 schedules: composed once each
