"""figures: the compact table's markers (docs/experiments.md §8.1) and `python -m figures` on generated result dirs."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import run_module
from figures.cells import CellOptions, task_cells
from figures.plots import median_run
from figures.tables import compact_markdown


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


def tiny_rows(values: dict, task: str, metric: str, mode: str) -> pd.DataFrame:
    """{(schedule, lr0): [best per seed]} -> result rows (seed = position)."""
    return pd.DataFrame([dict(task=task, schedule=s, lr0=lr0, seed=i, metric=metric, metric_mode=mode, best_metric=v)
                         for (s, lr0), bests in values.items() for i, v in enumerate(bests)])


def compact(values: dict, task: str, metric: str, mode: str) -> str:
    """The compact table of made-up runs (a task no profile names by a stand-in: its title is its name)."""
    cells = task_cells(tiny_rows(values, task, metric, mode), task, CellOptions(ci_resamples=99))[0]
    return compact_markdown(cells)


def test_compact_table_formats_and_marks_best_and_significance():
    """Medians by hand: arc 0.91 / 0.75, cd 0.93 (best of LR0 0.01), BLR 0.51 and 0.60 (one run: no t-test),
    SC's own LR0 0.0076 in the 0.01 column (nearest in log scale), SLS (LR-free) 0.42 in both columns.
    `#`: BLR, SC and SLS lie 8+ pooled standard errors below ARC (p < 0.005); cd's runs straddle ARC's (p 0.5)."""
    table = compact({("arc", 0.01): [0.90, 0.91, 0.92], ("arc", 0.001): [0.70, 0.80],
                     ("constant", 0.01): [0.50, 0.51, 0.52], ("constant", 0.001): [0.60],
                     ("cd", 0.01): [0.89, 0.93, 0.95], ("sc", 0.0076): [0.61, 0.63],
                     ("sls", None): [0.40, 0.42, 0.44]}, "toy", "accuracy", "max")
    assert table == ("### toy: median best accuracy\n\n"
                     "| schedule | LR0 0.01 | LR0 0.001 |\n"
                     "|---|---|---|\n"
                     "| arc | 91.00 | 75.00* |\n"
                     "| cd | 93.00* |  |\n"
                     "| constant | 51.00# | 60.00 |\n"
                     "| sc | 62.00# |  |\n"
                     "| sls | 42.00# | 42.00# |\n")


def test_compact_table_perplexity_best_is_the_minimum():
    """BLR's median 95.0 beats ARC's 110.0 (lower is better); t = 15 / sqrt(62.5 * 2/3) = 2.3 on 4 df, p ~ 0.08:
    no `#`. Perplexity is printed with one decimal, not x100."""
    table = compact({("arc", 1.0): [120.0, 110.0, 100.0], ("constant", 1.0): [90.0, 95.0, 100.0]},
                    "toy", "perplexity", "min")
    assert table.splitlines()[4:] == ["| arc | 110.0 |", "| constant | 95.0* |"]


def test_median_run_picks_the_middle_run():
    group = pd.DataFrame({"seed": [0, 1, 2, 3, 4], "best_metric": [5.0, 1.0, 3.0, 4.0, 2.0]})
    assert median_run(group, "max").seed == 2 and median_run(group, "min").seed == 2
    even = pd.DataFrame({"seed": [0, 1, 2, 3], "best_metric": [1.0, 2.0, 3.0, 4.0]})  # the better middle run
    assert median_run(even, "max").seed == 2 and median_run(even, "min").seed == 1


@pytest.mark.slow
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
    assert (out / "fig03_curves_cifar10.png").stat().st_size > 10_000
    assert not list(out.glob("curves_*"))  # the median-run curves are Fig. 3's, not a second file
    empty = run_module("figures", "profile=mini", cwd=tmp_path)
    assert empty.returncode == 2 and "make benchmark" in empty.stderr
