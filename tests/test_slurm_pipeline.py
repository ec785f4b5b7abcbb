"""The pipeline through submitit (SLURM's launcher, here its local executor), one command on SLURM,
requeue of preempted jobs and their resume, and the winner written by the pick alone."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import REPO, run_module, children
from core.artifacts import read_done

CONFIGS = REPO / "configs"
LOCAL = "hydra/launcher=submitit_local"  # hydra-submitit-launcher 1.2.0's local executor: same code path as slurm


def jobs_of(root: Path, config: str) -> list[Path]:
    """The submitit job folders of a stage's multirun (one per job array)."""
    return sorted(p for p in (root / "multirun" / config / ".submitit").glob("*") if p.name.isdigit())


def in_process(module, config: str, overrides: list[str]) -> None:
    """A one-step stage (datagen.correct, selection.pick) in this process, as its command line would run it."""
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose(config, overrides)
    module.main.run(cfg)


@pytest.mark.slow
def test_smoke_pipeline_runs_end_to_end_through_submitit(tmp_path, monkeypatch):
    """datagen (one job per task and run) -> correct -> candidates -> proxy runs -> pick -> benchmark, every
    multirun through hydra/launcher=submitit_local, one job per stage. The benchmark job is preempted (submitit's
    signal) once it has a checkpoint: submitit requeues it and it resumes from the checkpoint."""
    import datagen.correct
    import selection.pick
    from submitit.local.local import LocalJobEnvironment

    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    art = tmp_path / "artifacts" / "smoke"

    gen = run_module("datagen", "-m", "profile=smoke", LOCAL, "datagen_task=svhn_vgg19bn", "run_index=0", "workers=1",
                     "parallel_runs=1", cwd=tmp_path)
    assert gen.returncode == 0, gen.stderr[-3000:]
    assert (art / "datagen" / "svhn_vgg19bn" / "run-000.parquet").is_file() and len(jobs_of(art, "datagen")) == 1
    in_process(datagen.correct, "correct", ["profile=smoke"])
    assert (art / "dataset" / "dataset.parquet").is_file()

    arc = run_module("arc_model", "-m", "profile=smoke", LOCAL, "candidate=1", "epochs=1", cwd=tmp_path)
    assert arc.returncode == 0, arc.stderr[-3000:]
    (candidate,) = [p.parent for p in (art / "candidates").glob("*/DONE")]

    # scoring: a job per candidate x LR0 x repeat; no job writes the winner
    score = run_module("selection", "-m", "profile=smoke", LOCAL, "candidate=1", "lr0=0.1", "repeat=0", "lr0s=[0.1]",
                       "epochs=1", cwd=tmp_path)
    assert score.returncode == 0, score.stderr[-3000:]
    assert (art / "selection" / "runs" / candidate.name / "lr0.1-r0" / "DONE").is_file()
    assert not (art / "selection" / "arc.h5").exists() and not (art / "selection" / "scores.csv").exists()
    in_process(selection.pick, "selection", ["profile=smoke", "lr0s=[0.1]"])  # the one step that writes it
    assert (art / "selection" / "arc.h5").read_bytes() == (candidate / "arc.h5").read_bytes()
    assert read_done(art / "selection")["winner"] == candidate.name

    env = {**os.environ, "PYTHONHASHSEED": "0", "ARC_REPRO_ROOT": str(tmp_path)}
    bench = subprocess.Popen([sys.executable, "-m", "experiments.benchmark", "-m", "experiment=table2_cifar10",
                              "profile=smoke", LOCAL, "schedule=arc", "lr0=0.01", "seed=0",
                              "bench_task.epochs=100", "checkpoint_every=1"],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, task = time.time() + 120, None
        while time.time() < deadline and bench.poll() is None:
            if list((art / "benchmark").glob("benchmark/cifar10/*/checkpoint.pt")) and jobs_of(art, "benchmark"):
                tasks = children(int(jobs_of(art, "benchmark")[0].name))
                if tasks:
                    task = tasks[0]
                    os.kill(task, LocalJobEnvironment._usr_sig())  # what SLURM's preemption notice delivers
                    break
            time.sleep(0.05)
        out, err = bench.communicate(timeout=240)
    finally:
        if bench.poll() is None:
            bench.kill()
    assert task is not None, "the benchmark job never wrote a checkpoint"
    assert bench.returncode == 0, err[-3000:]
    (job,) = jobs_of(art, "benchmark")
    log = "".join(p.read_text() for p in job.glob("*_log.*"))
    assert "Requeued job" in log
    resumed = re.search(r"resuming \S+ at epoch (\d+)", log)
    assert resumed and 1 <= int(resumed.group(1)) < 100, log[-3000:]
    (run,) = [p.parent for p in (art / "benchmark" / "benchmark" / "cifar10").glob("*/DONE")]
    assert read_done(run)["epochs"] == 100


@pytest.mark.slow
def test_make_reproduce_paper_slurm_sends_every_stage_through_slurm():
    """`make reproduce PROFILE=paper LAUNCHER=slurm`: every multirun (datagen per task and run, the candidates, the
    proxy runs, the range tests, every benchmark study) names the slurm launcher; the one-step commands run on the
    submitting node; and the commands are exactly the ones `make plan` prints."""
    from pipeline.plan import Planner

    out = subprocess.run(["make", "-n", "--no-print-directory", "reproduce", "PROFILE=paper", "LAUNCHER=slurm"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    lines, commands = out.splitlines(), []
    for i, line in enumerate(lines):
        loop = re.match(r"for study in (.*); do \\", line)
        if loop:  # make benchmark's loop over its studies
            body = lines[i + 1].strip().removesuffix("|| exit 1; \\")
            commands += [body.replace("$study", study) for study in loop.group(1).split()]
        elif line.startswith(".venv/bin/python") and " -m pip " not in line:  # (not .venv's own set-up)
            commands.append(line)
    commands = [" ".join(c.split()) for c in commands]
    multiruns = [c for c in commands if re.search(r" -m \S+ -m ", c)]
    # datagen, candidates, proxy runs, range tests, 4 benchmark studies, n-study, metric candidates, metric study
    assert len(multiruns) == 11
    assert all("hydra/launcher=slurm" in c for c in multiruns)
    datagen = next(c for c in multiruns if "-m datagen " in c)
    assert re.search(r"'run_index=range\(0,\d+\)'", datagen)
    planned = [" ".join(c.split()) for stage, cs in Planner(["profile=paper"]).slurm_commands() for c in cs]
    assert commands == planned


def test_slurm_launcher_requeues_timed_out_jobs_and_resubmits_the_same_job(tmp_path, monkeypatch):
    """configs/hydra/launcher/slurm.yaml sets max_num_timeout, which the launcher hands to submitit's executor; a
    preempted or timed-out job is resubmitted as the same call (the launcher's `checkpoint`), and every stage resumes
    from its run directory."""
    import submitit
    from hydra.utils import instantiate

    import core.config  # noqa: F401  (registers the slurm schema)

    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("train", ["profile=paper", "hydra/launcher=slurm"], return_hydra_config=True)
    assert cfg.hydra.launcher.max_num_timeout >= 1
    seen = {}

    class Stop(Exception):
        pass

    def fake_executor(**kwargs):
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(submitit, "AutoExecutor", fake_executor)
    launcher = instantiate(OmegaConf.create(OmegaConf.to_container(cfg.hydra.launcher, resolve=True)))
    launcher.config = cfg
    with pytest.raises(Stop):
        launcher.launch([["seed=0"]], 0)
    assert seen["cluster"] == "slurm" and seen["slurm_max_num_timeout"] == cfg.hydra.launcher.max_num_timeout
    resubmission = launcher.checkpoint(["seed=0"], "hydra.sweep.dir", 0, "job", {})
    assert resubmission.function is launcher and resubmission.args[0] == ["seed=0"]
