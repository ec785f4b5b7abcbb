"""Grid overhead: what a benchmark grid costs beyond its runs' own training.

Runs a slice of Table 2's mini grid (2 schedules x 3 LR0 x 5 seeds = 30 runs of the mini CIFAR10 stand-in) as
the user does, `python -m experiments.benchmark -m ... hydra/launcher=local` (2 joblib workers), in a scratch
artifacts root, and reports

    grid_overhead_ratio = grid wall time x workers / sum of the runs' own training time

(each run's training time is its DONE row's wall_seconds: the epochs' train + eval time). Everything else is
overhead: process and worker start-up, config composition, task building, checkpoints, logs and Parquet files.
Target <= 1.3. Both terms are measured in the same run, so machine load hits both.

Measured on 2 cores, idle: 1.343-1.371 (3 runs) with torch imported by the sweep's main process and scikit-learn
by each worker to read the digits; 1.298-1.306 (3 runs) once the main process, which only composes and launches,
stopped importing torch (experiments/benchmark.py, core/runs.py); 1.258-1.304 (6 runs, median 1.278) once the
digits are read without scikit-learn (core/tasks/digits.py). Then (stop 13, run files' timestamps) a worker's
job started 0.35-0.47 s after its previous one ended: 0.23-0.33 s of it a full gc.collect() that loky runs in a
worker after every job of more than 1 s when psutil is missing (timed in a process with the same imports), and
0.13-0.19 s Hydra's composition of the job; the command exited ~1 s after its last run, 0.7 s of it loky waiting
for its idle workers. With psutil installed (loky then checks the worker's memory instead) and the workers killed
once the sweep ends (hydra_plugins/arc_sweeper): 1.248 and 1.252 against 1.293 and 1.301 without psutil,
alternated in one session (2 runs each). What is left, per worker: torch's import (1.1 s) and torch._dynamo's
(0.6 s, at the first optimizer), Hydra's composition of each job, and ~0.1 s per run for its config, task and
files.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.results import study_rows

REPO = Path(__file__).resolve().parents[1]
WORKERS = 2  # configs/hydra/launcher/local.yaml n_jobs
GRID = ["schedule=constant,cd", "lr0=0.01,0.001,0.0001", "seed=0,1,2,3,4"]


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        env = {**os.environ, "ARC_REPRO_ROOT": root}
        command = [sys.executable, "-m", "experiments.benchmark", "-m", "experiment=table2_cifar10", "profile=mini",
                   "hydra/launcher=local", *GRID]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"error: grid failed: {done.stderr[-2000:]}")
        rows = study_rows(Path(root) / "artifacts" / "mini" / "benchmark")
    training = float(rows.wall_seconds.sum())
    print(f"grid_runs={len(rows)} grid_wall_seconds={wall:.1f} grid_training_seconds={training:.1f} "
          f"workers={WORKERS}")
    print(f"grid_overhead_ratio={wall * WORKERS / training:.3f}")


if __name__ == "__main__":
    main()
