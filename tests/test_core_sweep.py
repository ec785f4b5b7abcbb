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
