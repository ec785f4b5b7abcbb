"""The datagen and correct stages end to end on the smoke profile (subprocesses, artifacts in tmp dirs), a killed
branch worker, and a damaged run file generated again."""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from core.points import read_points
from conftest import REPO, children, cmdline, finish, run_module, start, wait_for

KILL_ARGS = ["profile=smoke", "datagen_task=svhn_vgg19bn", "runs=2", "points_per_run=3", "parallel_runs=1"]


def artifacts(root: Path) -> Path:
    return root / "artifacts" / "smoke"


def run_files(root: Path) -> pd.DataFrame:
    files = sorted((artifacts(root) / "datagen").glob("*/run-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


@pytest.mark.slow
def test_generate_correct_and_rerun(tmp_path):
    gen = run_module("datagen", "-m", "profile=smoke", "datagen_task=svhn_vgg16_ecc,imdb_lstm", cwd=tmp_path)
    assert gen.returncode == 0, gen.stderr[-2000:]
    fixed = run_module("datagen.correct", "profile=smoke", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    points = read_points(artifacts(tmp_path) / "dataset" / "dataset.parquet")
    assert sorted(points.task.unique()) == ["imdb_lstm", "svhn_vgg16_ecc"] and len(points) == 6
    assert (points.frequency == 1).all() and "n" not in points.columns  # smoke: frequency_min = max = 1
    assert points.chosen.tolist().count(-1) == 2  # one last point per run, kept by default
    assert "changed" in (artifacts(tmp_path) / "dataset" / "report.txt").read_text()
    again = run_module("datagen", "profile=smoke", "datagen_task=imdb_lstm", cwd=tmp_path)
    assert again.returncode == 0 and "1 of 1 runs done already" in again.stdout


@pytest.mark.slow
def test_killed_at_random_moments_then_rerun_gives_the_same_dataset(tmp_path):
    start = time.perf_counter()
    straight = run_module("datagen", *KILL_ARGS, cwd=tmp_path / "straight")
    duration = time.perf_counter() - start
    assert straight.returncode == 0, straight.stderr[-2000:]
    root = tmp_path / "killed"
    env = {**os.environ, "PYTHONHASHSEED": "0", "ARC_REPRO_ROOT": str(root)}
    rng = random.Random()

    def killed_after(delay: float) -> bool:
        proc = subprocess.Popen([sys.executable, "-m", "datagen", *KILL_ARGS], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=delay)
            return False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the stage and its branch workers, mid-run
            proc.wait()
            return True

    scale, kills = duration, 0
    for _ in range(4):  # the straight run may have met a busier machine: if no kill landed, again with shorter delays
        shutil.rmtree(root, ignore_errors=True)
        kills = sum(killed_after(rng.uniform(0.3, 0.9) * scale) for _ in range(2))
        if kills:
            break
        scale /= 2
    assert kills >= 1, f"the stage always finished before the kill (straight run {duration:.1f} s)"
    final = run_module("datagen", *KILL_ARGS, cwd=root)
    assert final.returncode == 0, final.stderr[-2000:]
    pd.testing.assert_frame_equal(run_files(root), run_files(tmp_path / "straight"))
    assert not list((artifacts(root) / "datagen").glob("*/*.work"))


@pytest.mark.slow
def test_bad_input_fails_in_one_line_before_writing(tmp_path):
    bad_range = run_module("datagen", "profile=smoke", "datagen_task.lr_range=[0.1,0.01]", cwd=tmp_path)
    assert bad_range.returncode == 2 and bad_range.stderr.strip().startswith("error: datagen_task.lr_range")
    bad_arg = run_module("datagen", "profile=smoke", "+datagen_task.sizes.smoke.args.depth=3", cwd=tmp_path)
    assert bad_arg.returncode == 2 and "takes no ['depth']" in bad_arg.stderr
    no_data = run_module("datagen.correct", "profile=smoke", cwd=tmp_path)
    assert no_data.returncode == 2 and "no generated runs" in no_data.stderr
    assert not (tmp_path / "artifacts").exists()


@pytest.mark.slow
def test_plan_prints_the_paper_budget(tmp_path):
    plan = run_module("datagen.plan", "profile=paper", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "plan_runs=504 plan_points=5040" in plan.stdout and "plan_gpu_hours=" in plan.stdout


def test_a_damaged_datagen_run_file_is_generated_again(tmp_path, capsys):
    from datagen.generate import finished_run

    good = tmp_path / "run-000.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(good)
    bad = tmp_path / "run-001.parquet"
    bad.write_bytes(good.read_bytes()[:-20])
    assert finished_run(good) and not finished_run(bad) and not finished_run(tmp_path / "run-002.parquet")
    assert not bad.exists() and "run-001.parquet" in capsys.readouterr().err


@pytest.mark.slow
def test_a_killed_branch_worker_fails_datagen_in_seconds_and_a_rerun_resumes(tmp_path):
    args = ["profile=smoke", "datagen_task=svhn_vgg19bn", "runs=1", "points_per_run=4", "parallel_runs=1"]
    proc = start("datagen", tmp_path, *args)
    datagen = tmp_path / "artifacts" / "smoke" / "datagen" / "svhn_vgg19bn"
    wait_for(lambda: (datagen / "run-000.work" / "progress.pt").exists() or proc.poll() is not None, 120,
             "the first point")
    workers = [p for p in children(proc.pid) if "spawn_main" in cmdline(p)]
    assert proc.poll() is None and len(workers) == 3, "the run ended before the kill"
    os.kill(random.choice(workers), signal.SIGKILL)
    killed_at = time.time()
    code, _, err = finish(proc, 60)
    assert code is not None and time.time() - killed_at < 15 and code != 0, f"exit {code}: {err[-2000:]}"
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: datagen: a branch worker died") and "killed by SIGKILL" in last, err[-2000:]
    assert "svhn_vgg19bn-r000 point" in last
    rerun = run_module("datagen", *args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "svhn_vgg19bn-r000: resuming at point" in rerun.stdout
    assert len(pd.read_parquet(datagen / "run-000.parquet")) == 4 and not (datagen / "run-000.work").exists()
