"""The experiments stage end to end on the smoke profile (subprocess, artifacts in a tmp dir), plus the
pure pieces: SC's LR0 choice (App. A.3), LRmax pick of the range test and the median table."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize

from conftest import run_module
from core.errors import ConfigError, DataError
from core.felog import parse_log
from core.history import RunHistory
from core.results import median_table, study_rows
from core.schedules import SuperConvergence, sc_lr0
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
    after = json.loads((run_dir / "DONE").read_text())
    assert after["best_metric"] == before["best_metric"]

    table = run_module("experiments.table", "profile=smoke", cwd=tmp_path)
    assert table.returncode == 0 and "sls" in table.stdout
    assert (tmp_path / "artifacts/smoke/benchmark/benchmark/table_ptb.csv").is_file()

    bad = run_module("experiments.benchmark", *common, "schedule=cd", "lr0=-1", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: lr0")


@pytest.mark.skipif(importlib.util.find_spec("arc_model.controller") is None,
                    reason="arc_model.controller is not importable yet")
def test_smoke_arc_run_acts_at_epoch_4(tmp_path, published_arc):
    result = run_module("experiments.benchmark", "profile=smoke", "bench_task=cifar10", "schedule=arc",
                        "lr0=0.01", f"paths.selected_arc={published_arc}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    log = next((tmp_path / "artifacts/smoke/benchmark/benchmark/cifar10").glob("arc-*/log.txt")).read_text()
    assert log.count("multiplying lr by") == 1  # 4 epochs, frequency 3: one call, at epoch 4
    missing = run_module("experiments.benchmark", "profile=smoke", "schedule=arc", "lr0=0.01",
                         f"schedule.weights={tmp_path / 'none.h5'}", cwd=tmp_path)
    assert missing.returncode == 2 and "ARC weights not found" in missing.stderr
    default = run_module("experiments.benchmark", "profile=smoke", "schedule=arc", "lr0=0.01", cwd=tmp_path)
    assert default.returncode == 2 and "artifacts/smoke/selection/arc.h5" in default.stderr  # ${paths.selected_arc}


def test_run_identity_does_not_depend_on_where_the_artifacts_lie():
    from core.artifacts import config_digest, location_free

    here, there = (benchmark_cfg("schedule=arc", "lr0=0.01", f"paths.root={root}") for root in ("/a", "/b"))
    assert there.bench_task.sizes.paper.build.root_dir == "/b/data"  # a path inside the task's config...
    assert config_digest(location_free(here)) == config_digest(location_free(there))  # ...that does not name the run
    assert location_free(here)["bench_task"]["sizes"]["paper"]["build"]["root_dir"] == "<paths.data>"
    assert config_digest(location_free(benchmark_cfg("schedule=arc", "lr0=0.001", "paths.root=/a"))) != \
        config_digest(location_free(here))
