"""Tables come from exactly the runs the current config names (core.bench_run.named_runs, docs/experiments.md §8):
the A, B, A sequence of ARC models (the sweep expansion the benchmark, the planner and the figures share: in
tests/test_core_sweep.py). The runs here are trained by experiments.benchmark.benchmark_one, the benchmark's own job
function (the one the Hydra multirun calls per job), on the smoke profile: no fake run directories."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize

from core.bench_run import named_runs, reader_overrides
from core.results import study_rows

ARC_JOB = ["experiment=table2_cifar10", "schedule=arc", "lr0=0.01", "seed=0"]


def _arc_model(path: Path, seed: int) -> str:
    import torch

    from arc_model.network import ARCNet
    from arc_model.weights import save_keras_h5

    torch.manual_seed(seed)
    return str(save_keras_h5(ARCNet(), path))


@pytest.mark.slow
def test_select_a_then_b_then_a_tables_show_a(tmp_path, monkeypatch, capsys):
    from experiments.benchmark import benchmark_one
    from experiments.table import write_tables

    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    models = {"A": _arc_model(tmp_path / "A.h5", 0), "B": _arc_model(tmp_path / "B.h5", 1)}
    study = tmp_path / "artifacts" / "smoke" / "benchmark" / "benchmark" / "cifar10"
    written = {}
    for model in ("A", "B", "A"):  # make select (A), benchmark; select B, benchmark; back to A, benchmark
        with initialize(version_base="1.3", config_path="../configs"):
            cfg = compose("benchmark", ["profile=smoke", f"paths.selected_arc={models[model]}", *ARC_JOB])
        before = set(study.glob("arc-*"))
        benchmark_one(cfg)
        new = set(study.glob("arc-*")) - before
        written.setdefault(model, new.pop() if new else None)
    assert len(list(study.glob("arc-*"))) == 2  # A's second benchmark found its run done and wrote nothing
    assert (written["A"] / "DONE").stat().st_mtime_ns < (written["B"] / "DONE").stat().st_mtime_ns

    assert named_runs("benchmark", reader_overrides(cfg) + ARC_JOB).runs == [written["A"]]  # the benchmark's name
    capsys.readouterr()
    write_tables(cfg, ARC_JOB[1:] + ["experiment=table2_cifar10"])
    out = capsys.readouterr().out
    results = pd.read_csv(tmp_path / "artifacts" / "smoke" / "benchmark" / "benchmark" / "results.csv")
    assert results.run.tolist() == [written["A"].name]  # today's file-time choice (latest_runs) gave B's run
    assert "1 runs on disk not named by the config, ignored" in out
    unnamed = study_rows(tmp_path / "artifacts" / "smoke" / "benchmark")  # nothing names the runs: file times
    assert [Path(d) for d in unnamed.run_dir] == [written["B"]]  # ... pick B's, the choice the tables made before
