"""figures: the paper-table markers (docs/experiments.md §8.1) and `python -m figures` on generated result dirs."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from conftest import run_module
from figures.render import median_run, paper_table


def rows_for(task="cifar10", metric="accuracy", mode="max"):
    rng = np.random.default_rng(0)
    rows = []
    for schedule, centre in [("arc", 0.93), ("constant", 0.90), ("cd", 0.9301)]:
        for lr0 in (0.01, 0.001):
            for seed in range(5):
                rows.append(dict(task=task, schedule=schedule, lr0=lr0, seed=seed, metric=metric, metric_mode=mode,
                                 best_metric=centre + 0.001 * rng.standard_normal()))
    for seed in range(5):  # an LR-free method: one set of runs repeated across columns
        rows.append(dict(task=task, schedule="sls", lr0=None, seed=seed, metric=metric, metric_mode=mode,
                         best_metric=0.5 + 0.001 * seed))
    return pd.DataFrame(rows)


def test_paper_table_formats_and_marks_best_and_significance():
    rows = rows_for()
    table = paper_table(rows, "cifar10")
    assert list(table.columns) == ["0.01", "0.001"] and table.index[0] == "arc"
    arc_median = rows[(rows.schedule == "arc") & (rows.lr0 == 0.01)].best_metric.median()
    assert table.at["arc", "0.01"].startswith(f"{arc_median * 100:.2f}")  # accuracy printed x100, 2 decimals
    assert table.at["constant", "0.01"].endswith("#")  # 0.90 vs 0.93: significant
    assert not table.at["cd", "0.01"].endswith("#")  # 0.9301 vs 0.93 with sd 0.001: not significant
    assert sum(cell.count("*") for cell in table["0.01"]) == 1
    strip = lambda cell: cell.rstrip("*#")
    assert strip(table.at["sls", "0.01"]) == strip(table.at["sls", "0.001"]) == "50.20"  # LR-free: every column


def test_perplexity_best_is_the_minimum():
    rows = rows_for(task="ptb", metric="perplexity", mode="min")
    table = paper_table(rows, "ptb")
    assert "*" in table.at["sls", "0.01"] and table.at["sls", "0.01"].startswith("0.5")


def test_median_run_picks_the_middle_run():
    group = pd.DataFrame({"seed": [0, 1, 2, 3, 4], "best_metric": [5.0, 1.0, 3.0, 4.0, 2.0]})
    assert median_run(group, "max").seed == 2 and median_run(group, "min").seed == 2


def test_figures_stage_renders_tables_and_curves(tmp_path, monkeypatch, name_every_run):
    from hydra import compose, initialize

    from figures.__main__ import render

    root = tmp_path / "artifacts" / "smoke" / "benchmark" / "benchmark" / "cifar10"  # <study>/<task>/<run>
    for i, row in rows_for().iterrows():
        out = root / f"run{i}"
        out.mkdir(parents=True)
        row = {k: (None if pd.isna(v) else v) for k, v in row.to_dict().items()}
        (out / "DONE").write_text(json.dumps({**row, "frequency": 3, "best_epoch": 2, "final_metric": 0.5,
                                              "diverged": False, "epochs": 3, "wall_seconds": 1.0}))
        pd.DataFrame({"epoch": [1, 2, 3], "eval_metric": [0.1, row["best_metric"], 0.4]}).to_parquet(out / "epochs.parquet")
    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    with initialize(version_base="1.3", config_path="../configs"):
        render(compose("figures", ["profile=smoke"]))  # hand-made runs: name_every_run
    out = tmp_path / "artifacts" / "smoke" / "figures" / "benchmark"
    assert "| arc |" in (out / "tables.md").read_text()
    assert (out / "curves_cifar10.png").stat().st_size > 10_000
    empty = run_module("figures", "profile=mini", cwd=tmp_path)
    assert empty.returncode == 2 and "make benchmark" in empty.stderr
