"""The experiments stage end to end on the smoke profile (subprocess, artifacts in a tmp dir), plus the
pure pieces: SC's LR0 choice (App. A.3), LRmax pick of the range test and the median table; TF's momentum form for
the SGD tasks, SC's LRmax (the authors' or the range test's), a damaged range test, a killed joblib worker and two
concurrent grids on the same artifacts."""
from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra import compose, initialize

from conftest import children, cmdline, compose_cfg, compose_stage, finish, one_line, run_module, start, wait_for
from core.errors import ConfigError, CorruptArtifact, DataError
from core.felog import parse_log
from core.history import RunHistory
from core.results import median_table, study_rows
from core.schedules import SuperConvergence, sc_lr0
from core.training import Run
import experiments.benchmark as benchmark
import experiments.range_test as range_test
from experiments.benchmark import benchmark_one
from experiments.range_test import pick_lr_max


def benchmark_cfg(*overrides: str):
    with initialize(version_base="1.3", config_path="../configs"):
        return compose("benchmark", overrides=["profile=smoke", *overrides])


def test_sc_lr0_reproduces_the_papers_choices():
    assert sc_lr0(0.198, 19.8, [1e-2, 1e-3, 1e-4]) == 1e-2
    assert sc_lr0(0.01, 10.0, [1e-2, 5e-3, 1e-3]) == 1e-3  # f = 1 and 2 fall outside [5, 40]
    assert sc_lr0(23.2, 23.2, [1.0, 0.1, 0.01]) == 1.0
    assert sc_lr0(50.0, 23.2, [1.0, 0.1, 0.01]) == pytest.approx(50.0 / 23.2)  # no grid value fits: LRmax / f
    assert SuperConvergence(0.198, 13, 19.8).own_lr0([1e-2, 1e-3, 1e-4]) == 1e-2  # SC's own LR0 is sc_lr0


@pytest.mark.parametrize("overrides, error, message", [(["schedule=cd"], ConfigError, "needs lr0"),
                                                       (["schedule=cd", "lr0=0"], ConfigError, "lr0 must be > 0"),
                                                       (["schedule=sc"], DataError, "no LR range test result")])
def test_bad_grid_points_fail_before_any_work(tmp_path, monkeypatch, overrides, error, message):
    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    cfg = benchmark_cfg(*overrides)
    with pytest.raises(error, match=message):
        benchmark_one(cfg)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("schedule", ["sls", "prodigy"])
def test_lr_free_method_outside_its_column_skips_and_writes_nothing(tmp_path, monkeypatch, capsys, schedule):
    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    cfg = benchmark_cfg(f"schedule={schedule}", "lr0=0.001")  # cifar10's columns: 0.01 (its own), 0.001, 0.0001
    assert benchmark_one(cfg) is None
    assert capsys.readouterr().out.startswith("skip: ")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("how", [["~bench_schedule"], ["schedule.cycle_length=???"]])
def test_schedule_setting_missing_for_a_task_names_the_file_to_add(tmp_path, monkeypatch, how):
    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    cfg = benchmark_cfg("bench_task=ptb", "schedule=ccd", "lr0=0.1", *how)
    with pytest.raises(ConfigError, match="configs/bench_schedule/ptb_ccd.yaml"):
        benchmark_one(cfg)
    assert not any(tmp_path.iterdir())


def test_range_test_lr_max_is_the_lr_at_the_best_eval():
    h = RunHistory(epoch_lr=[0.1, 0.2, 0.3, 0.4], eval_loss=[2.0, 1.5, 1.7, math.inf], eval_metric=[0.1, 0.3, 0.5, math.nan])
    assert pick_lr_max(h, "metric", "max") == (0.3, 3, 0.5)
    assert pick_lr_max(h, "loss", "max") == (0.2, 2, 1.5)


def test_median_table_repeats_lr_free_methods():
    rows = pd.DataFrame([{"task": "t", "schedule": s, "lr0": lr, "seed": i, "best_metric": v}
                         for s, lr, vals in [("cd", 0.1, [1, 2, 9]), ("cd", 0.01, [3, 4, 5]), ("sls", None, [7, 8, 6])]
                         for i, v in enumerate(vals)])
    table = median_table(rows, "t")
    assert list(table.columns) == [0.1, 0.01]
    assert table.loc["cd"].tolist() == [2, 4] and table.loc["sls"].tolist() == [7, 7]


@pytest.mark.slow
def test_smoke_grid_rows_logs_rerun_and_errors(tmp_path):
    common = ["profile=smoke", "bench_task=ptb"]
    assert run_module("experiments.range_test", *common, cwd=tmp_path).returncode == 0
    first = run_module("experiments.benchmark", "-m", *common, "schedule=constant,greedy", "lr0=1.0",
                       "seed=0,1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    # methods picking their own LR0, swept over the task's LR0s as a study does: one job each trains
    own = run_module("experiments.benchmark", "-m", *common, "schedule=sc,sls", "lr0=1.0,0.1,0.01", cwd=tmp_path)
    assert own.returncode == 0, own.stderr[-2000:]
    assert own.stdout.count("skip: ") == 4
    rows = study_rows(tmp_path / "artifacts" / "smoke" / "benchmark")
    assert len(rows) == 6 and set(rows.schedule) == {"constant", "greedy", "sc", "sls"}
    assert rows.lr0.isna().sum() == 1 and (rows.epochs == 4).all() and (rows.wall_seconds > 0).all()
    run_dir = next((tmp_path / "artifacts/smoke/benchmark/benchmark/ptb").glob("greedy-lr1-s0-*"))
    assert run_dir in {Path(d) for d in rows.run_dir}
    log = parse_log(run_dir / "log.txt")
    assert sorted(log["eval"]["perplexity"]) == [2, 4, 6, 8]  # one Eval line per epoch, at its global step
    assert "multiplying lr by" in (run_dir / "log.txt").read_text()
    assert len(pd.read_parquet(run_dir / "epochs.parquet")) == 4

    before = json.loads((run_dir / "DONE").read_text())
    (run_dir / "DONE").unlink()  # an unfinished run is redone, finished ones are skipped
    again = run_module("experiments.benchmark", "-m", *common, "schedule=constant,greedy", "lr0=1.0",
                       "seed=0,1", cwd=tmp_path)
    assert again.stdout.count("done already") == 3
    # the sweeper names each job's run before launching (hydra.sweeper.finished): only the unfinished one starts
    assert "Launching 1 jobs locally" in again.stdout + again.stderr
    after = json.loads((run_dir / "DONE").read_text())
    assert after["best_metric"] == before["best_metric"]
    done = run_module("experiments.benchmark", "-m", *common, "schedule=sc,sls", "lr0=1.0,0.1,0.01", cwd=tmp_path)
    assert done.returncode == 0 and "Launching" not in done.stdout + done.stderr  # all done or skipped: no job
    assert done.stdout.count("skip: ") == 4 and done.stdout.count("done already") == 2

    table = run_module("experiments.table", "profile=smoke", cwd=tmp_path)
    assert table.returncode == 0 and "sls" in table.stdout
    assert (tmp_path / "artifacts/smoke/benchmark/benchmark/table_ptb.csv").is_file()

    bad = run_module("experiments.benchmark", *common, "schedule=cd", "lr0=-1", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: lr0")


@pytest.mark.slow
def test_smoke_arc_run_acts_at_epoch_4(tmp_path, arc_weights):
    result = run_module("experiments.benchmark", "profile=smoke", "bench_task=cifar10", "schedule=arc",
                        "lr0=0.01", f"paths.selected_arc={arc_weights}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    log = next((tmp_path / "artifacts/smoke/benchmark/benchmark/cifar10").glob("arc-*/log.txt")).read_text()
    assert log.count("multiplying lr by") == 1  # 4 epochs, frequency 3: one call, at epoch 4
    missing = run_module("experiments.benchmark", "profile=smoke", "schedule=arc", "lr0=0.01",
                         f"schedule.weights={tmp_path / 'none.h5'}", cwd=tmp_path)
    assert missing.returncode == 2 and "ARC weights not found" in missing.stderr
    default = run_module("experiments.benchmark", "profile=smoke", "schedule=arc", "lr0=0.01", cwd=tmp_path)
    assert default.returncode == 2 and "artifacts/smoke/selection/arc.h5" in default.stderr  # ${paths.selected_arc}


def test_run_identity_does_not_depend_on_where_the_artifacts_lie():
    from omegaconf import OmegaConf

    from core.artifacts import config_digest, location_free

    here, there = (benchmark_cfg("schedule=arc", "lr0=0.01", f"paths.root={root}") for root in ("/a", "/b"))
    assert there.bench_task.sizes.paper.build.root_dir == "/b/data"  # a path inside the task's config...
    assert config_digest(location_free(here)) == config_digest(location_free(there))  # ...that does not name the run
    assert location_free(here)["bench_task"]["sizes"]["paper"]["build"]["root_dir"] == "<paths.data>"
    assert config_digest(location_free(benchmark_cfg("schedule=arc", "lr0=0.001", "paths.root=/a"))) != \
        config_digest(location_free(here))
    # the paths are masked in place and put back: the config reads as before, its interpolations intact
    assert here.paths.data == "/a/data" and here.bench_task.sizes.paper.build.root_dir == "/a/data"
    assert OmegaConf.to_container(here.paths)["data"] == "${paths.root}/data"


# ---- SGD momentum in TensorFlow's form for the SGD tasks ----

def captured_run(monkeypatch, module, fn, cfg) -> Run:
    """Build the stage's Run as it would (stage function up to train_into), without training."""
    monkeypatch.setattr(module, "train_into", lambda out, cfg, make_run, *args, **kwargs: make_run())
    return fn(cfg)


@pytest.mark.parametrize("task, form", [("mscoco", "tf"), ("ptb", "tf"), ("cifar10", "torch")])
def test_benchmark_and_range_test_use_the_tasks_momentum_form(tmp_path, monkeypatch, task, form):
    """docs/experiments.md §7.2/§7.3: the SGD benchmark tasks (TF code) default to TF momentum; CIFAR10 (Adam) keeps
    the default. The benchmark and the range test pass bench_task.momentum_form to core.optim."""
    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    cfg = compose_cfg("benchmark", "profile=smoke", f"bench_task={task}", "schedule=ed", "lr0=0.01")
    assert cfg.bench_task.momentum_form == form
    if task == "cifar10":
        return
    run = captured_run(monkeypatch, benchmark, benchmark.benchmark_one, cfg)
    assert type(run.optimizer).__name__ == "TFMomentumSGD"
    cfg = compose_cfg("range_test", "profile=smoke", f"bench_task={task}")
    run = captured_run(monkeypatch, range_test, range_test.range_test, cfg)
    assert type(run.optimizer).__name__ == "TFMomentumSGD"
    torch_cfg = compose_cfg("range_test", "profile=smoke", f"bench_task={task}", "bench_task.momentum_form=torch")
    assert isinstance(captured_run(monkeypatch, range_test, range_test.range_test, torch_cfg).optimizer,
                      torch.optim.SGD)


# ---- SC: the authors' LRmax by default in paper, this project's range test on request ----

@pytest.mark.parametrize("profile, choice", [("paper", "authors"), ("mini", "from_range_test"),
                                             ("smoke", "from_range_test")])
def test_sc_lr_max_default_per_profile(profile, choice):
    """docs/experiments.md §7.4 (SC's LRmax 0.198 / 0.01 / 23.2 from the authors' range tests): the schedule holds the
    authors' value on every profile; `sc_lr_max` says whether it is used or this project's range test."""
    cfg = compose_cfg("benchmark", f"profile={profile}", "bench_task=ptb", "schedule=sc")
    assert cfg.sc_lr_max == choice and cfg.schedule.lr_max == 23.2


def test_sc_uses_the_authors_lr_max_without_a_range_test(tmp_path, monkeypatch):
    """docs/experiments.md §7.4: `sc_lr_max=authors` runs SC at LRmax 23.2 (PTB), no range test needed."""
    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    cfg = compose_cfg("benchmark", "profile=smoke", "bench_task=ptb", "schedule=sc", "sc_lr_max=authors")
    run = captured_run(monkeypatch, benchmark, benchmark.benchmark_one, cfg)
    assert run.schedule.lr_max == 23.2 and run.lr0 == pytest.approx(1.0)  # LR0 = 23.2 / f, f = 23.2


def test_sc_from_range_test_in_paper_needs_the_range_test(tmp_path, monkeypatch):
    """docs/experiments.md §7.4 "LR range test": `sc_lr_max=from_range_test` reads this project's range test."""
    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    (tmp_path / "data").mkdir()
    cfg = compose_cfg("benchmark", "profile=paper", "profile.device=cpu", "bench_task=ptb", "schedule=sc",
                      "sc_lr_max=from_range_test")
    with pytest.raises(DataError, match="no LR range test result"):
        benchmark.benchmark_one(cfg)
    bad = compose_cfg("benchmark", "profile=smoke", "bench_task=ptb", "schedule=sc", "sc_lr_max=mine")
    with pytest.raises(ConfigError, match="sc_lr_max"):
        benchmark.benchmark_one(bad)


# ---- damaged inputs, killed workers, concurrent grids ----

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


GRID = ["-m", "profile=smoke", "bench_task=ptb", "schedule=constant", "lr0=1.0", "seed=0,1,2,3",
        "hydra/launcher=local", "bench_task.epochs=30", "bench_task.sizes.smoke.build.max_train_chunks=1024"]


@pytest.mark.slow
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


@pytest.mark.slow
def test_two_concurrent_grids_on_the_same_artifacts_lock_per_run_and_agree(tmp_path):
    grid = ["-m", "profile=smoke", "bench_task=ptb", "schedule=constant,greedy", "lr0=1.0", "seed=0,1",
            "bench_task.epochs=8", "bench_task.sizes.smoke.build.max_train_chunks=1024"]
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
