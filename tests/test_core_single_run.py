"""`python -m core.single_run` end to end: outputs, skip/resume after a kill, bad input, multirun launchers."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from conftest import REPO, run_module
from core.artifacts import read_done
from core.felog import parse_log

pytestmark = pytest.mark.slow  # every test here runs `python -m core.single_run` in subprocesses


def run_dirs(root):
    return sorted((root / "artifacts" / "smoke" / "single_runs").glob("digits_cnn-*"))


def test_smoke_run_writes_its_outputs_and_a_rerun_skips(tmp_path):
    first = run_module("core.single_run", "profile=smoke", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (out,) = run_dirs(tmp_path)
    assert {p.name for p in out.iterdir()} >= {"config.yaml", "log.txt", "epochs.parquet", "steps.parquet",
                                               "checkpoint.pt", "DONE"}
    epochs = pd.read_parquet(out / "epochs.parquet")
    assert list(epochs.epoch) == [1, 2]
    assert len(pd.read_parquet(out / "steps.parquet")) == epochs.steps.sum()
    assert sorted(parse_log(out / "log.txt")["eval"]["accuracy"]) == list(epochs.epoch * epochs.steps[0])
    assert read_done(out)["epochs"] == 2
    second = run_module("core.single_run", "profile=smoke", cwd=tmp_path)
    assert second.returncode == 0 and "done already" in second.stdout


def test_killed_run_resumes_to_the_same_result(tmp_path):
    args = ["profile=smoke", "epochs=25", "task.build.n_train=1000"]
    reference = run_module("core.single_run", *args, cwd=tmp_path / "straight")
    assert reference.returncode == 0, reference.stderr

    root = tmp_path / "killed"
    env = {**__import__("os").environ, "ARC_REPRO_ROOT": str(root)}
    proc = subprocess.Popen([sys.executable, "-m", "core.single_run", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list(root.glob("artifacts/smoke/single_runs/*/checkpoint.pt")):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list(root.glob("artifacts/smoke/single_runs/*/DONE")), "run finished before the kill; make it longer"
    resumed = run_module("core.single_run", *args, cwd=root)
    assert resumed.returncode == 0, resumed.stderr
    (a,), (b,) = run_dirs(tmp_path / "straight"), run_dirs(root)
    assert a.name == b.name
    cols = ["epoch", "steps", "train_loss_mean", "eval_loss", "eval_metric", "lr"]
    pd.testing.assert_frame_equal(pd.read_parquet(a / "epochs.parquet")[cols], pd.read_parquet(b / "epochs.parquet")[cols])
    pd.testing.assert_frame_equal(pd.read_parquet(a / "steps.parquet"), pd.read_parquet(b / "steps.parquet"))
    assert parse_log(a / "log.txt")["eval"] == parse_log(b / "log.txt")["eval"]


@pytest.mark.parametrize("args, names", [
    (["profile=nope"], "profile"),
    (["task=nope"], "task"),
    (["schedule=nope"], "schedule"),
    (["optimizer.lr=0"], "optimizer.lr"),
    (["optimizer.lr=-1e-3"], "optimizer.lr"),
    (["profile=paper", "profile.device=cpu", "paths.data=/nonexistent/data"], "/nonexistent/data"),
    pytest.param(["profile.device=cuda"], "profile.device", marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="checks the error for a machine without a GPU")),
    (["init_checkpoint=__BAD__"], "bad.pt"),
])
def test_bad_input_is_one_clear_line_and_writes_nothing(tmp_path, args, names):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    args = [a.replace("__BAD__", str(bad)) for a in args]
    root = tmp_path / "root"
    root.mkdir()
    result = run_module("core.single_run", "profile=smoke", *args, cwd=root)
    assert result.returncode != 0
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and names in lines[0], result.stderr
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("launcher", ["submitit_local", "joblib"])
def test_multirun_launchers_run_every_job(tmp_path, launcher):
    result = run_module("core.single_run", "-m", "profile=smoke", f"hydra/launcher={launcher}", "seed=0,1",
                        "optimizer=adam,sgd", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    dones = list((tmp_path / "artifacts" / "smoke" / "single_runs").glob("*/DONE"))
    assert len(dones) == 4
    assert (tmp_path / "artifacts" / "smoke" / "multirun" / "train").is_dir()  # sweep dir: <config name>
