"""Hydra config tree: every primary config composes under every profile, schemas reject typos,
every `_target_` of the train config builds, and the SLURM launcher config yields a valid sbatch script."""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import core.config  # noqa: F401
from core.instantiate import build

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PROFILES = sorted(p.stem for p in (CONFIGS / "profile").glob("*.yaml"))
PRIMARY = sorted(p.stem for p in CONFIGS.glob("*.yaml"))

# Stage packages register their schemas in <stage>/config.py when it exists.
for stage in ("datagen", "arc_model", "selection", "experiments", "figures"):
    if importlib.util.find_spec(f"{stage}.config") is not None:
        importlib.import_module(f"{stage}.config")


def compose_cfg(name: str, overrides=(), hydra: bool = False):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(name, overrides=list(overrides), return_hydra_config=hydra)


def test_profiles_are_the_three_of_the_design():
    assert PROFILES == ["mini", "paper", "smoke"]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("primary", PRIMARY)
def test_every_primary_config_composes_and_resolves(primary, profile):
    cfg = compose_cfg(primary, [f"profile={profile}"])
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert cfg.profile.name == profile


@pytest.mark.parametrize("profile", ["smoke", "mini"])
def test_train_targets_build(profile):
    cfg = compose_cfg("train", [f"profile={profile}"])
    task = build(cfg.task.build, "task.build")
    schedule = build({k: v for k, v in cfg.schedule.items() if k != "name"}, "schedule")
    assert hasattr(task, "build_model") and hasattr(schedule, "on_epoch_begin")
    assert cfg.epochs == cfg.sizes[profile].epochs


@pytest.mark.parametrize("override", ["optimizer.lrr=0.1", "epochz=3", "profile.nme=x", "optimizer.lr=fast"])
def test_typo_or_wrong_type_fails_loudly(override):
    with pytest.raises(ConfigCompositionException):
        compose_cfg("train", [override])


@pytest.mark.parametrize("launcher", ["joblib", "local", "submitit_local", "submitit_slurm", "slurm"])
def test_launcher_configs_compose(launcher):
    cfg = compose_cfg("train", [f"hydra/launcher={launcher}"], hydra=True)
    assert "_target_" in cfg.hydra.launcher


def test_slurm_launcher_makes_a_valid_sbatch_script(tmp_path, monkeypatch):
    """SubmititLauncher.launch's parameter mapping into submitit's real AutoExecutor, then the sbatch file
    it would submit. Only the `srun` presence check is patched: there is no cluster here."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from submitit.slurm.slurm import SlurmExecutor

    monkeypatch.setattr(SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    cfg = compose_cfg("train", ["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                'hydra.launcher.srun_args=["--cpu-bind=none"]',
                                "+hydra.launcher.additional_parameters.mail-type=END"], hydra=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    params.pop("_target_")
    executor = submitit.AutoExecutor(folder=tmp_path, cluster="slurm",
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    params.pop("submitit_folder")
    params["name"] = "train"
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python -m core.single_run", "uid")
    assert "#SBATCH --partition=gpu" in script
    assert "#SBATCH --gpus-per-node=1" in script
    assert "#SBATCH --mail-type=END" in script
    assert "--cpu-bind=none" in script.split("srun", 1)[1]


# ---- benchmark studies (configs/experiment/) ---------------------------------------------------------
@pytest.mark.parametrize("experiment, task", [("table2_cifar10", "cifar10"), ("table3_mscoco", "mscoco"),
                                              ("table4_ptb", "ptb")])
def test_paper_table_study_sweeps_the_seven_rows_at_the_tasks_lr0s(experiment, task):
    cfg = compose_cfg("benchmark", [f"experiment={experiment}"], hydra=True)
    params = cfg.hydra.sweeper.params
    # the paper's seven rows, then the published ARC beside ours (it skips unless paths.published_arc is set)
    assert params.schedule.split(",") == ["constant", "cd", "ccd", "ed", "sc", "sls", "arc", "arc_published"]
    assert cfg.bench_task.name == task
    assert [float(v) for v in str(params.lr0).split(",")] == list(cfg.bench_task.lr0s)


def test_no_config_uses_oc_select():
    """A key a config needs is declared (schema or `???`), never looked up with a silent fallback."""
    offenders = [str(p.relative_to(CONFIGS)) for p in sorted(CONFIGS.rglob("*")) if p.is_file()
                 and "oc.select" in p.read_text(errors="replace")]
    assert offenders == []


@pytest.mark.parametrize("task", sorted(p.stem for p in (CONFIGS / "datagen_task").glob("*.yaml")))
def test_mini_datagen_is_in_the_papers_regime(task):
    """mini's ARC data use Table 1's LR0 range unscaled and every cycle is >= 50 training steps (the
    shortest cycle is frequency_min epochs of the task's mini data, counted by iterating one epoch's batches)."""
    import torch

    from datagen.generate import lr_range, task_node

    cfg = compose_cfg("datagen", ["profile=mini", f"datagen_task={task}"])
    assert cfg.lr_scale == 1 and lr_range(cfg) == list(cfg.datagen_task.lr_range)
    steps = sum(1 for _ in build(task_node(cfg), "datagen_task", device="cpu").train_batches(torch.Generator()))
    cap = cfg.datagen_task.max_steps_per_epoch
    assert min(steps, cap or steps) * cfg.frequency_min >= 50


def test_paper_count_study_has_the_papers_amount_of_data_under_its_own_root():
    """configs/experiment/datagen_paper_count.yaml: 12 tasks x 42 runs x 10 points = 5,040 points on mini; `make
    study-paper-count` runs every step under artifacts/<profile>_paper_count with the candidates at 300 epochs."""
    cfg = compose_cfg("datagen", ["profile=mini", "experiment=datagen_paper_count", "hydra/sweeper=basic"], hydra=True)
    tasks = cfg.hydra.sweeper.params.datagen_task.split(",")
    assert cfg.runs == 42 and len(tasks) * cfg.runs * cfg.points_per_run == 5040
    baseline = compose_cfg("datagen", ["profile=mini"])  # the same study otherwise: runs 0-5 are mini's dataset
    assert (cfg.frequency_min, cfg.frequency_max, cfg.lr_scale, cfg.seed) == (
        baseline.frequency_min, baseline.frequency_max, baseline.lr_scale, baseline.seed)
    commands = subprocess.run(["make", "-n", "--no-print-directory", "-o", ".venv/.installed", "study-paper-count"],
                              cwd=CONFIGS.parent, capture_output=True, text=True, check=True).stdout
    commands = commands.replace("\\\n", " ")  # a shell line continued
    python = [line for line in commands.splitlines() if "-m " in line and "python" in line]
    assert len(python) >= 10 and all("artifacts/mini_paper_count" in line for line in python)
    assert all(" epochs=300" in line for line in python if "-m arc_model " in line)
    assert "runs=$runs" in commands and "6 12 18 24 30 36 42" in commands


# ---- one sizing idiom: a field per sized key, reading the active profile's entry of the `sizes` block beside it ----
@pytest.mark.parametrize("profile", ["smoke", "mini", "paper"])
def test_a_sized_field_is_overridden_without_naming_the_profile(profile):
    import experiments.config  # noqa: F401
    from core.bench_run import run_dir

    common = [f"profile={profile}", "bench_task=ptb", "schedule=constant"]
    plain = compose_cfg("benchmark", common)
    flat = compose_cfg("benchmark", [*common, "bench_task.epochs=7"])
    spelled = compose_cfg("benchmark", [*common, f"bench_task.sizes.{profile}.epochs=7"])
    assert plain.bench_task.epochs == plain.bench_task.sizes[profile].epochs != 7
    assert flat.bench_task.epochs == spelled.bench_task.epochs == 7
    assert flat.bench_task.build == plain.bench_task.build  # the rest of the profile's size is untouched
    # the run is named by what it computes, however the override was spelled; 7 epochs is another run
    assert run_dir(flat, 0.1, {}, None) == run_dir(spelled, 0.1, {}, None) != run_dir(plain, 0.1, {}, None)


def test_every_stage_sizes_its_fields_the_same_way():
    import arc_model.config  # noqa: F401
    import datagen.config  # noqa: F401
    import selection.config  # noqa: F401

    datagen = compose_cfg("datagen", ["profile=mini", "datagen_task=imdb_lstm", "datagen_task.max_steps_per_epoch=3",
                                      "runs=2"])
    assert datagen.datagen_task.max_steps_per_epoch == 3 and datagen.runs == 2
    assert datagen.datagen_task.args == datagen.datagen_task.sizes.mini.args
    train_arc = compose_cfg("train_arc", ["profile=mini", "epochs=300", "data.holdout=0"])
    assert (train_arc.epochs, train_arc.data.holdout) == (300, 0) and train_arc.sizes.mini.epochs != 300
    study = compose_cfg("benchmark", ["profile=mini", "experiment=n_study", "study_seeds='0,1,2'"])
    assert study.study_seeds == "0,1,2"
    from core.sweep import as_dict, sweep_jobs

    jobs = sweep_jobs("benchmark", ["experiment=n_study", "profile=mini", "study_seeds='0,1,2'"])
    assert {as_dict(job)["seed"] for job in jobs} == {"0", "1", "2"}
    default = sweep_jobs("benchmark", ["experiment=n_study", "profile=mini"])
    assert {as_dict(job)["seed"] for job in default} == {"0", "1"}


def test_interpolations_are_parsed_once_per_string_and_resolve_as_before():
    """core.config keeps OmegaConf's parse trees (every sized field is an interpolation read many times)."""
    import omegaconf.base

    parse = omegaconf.base.parse
    assert hasattr(parse, "cache_info"), "core.config did not install the parse memo"
    cfg = OmegaConf.create({"profile": {"name": "mini"}, "sizes": {"smoke": {"n": 1}, "mini": {"n": 2}},
                            "n": "${sizes.${profile.name}.n}", "twice": "${n}-${n}"})
    hits = parse.cache_info().hits
    assert (cfg.n, cfg.twice, cfg.n) == (2, "2-2", 2)
    assert parse.cache_info().hits > hits  # the second read of `n` (and `n` inside `twice`) parsed nothing
    cfg.profile.name = "smoke"  # a tree is the string's alone: the values it resolves to still follow the config
    assert (cfg.n, cfg.twice) == (1, "1-1")
