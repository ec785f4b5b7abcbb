"""Issue 13: nothing read from disk executes code, killed workers, corrupted artifacts, concurrent runs.

Crafted pickles carry a `__reduce__` that would create a marker file when unpickled: every loader must refuse
them in one line naming the file, and the marker must never appear.
"""
from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize
from omegaconf import OmegaConf

from conftest import REPO, run_module, children
from core.artifacts import read_done
from core.errors import CheckpointError, CorruptArtifact, DataError, UserError
from core.felog import parse_log
from core.runs import finished_runs, train_into
from core.tasks.digits import DigitsCNN
from core.training import Run, load_checkpoint


class Payload:
    """Unpickling this creates `marker` (a stand-in for any code a tampered file could run)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def one_line(message: str, *names: str) -> None:
    assert "\n" not in message and "Traceback" not in message, message
    for name in names:
        assert name in message, (name, message)


def compose_stage(config: str, *overrides: str):
    with initialize(version_base="1.3", config_path="../configs"):
        return compose(config, overrides=["profile=smoke", *overrides])


# ---- 1. nothing read from disk executes code ------------------------------------------------------------------

def crafted(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """(file, marker): a crafted file of `kind` whose loading would create `marker`."""
    marker = tmp_path / "pwned"
    if kind == "torch":  # torch.save's zip format, with the payload where a checkpoint holds its model
        path = tmp_path / "checkpoint.pt"
        torch.save({"model": Payload(marker), "optimizer": {}, "history": {}, "rng": {}, "trainer": {},
                    "log_offset": None, "point": 0, "rows": [], "ended": False}, path)
    elif kind == "raw":  # a bare pickle under a checkpoint's name
        path = tmp_path / "checkpoint.pt"
        path.write_bytes(pickle.dumps({"model": Payload(marker)}))
    else:  # the authors' offline_data.pkl layout
        path = tmp_path / "offline_data.pkl"
        path.write_bytes(pickle.dumps({"train_loss": [Payload(marker)], "val_loss": [[1.0]], "train_lr": [[0.1]],
                                       "label": [0]}))
    return path, marker


def load_run_checkpoint(path):
    return load_checkpoint(path)


def restore_run(path):
    return Run(DigitsCNN(n_train=64), "adam", 1e-3, seed=0).restore(path)


def restore_candidate(path):
    from arc_model.candidate_trainer import CandidateTrainer

    x = np.zeros((4, 300, 3), np.float32)
    CandidateTrainer(x, np.zeros(4, np.int64), np.arange(4), np.arange(0), seed=0).restore(path)


def read_datagen_progress(path):
    from datagen.procedure import read_progress

    return read_progress(path)


def read_offline(path):
    from core.offline_pickle import read_offline_pickle

    return read_offline_pickle(path)


def arc_points(path):
    from arc_model.data import load_points

    return load_points(path)


@pytest.mark.parametrize("kind", ["torch", "raw"])
@pytest.mark.parametrize("loader", [load_run_checkpoint, restore_run, restore_candidate, read_datagen_progress])
def test_checkpoint_loaders_refuse_a_crafted_pickle(tmp_path, loader, kind):
    path, marker = crafted(tmp_path, kind)
    with pytest.raises(CheckpointError) as info:
        loader(path)
    one_line(str(info.value), str(path))
    assert not marker.exists()


@pytest.mark.parametrize("loader", [read_offline, arc_points])
def test_the_authors_pickle_needs_the_opt_in(tmp_path, loader):
    path, marker = crafted(tmp_path, "offline")
    with pytest.raises(UserError) as info:
        loader(path)
    one_line(str(info.value), str(path), "trust")
    assert not marker.exists()


def test_pickle_io_import_refuses_without_trust_pickle(tmp_path):
    path, marker = crafted(tmp_path, "offline")
    result = run_module("datagen.pickle_io", "import", str(path), str(tmp_path / "out.parquet"), cwd=tmp_path)
    assert result.returncode == 2 and not marker.exists() and not (tmp_path / "out.parquet").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--trust-pickle" in lines[0]


def test_cifar10_batches_are_read_without_running_code(tmp_path, monkeypatch):
    from core.inputs import required
    from experiments.tasks.images import load_cifar10

    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:  # the real files' layout (10k each)
        batch = {b"batch_label": b"b", b"labels": rng.integers(0, 10, 10000).tolist(),
                 b"data": rng.integers(0, 256, (10000, 3072), dtype=np.uint8), b"filenames": [b"f.png"] * 10000}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    monkeypatch.setattr("core.inputs.missing", lambda items: [])  # sizes differ from the registry's
    train, evaluation = load_cifar10(required("cifar10", str(tmp_path)))
    assert train["x"].shape == (50000, 32, 32, 3) and train["x"].dtype == np.uint8 and evaluation["y"].shape == (10000,)
    first = pickle.loads((folder / "data_batch_1").read_bytes(), encoding="bytes")
    assert np.array_equal(train["x"][0], first[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0))
    marker = tmp_path / "pwned"
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Payload(marker), b"labels": []}, protocol=2))
    with pytest.raises(DataError) as info:
        load_cifar10(required("cifar10", str(tmp_path)))
    one_line(str(info.value), "data_batch_3", "refused")
    assert not marker.exists()


def test_checkpoints_hold_plain_values_and_restore_numpy_rng_exactly(tmp_path):
    run = Run(DigitsCNN(n_train=64), "adam", 1e-3, seed=0, max_steps_per_epoch=2)
    run.train(1)
    np.random.seed(5)
    np.random.random(3)
    expected = np.random.random(4)
    np.random.seed(5)
    np.random.random(3)
    run.save(tmp_path / "ck.pt")
    state = torch.load(tmp_path / "ck.pt", weights_only=True)  # plain: no numpy object inside
    assert isinstance(state["rng"]["numpy"]["key"], list)
    np.random.seed(99)
    Run(DigitsCNN(n_train=64), "adam", 1e-3, seed=1).restore(tmp_path / "ck.pt")
    assert np.array_equal(np.random.random(4), expected)


# ---- 3. corrupted artifacts: a run's own files are redone, an earlier stage's are refused ------------------------

def digits_run(out: Path, epochs: int = 2, keep_checkpoint: bool = False) -> dict:
    cfg = OmegaConf.create({"task": "digits"})
    return train_into(out, cfg, lambda: Run(DigitsCNN(n_train=96), "adam", 1e-3, seed=3, max_steps_per_epoch=3),
                      epochs, keep_checkpoint=keep_checkpoint)


def result(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "wall_seconds"}


@pytest.mark.parametrize("damage, named", [
    ("garbage checkpoint", "checkpoint.pt"), ("crafted checkpoint", "checkpoint.pt"),
    ("garbage DONE", "DONE"), ("truncated DONE", "DONE"), ("truncated epochs.parquet", "epochs.parquet"),
    ("missing steps.parquet", "steps.parquet")])
def test_a_runs_own_damaged_files_are_named_and_the_run_redone(tmp_path, capsys, damage, named):
    reference = digits_run(tmp_path / "reference")
    out = tmp_path / "run"
    marker = tmp_path / "pwned"
    if "checkpoint" in damage:  # a kill left a checkpoint, then the file was damaged
        digits_run(out, epochs=1, keep_checkpoint=True)
        (out / "DONE").unlink()
        if damage.startswith("garbage"):
            (out / "checkpoint.pt").write_bytes(b"\x00garbage" * 10)
        else:
            torch.save({"model": Payload(marker)}, out / "checkpoint.pt")
    else:
        digits_run(out)
        target = out / damage.split()[-1]
        if damage.startswith("garbage"):
            target.write_text("not json {")
        elif damage.startswith("truncated"):
            target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
        else:
            target.unlink()
    capsys.readouterr()
    row = digits_run(out)
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and named in warning[0] and str(out) in warning[0], warning
    assert result(row) == result(reference) and result(read_done(out)) == result(reference)
    assert not marker.exists()
    if "checkpoint" in damage:
        epochs = pd.read_parquet(out / "epochs.parquet")
        pd.testing.assert_frame_equal(epochs.drop(columns="seconds"),
                                      pd.read_parquet(tmp_path / "reference" / "epochs.parquet").drop(columns="seconds"))


def test_readers_of_an_earlier_stage_refuse_damaged_runs(tmp_path):
    from core.results import study_rows

    study = tmp_path / "benchmark" / "benchmark"
    good = study / "ptb" / "constant-lr1-s0-aaaa"
    digits_run(good)
    (study / "ptb" / "constant-lr1-s1-bbbb").mkdir()
    (study / "ptb" / "constant-lr1-s1-bbbb" / "DONE").write_text('{"task": "pt')  # truncated DONE
    with pytest.raises(CorruptArtifact) as info:
        finished_runs(study, "*/*")
    one_line(str(info.value), "constant-lr1-s1-bbbb/DONE", "rerun")
    (study / "ptb" / "constant-lr1-s1-bbbb" / "DONE").write_text(json.dumps(read_done(good)))  # a row ...
    with pytest.raises(CorruptArtifact) as info:  # ... without its run's files
        study_rows(tmp_path / "benchmark")
    one_line(str(info.value), "constant-lr1-s1-bbbb", "epochs.parquet")


def test_a_damaged_range_test_is_refused_by_the_benchmark(tmp_path, monkeypatch):
    from experiments.benchmark import benchmark_one

    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    done = tmp_path / "artifacts" / "smoke" / "benchmark" / "range_test" / "ptb" / "DONE"
    done.parent.mkdir(parents=True)
    done.write_bytes(b"\xff\xfe garbage")
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(CorruptArtifact) as info:
        benchmark_one(compose_stage("benchmark", "bench_task=ptb", "schedule=sc", "lr0=1.0"))
    one_line(str(info.value), str(done), "make range-test")
    assert sorted(tmp_path.rglob("*")) == before


class InlinePool:
    """BranchPool's interface, running each job in this process; `stop_after` jobs, then a simulated kill."""

    def __init__(self, stop_after: int | None = None):
        self.stop_after, self.jobs = stop_after, 0

    def run_all(self, jobs, label=""):
        from datagen.branches import run_job

        results = []
        for job in jobs:
            if self.stop_after is not None and self.jobs >= self.stop_after:
                raise KeyboardInterrupt("killed")
            self.jobs += 1
            results.append(run_job(job))
        return results


def datagen_spec(points: int = 2):
    from datagen.generate import lr_range, task_node
    from datagen.procedure import RunSpec, draw_run

    cfg = compose_stage("datagen", "datagen_task=svhn_vgg19bn")
    node = task_node(cfg)
    plan = draw_run(cfg.datagen_task.name, cfg.datagen_task.number, 0, cfg.seed, list(cfg.optimizers),
                    lr_range(cfg), (cfg.frequency_min, cfg.frequency_max))
    return RunSpec(plan, json.dumps(node, sort_keys=True), points, cfg.sgd_momentum,
                   cfg.datagen_task.size.max_steps_per_epoch, "cpu")


@pytest.mark.parametrize("damage", ["progress.pt", "C-1.pt"])
def test_damaged_datagen_progress_or_checkpoint_restarts_the_run(tmp_path, capsys, damage):
    from datagen.procedure import generate_run

    spec = datagen_spec()
    straight = pd.read_parquet(generate_run(spec, tmp_path / "a" / "run-000.parquet", InlinePool(), log=lambda m: None))
    out = tmp_path / "b" / "run-000.parquet"
    with pytest.raises(KeyboardInterrupt):  # killed after point 0: progress.pt and C-1.pt are on disk
        generate_run(spec, out, InlinePool(stop_after=5), log=lambda m: None)
    work = out.with_suffix(".work")
    assert (work / "progress.pt").is_file() and (work / "C-1.pt").is_file()
    (work / damage).write_bytes((work / damage).read_bytes()[:100])  # truncated
    capsys.readouterr()
    resumed = pd.read_parquet(generate_run(spec, out, InlinePool(), log=lambda m: None))
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and damage in warning[0] and "restarting the run" in warning[0], warning
    pd.testing.assert_frame_equal(resumed, straight)
    assert not work.exists()


def test_a_damaged_datagen_run_file_is_generated_again(tmp_path, capsys):
    from datagen.generate import finished_run

    good = tmp_path / "run-000.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(good)
    bad = tmp_path / "run-001.parquet"
    bad.write_bytes(good.read_bytes()[:-20])
    assert finished_run(good) and not finished_run(bad) and not finished_run(tmp_path / "run-002.parquet")
    assert not bad.exists() and "run-001.parquet" in capsys.readouterr().err


def test_candidate_weights_damaged_are_redone_by_train_arc_and_refused_by_selection(tmp_path, monkeypatch, capsys):
    from arc_model.stage import train_candidate
    from arc_model.weights import load_keras_h5
    from selection.select import finished_candidates

    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    cfg = compose_stage("train_arc", "data.synthetic_points=64", "sizes.smoke.epochs=1")
    out = train_candidate(cfg)
    reference = {k: v for k, v in read_done(out).items() if k != "seconds"}
    (out / "arc.h5").write_bytes((out / "arc.h5").read_bytes()[:500])  # truncated
    with pytest.raises(CorruptArtifact) as info:  # the next stage refuses it, naming the file
        finished_candidates(out.parent)
    one_line(str(info.value), str(out / "arc.h5"), "make train_arc")
    capsys.readouterr()
    assert train_candidate(cfg) == out  # train_arc itself trains the candidate again
    assert "arc.h5" in capsys.readouterr().err
    load_keras_h5(out / "arc.h5")
    assert {k: v for k, v in read_done(out).items() if k != "seconds"} == reference


# ---- 2. workers that die ------------------------------------------------------------------------------------

def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for(condition, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start(module: str, root: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": "0", "ARC_REPRO_ROOT": str(root)}
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float) -> tuple[int | None, str, str]:
    """(exit status, stdout, stderr); status None when it ran past `timeout` (then it is killed)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err
    return proc.returncode, out, err


@pytest.mark.parametrize("victim", [0, 1])
def test_a_dead_pool_worker_is_an_error_naming_the_run_and_closing_never_hangs(victim):
    from core.errors import WorkerLost
    from datagen.branches import BranchPool

    pool = BranchPool(workers=2)
    try:
        pool.pool.starmap_async(time.sleep, [(0.5,)] * 2, chunksize=1).get(120)  # both workers up
        busy = pool.pool.apply_async(time.sleep, (30,))
        time.sleep(0.5)  # one worker runs it; the other waits for a task, holding the task queue's lock
        os.kill(pool.processes[victim].pid, signal.SIGKILL)  # the busy one, or the idle one
        killed_at = time.time()
        with pytest.raises(WorkerLost) as info:
            pool.wait([busy], "svhn_vgg19bn-r007 point 3")
        assert time.time() - killed_at < 5
        one_line(str(info.value), "svhn_vgg19bn-r007 point 3", "killed by SIGKILL")
    finally:
        closing = time.time()
        pool.close()
        assert time.time() - closing < 15


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


GRID = ["-m", "profile=smoke", "bench_task=ptb", "schedule=constant", "lr0=1.0", "seed=0,1,2,3",
        "hydra/launcher=local", "bench_task.sizes.smoke.epochs=30", "bench_task.sizes.smoke.build.max_train_chunks=1024"]


def test_a_killed_joblib_worker_fails_the_benchmark_grid_naming_its_runs_and_a_rerun_resumes(tmp_path):
    proc = start("experiments.benchmark", tmp_path, *GRID)
    runs = tmp_path / "artifacts" / "smoke" / "benchmark" / "benchmark" / "ptb"
    wait_for(lambda: list(runs.glob("*/config.yaml")) or proc.poll() is not None, 120, "a run in flight")
    workers = wait_for(lambda: [p for p in children(proc.pid) if "popen_loky" in cmdline(p)], 20, "the joblib workers")
    assert proc.poll() is None, "the grid ended before the kill"
    os.kill(workers[0], signal.SIGKILL)
    killed_at = time.time()
    code, _, err = finish(proc, 60)
    assert time.time() - killed_at < 15 and code == 1, f"exit {code}: {err[-2000:]}"
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "a worker process died" in errors[0], err[-3000:]
    named = [d.name for d in runs.iterdir() if d.name in errors[0]]
    assert named and not any((runs / name / "DONE").exists() for name in named), errors[0]  # the runs in flight
    rerun = run_module("experiments.benchmark", *GRID, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert len(list(runs.glob("*/DONE"))) == 4


# ---- 5. concurrent runs ------------------------------------------------------------------------------------

def test_two_concurrent_grids_on_the_same_artifacts_lock_per_run_and_agree(tmp_path):
    grid = ["-m", "profile=smoke", "bench_task=ptb", "schedule=constant,greedy", "lr0=1.0", "seed=0,1",
            "bench_task.sizes.smoke.epochs=8", "bench_task.sizes.smoke.build.max_train_chunks=1024"]
    first, second = start("experiments.benchmark", tmp_path, *grid), start("experiments.benchmark", tmp_path, *grid)
    (code_a, out_a, err_a), (code_b, out_b, err_b) = finish(first, 300), finish(second, 300)
    assert code_a == 0 and code_b == 0, err_a[-2000:] + err_b[-2000:]
    assert "busy: " in out_a + out_b  # one waited for the other at least once

    def rows(out: str) -> list[dict]:
        found = (json.loads(line) for line in out.splitlines() if line.startswith("{"))
        return sorted(found, key=lambda row: json.dumps(row, sort_keys=True))

    assert len(rows(out_a)) == 4 and rows(out_a) == rows(out_b)  # both print the same rows, timings included
    runs = sorted((tmp_path / "artifacts" / "smoke" / "benchmark" / "benchmark" / "ptb").glob("*/DONE"))
    assert len(runs) == 4
    for done in runs:  # one writer per run: one Start line, one Eval line per epoch
        text = (done.parent / "log.txt").read_text()
        assert text.count("FastEstimator-Start") == 1 and len(parse_log(done.parent / "log.txt")["eval"]["perplexity"]) == 8
