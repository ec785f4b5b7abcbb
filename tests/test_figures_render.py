"""figures: the long-form cells (CI, p-values, paper values, ranks), the completeness gate, the claims of REPORT.md,
and `python -m figures` on a small synthetic artifacts tree (every table, the figures whose data exist, skips)."""
from __future__ import annotations

import json
import math
import os
import shutil
import statistics
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from scipy.stats import mannwhitneyu, ttest_ind

import figures.config  # noqa: F401
from core.results import study_rows
from figures.cells import CellOptions, mean_ranks, median_ci, task_cells
from figures.expected import Expectation, expected_runs, unfinished_runs
from figures.paper import paper_values
from figures.plots import decisions, failure_runs
from figures.study_sweeps import study_seeds
from figures.report import (claim_arc_small, claim_decays, claim_never_worst, decisions_markdown, paper_cells,
                            stage_times)
from figures.tables import latex_table, markdown_table

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
OPTS = CellOptions(ci_resamples=999)


def rows_of(values: dict, task="cifar10", metric="accuracy", mode="max") -> pd.DataFrame:
    """values: {(schedule, lr0): [best per seed]} -> result rows (seed = position)."""
    rows = [dict(task=task, schedule=s, lr0=lr0, seed=i, metric=metric, metric_mode=mode, best_metric=v,
                 run_dir="/nonexistent")
            for (s, lr0), bests in values.items() for i, v in enumerate(bests)]
    return pd.DataFrame(rows)


VALUES = {("arc", 0.01): [0.90, 0.91, 0.92, 0.93, 0.95], ("constant", 0.01): [0.80, 0.81, 0.82, 0.83, 0.86],
          ("cd", 0.01): [0.905, 0.915, 0.925, 0.935, 0.94], ("arc", 0.001): [0.70, 0.72], ("constant", 0.001): [0.71],
          ("sc", 0.0076): [0.60, 0.61, 0.62], ("sls", None): [0.5, 0.52, 0.54],
          ("plateau", 0.01): [0.99, 0.98, 0.97]}


def test_cells_long_form_every_number():
    rows = rows_of(VALUES)
    cells, warn, notes = task_cells(rows, "cifar10", OPTS, paper=paper_values())
    get = lambda s, lr0: cells[(cells.schedule == s) & (cells.lr0 == lr0)].iloc[0]  # noqa: E731
    arc, blr = get("arc", 0.01), get("constant", 0.01)
    assert arc.median_best == statistics.median(VALUES[("arc", 0.01)]) and arc.n_runs == 5
    assert blr.p_ttest_vs_arc == pytest.approx(ttest_ind(VALUES[("arc", 0.01)], VALUES[("constant", 0.01)]).pvalue)
    assert blr.p_mannwhitney_vs_arc == pytest.approx(
        mannwhitneyu(VALUES[("arc", 0.01)], VALUES[("constant", 0.01)], alternative="two-sided").pvalue)
    assert blr.significant and not get("cd", 0.01).significant and math.isnan(arc.p_ttest_vs_arc)
    assert min(VALUES[("arc", 0.01)]) <= arc.ci_low <= arc.median_best <= arc.ci_high <= max(VALUES[("arc", 0.01)])
    assert (arc.ci_low, arc.ci_high) == median_ci(VALUES[("arc", 0.01)], 0.95, 999, 0)  # fixed seed: reproducible
    one = get("constant", 0.001)
    assert one.n_runs == 1 and math.isnan(one.ci_low) and math.isnan(one.p_ttest_vs_arc)  # n < 2
    # SC placed in the grid column nearest its own LR0; SLS repeated in every column
    sc = get("sc", 0.01)
    assert sc.run_lr0 == 0.0076 and sc.median_best == 0.61 and any("0.0076" in n for n in notes)
    assert [get("sls", lr0).median_best for lr0 in (0.01, 0.001)] == [0.52, 0.52]
    # paper values (the runs' unit), the column's best, ranks, the paper block
    assert arc.paper_value == pytest.approx(0.92) and get("sls", 0.001).paper_value == pytest.approx(0.909)
    assert math.isnan(get("plateau", 0.01).paper_value) and get("plateau", 0.01).block == "extended"
    assert get("plateau", 0.01).best and not arc.best
    assert get("cd", 0.01).rank_paper == 1 and arc.rank_paper == 2 and get("plateau", 0.01).rank_all == 1
    ranks = mean_ranks(cells).set_index("schedule")
    assert ranks.loc["sls", "columns"] == 2 and ranks.loc["plateau", "mean_rank_all"] == 1
    assert warn == []  # no expectation given: nothing to flag


def test_completeness_gate_names_the_missing_and_unfinished_runs():
    rows = rows_of({("arc", 0.01): [0.9] * 5, ("cd", 0.01): [0.8, 0.81, 0.82], ("cd", 0.001): [0.7] * 5,
                    ("arc", 0.001): [0.9] * 5})
    expected = {"arc": Expectation((0, 1, 2, 3, 4), (0.01, 0.001), "configs/experiment/x.yaml"),
                "cd": Expectation((0, 1, 2, 3, 4), (0.01, 0.001), "configs/experiment/x.yaml"),
                "ed": Expectation((0, 1, 2, 3, 4), (0.01, 0.001), "configs/experiment/x.yaml")}
    unfinished = [{"task": "cifar10", "schedule": "cd", "lr0": 0.01, "seed": 3, "name": "cd-lr0.01-s3-abc",
                   "why": "no DONE (interrupted or still running)"}]
    cells, warn, _ = task_cells(rows, "cifar10", OPTS, expected, unfinished)
    cd = cells[(cells.schedule == "cd") & (cells.lr0 == 0.01)].iloc[0]
    assert cd.n_runs == 3 and cd.n_expected == 5 and not cd.complete
    assert "missing seeds 3, 4" in cd.missing and "cd-lr0.01-s3-abc" in cd.missing
    assert any("cifar10 / cd / LR0 0.01: 3 of 5 runs" in w for w in warn)
    assert any("cifar10 / ed: no finished runs" in w for w in warn)
    assert cells[cells.schedule == "arc"].complete.all()
    assert cells[(cells.schedule == "cd") & (cells.lr0 == 0.001)].complete.all()
    md = markdown_table(cells)
    assert "| CD | 81.00#† | 70.00# |" in md and "- † CD, LR0 0.01: 3 of 5 runs (missing seeds 3, 4" in md
    assert r"81.00\textsuperscript{\#}$^\dagger$" in latex_table(cells) and r"\midrule" in latex_table(cells)


def test_expected_runs_follow_the_study_configs(tmp_path):
    bench = expected_runs("benchmark", ["sc", "sls", "prodigy"])
    assert bench["cifar10"]["constant"].seeds == (0, 1, 2, 3, 4)
    assert bench["cifar10"]["constant"].lr0s == (0.01, 0.001, 0.0001)
    assert bench["ptb"]["plateau"].lr0s == (1.0, 0.1, 0.01)  # extended baselines: lr0_column -> the task's grid
    assert bench["mscoco"]["sc"].lr0s is None and bench["mscoco"]["sls"].lr0s is None
    # the appendix studies size their seeds per profile (figures.study_sweeps resolves them for the reader)
    n = expected_runs("n_study", ["sc", "sls"], seeds=study_seeds("n_study", "paper"))["cifar10"]
    assert sorted(n) == [f"arc n={k}" for k in range(1, 7)] and n["arc n=1"].seeds == tuple(range(5))
    assert study_seeds("n_study", "mini") == [0, 1] and study_seeds("benchmark", "mini") is None
    metric = expected_runs("metric_study", ["sc", "sls"], seeds=study_seeds("metric_study", "paper"))["cifar10"]
    assert len(metric) == 6 and metric["arc best_mcc"].seeds == tuple(range(7))  # candidates pool into the cell
    assert expected_runs("benchmark", [], seeds=[0])["ptb"]["arc"].seeds == (0,)
    run = tmp_path / "cifar10" / "cd-lr0.001-s4-0123abcd"
    run.mkdir(parents=True)
    (tmp_path / "cifar10" / "cd-lr0.001-s3-0123abce").mkdir()
    (tmp_path / "cifar10" / "cd-lr0.001-s3-0123abce" / "DONE").write_text("{}")
    assert unfinished_runs(tmp_path) == [{"task": "cifar10", "schedule": "cd", "lr0": 0.001, "seed": 4,
                                          "name": run.name, "why": "no DONE (interrupted or still running)"}]


def test_claims_on_the_papers_own_tables():
    paper = paper_cells()
    verdict, per_task = claim_decays(paper)
    assert [v for _, v, _ in per_task] == ["holds", "does not hold", "does not hold"]  # cifar10, mscoco, ptb
    assert "2 of 3 beat BLR" in per_task[1][2] and verdict.startswith("does not hold")
    _, per_task = claim_arc_small(paper, None)
    assert [v for _, v, _ in per_task] == ["holds", "does not hold", "holds"]  # SC beats ARC on mscoco 0.001
    assert "SC 0.1747" in per_task[1][2]
    assert claim_never_worst(paper)[0] == "holds"


def write_run(root: Path, task, schedule, lr0, seed, metric_values, lrs, metric="accuracy", mode="max",
              decisions_after=(), **extra) -> Path:
    """A finished run directory as experiments.benchmark writes it (epochs.parquet, FE log.txt, DONE)."""
    run = root / task / f"{schedule}-lr{'free' if lr0 is None else f'{lr0:g}'}-s{seed}-{seed:08x}"
    run.mkdir(parents=True)
    epochs = list(range(1, len(metric_values) + 1))
    pd.DataFrame({"epoch": epochs, "steps": 2, "train_loss_mean": 1.0, "eval_loss": 1.0,
                  "eval_metric": metric_values, "lr": lrs, "seconds": 0.5}).to_parquet(run / "epochs.parquet")
    log = ["FastEstimator-Start: step: 1; logging_interval: 2; num_device: 0;"]
    for e, value in zip(epochs, metric_values):
        log.append(f"FastEstimator-Eval: step: {2 * e}; {metric}: {value}; ce: 1.0; epoch: {e};")
        log += [f"multiplying lr by {f}" for after, f in decisions_after if after == e]
    (run / "log.txt").write_text("\n".join(log) + "\n")
    finite = [(v, i) for i, v in enumerate(metric_values, 1) if math.isfinite(v)]
    best, best_epoch = (max if mode == "max" else min)(finite)
    (run / "DONE").write_text(json.dumps({"task": task, "schedule": schedule, "lr0": lr0, "seed": seed,
                                          "frequency": 3 if schedule == "arc" else None, "metric": metric,
                                          "metric_mode": mode, "best_metric": best, "best_epoch": best_epoch,
                                          "final_metric": metric_values[-1], "diverged": False,
                                          "epochs": len(epochs), "wall_seconds": 2.0, **extra}))
    return run


def test_decisions_and_failure_runs(tmp_path):
    run = write_run(tmp_path, "ptb", "arc", 1.0, 0, [300.0, 200.0, 150.0, 180.0, 170.0], [1, 1, 1, 1.618, 1.618],
                    metric="perplexity", mode="min", decisions_after=[(3, 1.618)])
    assert decisions(run) == [(3, 1.618)]
    (run / "log.txt").unlink()  # without the log: the LR column's x1.618 step
    assert decisions(run) == [(3, 1.618)]
    fails = failure_runs(pd.DataFrame([{"run_dir": run, "task": "ptb", "schedule": "arc", "lr0": 1.0, "seed": 0,
                                        "metric": "perplexity", "metric_mode": "min", "best_metric": 150.0}]))
    assert len(fails) == 1 and fails.raise_epoch.iloc[0] == 3 and fails["drop"].iloc[0] == pytest.approx(20 / 150)


def test_decisions_table_counts_every_call_per_cell(tmp_path, monkeypatch):
    """Two ARC runs at LR0 0.01 (raise, keep, decrease; raise, raise): 3 / 1 / 1 over 2 runs = 2.5 calls per run;
    the published ARC's one run kept once; BLR's run is not an ARC row."""
    monkeypatch.setattr("figures.paper._STAND_INS", {"cifar10": "digits-resnet9 (CIFAR10 stand-in)"})
    a = write_run(tmp_path, "cifar10", "arc", 0.01, 0, [0.1] * 9, [0.01] * 9,
                  decisions_after=[(3, 1.618), (6, 1.0), (9, 0.618)])
    b = write_run(tmp_path, "cifar10", "arc", 0.01, 1, [0.1] * 9, [0.01] * 9, decisions_after=[(3, 1.618), (6, 1.618)])
    c = write_run(tmp_path, "cifar10", "arc_published", 0.01, 0, [0.1] * 3, [0.01] * 3, decisions_after=[(3, 1.0)])
    d = write_run(tmp_path, "cifar10", "constant", 0.01, 0, [0.1] * 3, [0.01] * 3)
    rows = pd.DataFrame({"task": "cifar10", "lr0": 0.01, "run_dir": [a, b, c, d],
                         "schedule": ["arc", "arc", "arc_published", "constant"]})
    table = decisions_markdown(rows).splitlines()
    assert table[:2] == ["- ARC lowers the LR (a x0.618 call): **yes**, in 1 of 1 cells (digits-resnet9 (CIFAR10 "
                         "stand-in) at LR0 0.01)", "- ARC (published) lowers the LR (a x0.618 call): **no**, in 0 of 1 "
                         "cells"]
    assert table[5:] == ["| digits-resnet9 (CIFAR10 stand-in) | 0.01 | ARC | 2 | 3 | 1 | 1 | 2.5 | yes |",
                         "| digits-resnet9 (CIFAR10 stand-in) | 0.01 | ARC (published) | 1 | 0 | 1 | 0 | 1.0 | no |"]
    assert decisions_markdown(rows[rows.schedule == "constant"]) is None


def test_fig6_says_so_when_no_raise_got_worse(tmp_path):
    from figures.plots import failures

    run = write_run(tmp_path, "ptb", "arc", 1.0, 0, [300.0, 200.0, 150.0, 140.0], [1, 1, 1.618, 1.618],
                    metric="perplexity", mode="min", decisions_after=[(2, 1.618)])
    rows = pd.DataFrame([{"run_dir": run, "task": "ptb", "schedule": "arc", "lr0": 1.0, "seed": 0,
                          "metric": "perplexity", "metric_mode": "min", "best_metric": 140.0}])
    assert failure_runs(rows).empty  # the raise after epoch 2 was followed by 140 < 150
    paths = failures(rows, tmp_path / "fig06", formats=("png",), dpi=40)
    assert [p.name for p in paths] == ["fig06.png"] and paths[0].stat().st_size > 0
    assert failures(rows.assign(schedule="constant"), tmp_path / "none", formats=("png",), dpi=40) == []


def compose_cfg(root: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("figures", overrides=["profile=smoke", f"paths.root={root}", "formats=[png]", "dpi=40",
                                             "ci_resamples=199", *overrides])


@pytest.mark.slow
def test_figures_stage_renders_tables_figures_and_report(tmp_path, capsys, name_every_run):
    from figures.__main__ import render

    art = tmp_path / "artifacts" / "smoke"
    bench = art / "benchmark" / "benchmark"
    for seed in range(2):
        for lr0, base in ((0.01, 0.5), (0.001, 0.3)):
            write_run(bench, "cifar10", "constant", lr0, seed, [base, base + 0.1, base + 0.1], [lr0] * 3)
            write_run(bench, "cifar10", "cd", lr0, seed, [base, base + 0.2 - lr0 * 30, base], [lr0, lr0 / 2, 0])
            write_run(bench, "cifar10", "arc", lr0, seed, [base, base + 0.2, base + 0.3 + seed * 0.01],
                      [lr0, lr0, lr0 * 1.618], decisions_after=[(2, 1.618)])
        write_run(bench, "cifar10", "sls", None, seed, [0.4, 0.45, 0.5], [1.0, 1.2, 0.9])
        write_run(bench, "ptb", "arc", 1.0, seed, [300.0, 200.0, 250.0], [1, 1, 1.618], metric="perplexity",
                  mode="min", decisions_after=[(2, 1.618)])
    (bench / "cifar10" / "cd-lr0.01-s2-deadbeef").mkdir()  # an interrupted run
    rt = art / "benchmark" / "range_test" / "ptb"  # range_test/<task>/ holds one run
    rt.mkdir(parents=True)
    pd.DataFrame({"epoch": [1, 2, 3], "eval_loss": 5.0, "eval_metric": [900.0, 400.0, 800.0],
                  "lr": [10.0, 20.0, 30.0]}).to_parquet(rt / "epochs.parquet")
    (rt / "DONE").write_text(json.dumps({"task": "ptb", "lr_max": 20.0, "criterion": "metric",
                                         "metric": "perplexity", "metric_mode": "min", "wall_seconds": 1.5}))
    (art / "selection").mkdir(parents=True)
    pd.DataFrame({"candidate": ["c1", "c2", "published"], "score": [0.5, 0.6, 0.55], "runs": 2,
                  "best_lr0.1_r0": [0.4, 0.5, 0.5], "best_lr0.001_r0": [0.6, 0.7, 0.6]}
                 ).to_csv(art / "selection" / "scores.csv", index=False)
    (art / "selection" / "DONE").write_text(json.dumps({"winner": "c2", "score": 0.6}))
    (art / "dataset").mkdir()
    pd.DataFrame({"task": ["imdb_lstm", "ALL"], "points": [3, 3], "runs": [1, 1], "raw_0": [1, 1], "raw_1": [0, 0],
                  "raw_2": [2, 2], "corrected_0": [0, 0], "corrected_1": [1, 1], "corrected_2": [2, 2],
                  "changed": [0.33, 0.33]}).to_csv(art / "dataset" / "report.csv", index=False)
    (art / "dataset" / "report.txt").write_text("label 0 raise, 1 keep, 2 decrease\noptimizer sgd   3  0.333\n")
    write_run(art / "benchmark" / "n_study", "cifar10", "arc", 0.01, 0, [0.5, 0.6, 0.7], [0.01] * 3)
    for run in (art / "benchmark" / "n_study" / "cifar10").glob("*"):
        done = json.loads((run / "DONE").read_text())
        (run / "DONE").write_text(json.dumps({**done, "frequency": 1}))
    write_run(art / "benchmark" / "n_study", "cifar10", "arc", 0.001, 1, [0.5, 0.6, 0.8], [0.001] * 3)
    for seed, model in enumerate(("arc", "best_mcc", "best_mcc")):
        write_run(art / "benchmark" / "metric_study", "cifar10", "arc", 0.01, seed, [0.5, 0.6 + seed / 10, 0.7],
                  [0.01] * 3, arc_candidate=1, arc_model_file=model)

    render(compose_cfg(tmp_path))
    printed = capsys.readouterr().out
    figs = art / "figures"
    out = figs / "benchmark"
    assert "| arc |" in (out / "tables.md").read_text() and "†" not in (out / "tables.md").read_text()
    paper_md = (out / "tables_paper.md").read_text()
    # smoke trains stand-ins: every table names them (the FE-log test checks the paper's own names)
    assert "### Table 2: digits-resnet9 (CIFAR10 stand-in)" in paper_md and "Mean rank" in paper_md
    assert "### Table 4: pydoc-text-lstm (PTB stand-in)" in paper_md and "Table 2: cifar10" not in paper_md
    assert "### digits-resnet9 (CIFAR10 stand-in): median best accuracy" in (out / "tables.md").read_text()
    assert "cd-lr0.01-s2-deadbeef" in paper_md and "The paper's Table 2" in paper_md  # gate + paper reference
    cells = pd.read_csv(out / "cells.csv")
    for column in ("task", "schedule", "lr0", "metric", "median_best", "n_runs", "ci_low", "ci_high",
                   "p_ttest_vs_arc", "p_mannwhitney_vs_arc", "paper_value", "n_expected"):
        assert column in cells
    assert cells.paper_value.isna().all()  # smoke tasks are stand-ins: no paper value in the long form
    arc = cells[(cells.schedule == "arc") & (cells.lr0 == 0.01)].iloc[0]
    assert arc.median_best == pytest.approx(0.805) and arc.n_runs == 2 and arc.n_expected == 5
    assert r"\begin{tabular}" in (out / "tables.tex").read_text()
    for name in ("fig03_curves_cifar10", "fig10_boxes_cifar10", "fig05_curves_ptb", "fig12_boxes_ptb",
                 "fig06_arc_failures", "fig13_arc_runs_ptb_lr1"):
        assert (out / f"{name}.png").stat().st_size > 5000, name
    for name in ("fig08_proxy_scores", "fig09_range_tests", "label_distribution", "n_study/fig14_n_study"):
        assert (figs / f"{name}.png").is_file(), name
    assert "skip: Fig. 8" not in printed and "skip: Fig. 7" not in printed and "skip: Fig. 14" not in printed
    n_table = (figs / "n_study" / "tables.md").read_text()  # frequencies are rows of their own, not one "arc"
    assert "| arc n=1 |" in n_table and "| arc n=3 |" in n_table and "| arc |" not in n_table
    assert "| arc best_mcc |" in (figs / "metric_study" / "tables.md").read_text()
    assert (figs / "metric_study" / "fig07_metric_study.png").is_file()
    assert "warning: incomplete: cifar10 / cd / LR0 0.01: 2 of 5 runs" in printed
    report = (art / "REPORT.md").read_text()
    assert "](figures/benchmark/fig03_curves_cifar10.png)" in report and "](figures/fig08_proxy_scores.png)" in report
    assert "Selected ARC: **c2**" in report and "stage_times.jsonl does not exist yet" in report
    assert "ARC raises the LR at the smallest LR0 and wins there" in report
    assert "2 of 2 ARC runs raised the LR" in report
    assert "| digits-resnet9 (CIFAR10 stand-in) | 0.01 | ARC | 2 | 2 | 0 | 0 | 1.0 | no |" in report  # ARC's decisions
    assert "## 4. ARC's training data: label mix" in report and "optimizer sgd   3  0.333" in report
    assert "## 5. Model selection (proxy task)" in report
    (art / "logs").mkdir()
    (art / "logs" / "stage_times.jsonl").write_text('{"stage": "benchmark", "seconds": 12.5}\n'
                                                    '{"stage": "benchmark", "seconds": 2.5}\n')
    how, table = stage_times(art, art / "benchmark", art / "selection", art / "candidates")
    assert "stage_times.jsonl" in how and table.set_index("stage").seconds.to_dict() == {"benchmark": 15.0}


def test_a_rerun_with_another_model_replaces_the_earlier_run_in_the_tables(tmp_path):
    """Re-selecting ARC writes new run directories beside the old ones (the weights are part of the run's name):
    a cell holds the latest run of each seed, not both models' runs."""
    old = write_run(tmp_path / "benchmark", "cifar10", "arc", 0.01, 0, [0.5, 0.6], [0.01, 0.01])
    other_seed = write_run(tmp_path / "benchmark", "cifar10", "arc", 0.01, 1, [0.7, 0.7], [0.01, 0.01])
    new = old.with_name(old.name + "-new")
    shutil.copytree(old, new)
    done = json.loads((new / "DONE").read_text())
    (new / "DONE").write_text(json.dumps({**done, "best_metric": 0.9}))
    os.utime(old / "DONE", ns=(10**18, 10**18))  # finished earlier than the copy and the other seed
    rows = study_rows(tmp_path)
    assert sorted(rows.run_dir.map(Path)) == sorted([new, other_seed])
    assert sorted(rows.best_metric) == [0.7, 0.9]
