"""The datagen and correct stages end to end on the smoke profile (subprocesses, artifacts in tmp dirs)."""
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

from core.points import read_points
from conftest import REPO, run_module

KILL_ARGS = ["profile=smoke", "datagen_task=svhn_vgg19bn", "runs=2", "points_per_run=3", "parallel_runs=1"]


def artifacts(root: Path) -> Path:
    return root / "artifacts" / "smoke"


def run_files(root: Path) -> pd.DataFrame:
    files = sorted((artifacts(root) / "datagen").glob("*/run-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


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


def test_bad_input_fails_in_one_line_before_writing(tmp_path):
    bad_range = run_module("datagen", "profile=smoke", "datagen_task.lr_range=[0.1,0.01]", cwd=tmp_path)
    assert bad_range.returncode == 2 and bad_range.stderr.strip().startswith("error: datagen_task.lr_range")
    bad_arg = run_module("datagen", "profile=smoke", "+datagen_task.sizes.smoke.args.depth=3", cwd=tmp_path)
    assert bad_arg.returncode == 2 and "takes no ['depth']" in bad_arg.stderr
    no_data = run_module("datagen.correct", "profile=smoke", cwd=tmp_path)
    assert no_data.returncode == 2 and "no generated runs" in no_data.stderr
    assert not (tmp_path / "artifacts").exists()


def test_plan_prints_the_paper_budget(tmp_path):
    plan = run_module("datagen.plan", "profile=paper", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "plan_runs=504 plan_points=5040" in plan.stdout and "plan_gpu_hours=" in plan.stdout
