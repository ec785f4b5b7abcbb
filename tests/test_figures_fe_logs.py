"""figures source=fe_logs: a directory of synthetic FastEstimator logs in the authors' layout (docs/experiments.md
§9: FE 1.1.x lines with trailing "; ", FE >= 1.2 lines for SLS, the `--- run ---` header, banner, download and TF
noise, warnings, `multiplying lr by` decisions, units, inf, a missing Finish line, an incomplete log and the
byte-identical meta ARC copies) rendered into tables whose every number is checked against the generator."""
from __future__ import annotations

import math
import statistics
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from scipy.stats import ttest_ind

import figures.config  # noqa: F401
from core.felog import format_line
from figures.fe_logs import lr0_of_prefix, parse_name
from figures.plots import decisions

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EPOCHS, STEPS = 4, 10  # per run; the config's complete-run Eval counts are overridden to 4
PREFIX = {0.01: "001", 0.001: "0001", 0.0001: "00001", 1.0: "1", 0.1: "01"}
NORMAL = {"base-lr": "constant", "cosine-decay": "cd", "cyclic-cosine-decay": "ccd", "exponential-decay": "ed",
          "lr-controller-weighted-acc": "arc"}
BANNER = ["    ______           __  ______     __  _                 __",
          "   / ____/___ ______/ /_/ ____/____/ /_(_)___ ___  ____ _/ /_____  _____",
          "  / /_  / __ `/ ___/ __/ __/ / ___/ __/ / __ `__ \\/ __ `/ __/ __ \\/ ___/",
          " / __/ / /_/ (__  ) /_/ /___(__  ) /_/ / / / / / / /_/ / /_/ /_/ / /",
          "/_/    \\__,_/____/\\__/_____/____/\\__/_/_/ /_/ /_/\\__,_/\\__/\\____/_/", ""]


def fe11(mode: str, step: int, **values) -> str:
    """An FE 1.1.x record line: insertion order, every pair ending in "; " (trailing space)."""
    return f"FastEstimator-{mode}: step: {step}; " + "".join(f"{k}: {v}; " for k, v in values.items())


def metric_value(schedule: str, lr0: float, run: int, epoch: int, task: str) -> float:
    s = list(NORMAL.values()).index(schedule) if schedule in NORMAL.values() else 5
    if task == "ptb":
        if schedule == "arc" and run == 4 and epoch >= 3:
            return math.inf  # a diverged tail, as PTB ARC LR0 0.01 run 4
        return round(400.0 - 40 * epoch - 3 * s - 2 * run + (30 if epoch == 4 and run % 2 else 0), 2)
    return round(0.5 + 0.05 * epoch + 0.01 * s - 0.02 * math.log10(1 / lr0) + 0.003 * run
                 - (0.08 if epoch == 4 and run % 2 else 0), 4)


def write_log(path: Path, task: str, schedule: str, lr0: float | None, run: int, epochs: int = EPOCHS,
              header: bool = False, finish: bool = True, fe12: bool = False) -> None:
    metric, loss = ("perplexity", "ce") if task == "ptb" else ("accuracy", "ce")
    line = (lambda mode, step, **kv: format_line(mode, step, kv)) if fe12 else fe11
    lines = [f"--- run: 1; init_lr: {lr0}; i: {run} ---"] if header else []
    lines += ["Downloading data from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
              "#015     8192/170498071 [..............................] - ETA: 18:33#010#010#010#010"]
    lines += BANNER
    lines.append("2021-03-01 10:00:00.123456: I tensorflow/core/platform/cpu_feature_guard.cc:142] This TensorFlow "
                 "binary is optimized with oneAPI: AVX2 FMA")
    lines.append(line("Start", 1, num_device=1, logging_interval=5))
    lr = lr0 if lr0 is not None else 1.0
    for epoch in range(1, epochs + 1):
        for step in range((epoch - 1) * STEPS + 1, epoch * STEPS + 1):
            if step == 1 or step % 5 == 0:
                values = {loss: round(2.0 - 0.01 * step, 4)}
                if step > 1:
                    values["steps/sec"] = 55.9
                if schedule != "constant":
                    values["model_lr"] = lr
                lines.append(line("Train", step, **values))
        lines.append(line("Train", epoch * STEPS, epoch=epoch, epoch_time=f"{7.0 + epoch / 100:.2f} sec"))
        value = metric_value(schedule, lr0 or 1.0, run, epoch, task)
        lines.append(line("Eval", epoch * STEPS, epoch=epoch, **{loss: round(1.5 - 0.1 * epoch, 4), metric: value}))
        if epoch == 1:
            lines.append("[93m FastEstimator-Warn: the key 'x' is being pruned [00m")
            lines.append("/usr/lib/python3/site-packages/tensorflow/x.py:12: UserWarning: a python warning")
        if schedule == "arc" and epoch == 2:
            lines.append("multiplying lr by 1.618")
            lr = round(lr * 1.618, 8)
        if schedule == "arc" and epoch == 3:
            lines.append("multiplying lr by 1.0")
    if finish:
        lines.append(line("Finish", epochs * STEPS, total_time=f"{30.5 + run} sec", model_lr=lr))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def build_logs(root: Path) -> dict:
    """The authors' layout for CIFAR10 (all seven rows) and part of PTB; returns the generator's bests."""
    bests: dict[tuple, list[float]] = {}
    normal, meta = root / "normal_comparison", root / "meta_comparison"
    for lr0 in (0.01, 0.001, 0.0001):
        for name, schedule in NORMAL.items():
            for run in range(5):
                path = normal / "image_classification" / f"{PREFIX[lr0]}_{name}_{run}.txt"
                incomplete = (schedule == "cd" and lr0 == 0.001 and run == 4)
                write_log(path, "cifar10", schedule, lr0, run, epochs=2 if incomplete else EPOCHS,
                          header=schedule == "arc", finish=run != 1)
                if not incomplete:
                    bests.setdefault((schedule, lr0), []).append(
                        max(metric_value(schedule, lr0, run, e, "cifar10") for e in range(1, EPOCHS + 1)))
    for run in range(5):
        (meta / "image_classification").mkdir(parents=True, exist_ok=True)
        (meta / "image_classification" / f"ARC_{run}.txt").write_bytes(   # byte-identical copies (§7.4)
            (normal / "image_classification" / f"001_lr-controller-weighted-acc_{run}.txt").read_bytes())
        write_log(meta / "image_classification" / f"superconvergence_{run}.txt", "cifar10", "sc", 0.01, run)
        write_log(meta / "image_classification" / f"sls_{run}.txt", "cifar10", "sls", None, run, fe12=True)
        bests.setdefault(("sc", 0.01), []).append(max(metric_value("sc", 0.01, run, e, "cifar10")
                                                      for e in range(1, EPOCHS + 1)))
        bests.setdefault(("sls", None), []).append(max(metric_value("sls", 1.0, run, e, "cifar10")
                                                       for e in range(1, EPOCHS + 1)))
        for name in ("base-lr", "lr-controller-weighted-acc"):
            schedule = NORMAL[name]
            write_log(normal / "language_modeling" / f"1_{name}_{run}.txt", "ptb", schedule, 1.0, run,
                      header=schedule == "arc", finish=schedule == "arc")
            values = [metric_value(schedule, 1.0, run, e, "ptb") for e in range(1, EPOCHS + 1)]
            bests.setdefault(("ptb", schedule, 1.0), []).append(min(v for v in values if math.isfinite(v)))
    (normal / "image_classification" / "notes.txt").write_text("not a log\n")
    return bests


def test_file_names_map_to_lr0_schedule_and_run():
    schedules = {"base-lr": "constant", "lr-controller-weighted-acc": "arc", "ARC": "arc", "superconvergence": "sc"}
    assert [lr0_of_prefix(p) for p in ("001", "0001", "00001", "0005", "01", "1")] == [
        0.01, 0.001, 0.0001, 0.005, 0.1, 1.0]
    assert parse_name(Path("0005_lr-controller-weighted-acc_3.txt"), False, schedules) == (0.005, "arc", 3)
    assert parse_name(Path("1_base-lr_0.txt"), False, schedules) == (1.0, "constant", 0)
    assert parse_name(Path("superconvergence_2.txt"), True, schedules) == (None, "sc", 2)
    assert parse_name(Path("notes.txt"), False, schedules) is None


def test_epoch_frame_reads_fe17_values_with_errors(tmp_path):
    from core.felog import parse_log
    from figures.fe_logs import epoch_frame

    path = tmp_path / "log.txt"
    path.write_text("FastEstimator-Train: step: 5; ce: 2.0; model_lr: 0.1;\n"
                    "Eval Progress: 1/2;\n"
                    "FastEstimator-Eval: step: 10; accuracy: (0.4, 0.5, 0.6); ce: 1.0; epoch: 1;\n"
                    "FastEstimator-Eval: step: 20; accuracy: nan; ce: inf; epoch: 2;\n")
    frame = epoch_frame(parse_log(path), "accuracy", "ce", 0.1)
    assert frame.eval_metric.iloc[0] == 0.5 and math.isnan(frame.eval_metric.iloc[1])
    assert math.isinf(frame.eval_loss.iloc[1]) and frame.lr.tolist() == [0.1, 0.1]


def test_fe_logs_render_every_number(tmp_path, capsys):
    from figures.__main__ import render

    logs = tmp_path / "logs"
    bests = build_logs(logs)
    out = tmp_path / "out"
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("figures", overrides=["source=fe_logs", f"logs_dir={logs}", f"out_dir={out}", "plots=false",
                                            "ci_resamples=199", f"paths.root={tmp_path}", "fe_logs.evals.cifar10=4",
                                            "fe_logs.evals.ptb=4"])
    render(cfg)
    printed = capsys.readouterr().out
    cells = pd.read_csv(out / "cells.csv")
    cifar = cells[cells.task == "cifar10"]
    # every CIFAR10 cell: the median of the generator's bests, the run count, the expected count
    for key, values in bests.items():
        if key[0] == "ptb":
            continue
        schedule, lr0 = key
        for column in ((0.01, 0.001, 0.0001) if lr0 is None else (lr0,)):
            cell = cifar[(cifar.schedule == schedule) & ((cifar.lr0 - column).abs() < 1e-12)]
            assert len(cell) == 1, (schedule, column)
            cell = cell.iloc[0]
            assert cell.median_best == pytest.approx(statistics.median(values)), (schedule, column)
            assert cell.n_runs == len(values) and cell.n_expected == 5
    arc, blr = bests[("arc", 0.01)], bests[("constant", 0.01)]
    row = cifar[(cifar.schedule == "constant") & (cifar.lr0 == 0.01)].iloc[0]
    assert row.p_ttest_vs_arc == pytest.approx(ttest_ind(arc, blr).pvalue)
    assert cifar[(cifar.schedule == "arc") & (cifar.lr0 == 0.01)].n_runs.iloc[0] == 5  # meta copies not counted
    # the paper's printed cells fill in, in the runs' unit (authors' task names -> cifar10)
    assert cifar[(cifar.schedule == "arc") & (cifar.lr0 == 0.01)].paper_value.iloc[0] == pytest.approx(0.92)
    assert cifar[(cifar.schedule == "sls") & (cifar.lr0 == 0.0001)].paper_value.iloc[0] == pytest.approx(0.909)
    assert cifar[(cifar.schedule == "sc") & (cifar.lr0 == 0.01)].paper_value.iloc[0] == pytest.approx(0.8764)
    # the incomplete log: 2 of 4 Eval lines, so CD at 0.001 has 4 runs and says which one is missing
    cd = cifar[(cifar.schedule == "cd") & (cifar.lr0 == 0.001)].iloc[0]
    assert not cd.complete and "missing seeds 4" in cd.missing and "2 of 4 Eval lines" in cd.missing
    assert "0001_cosine-decay_4.txt" in cd.missing
    assert "warning: incomplete: cifar10 / cd / LR0 0.001: 4 of 5 runs" in printed
    assert printed.count("duplicate log skipped: meta_comparison/image_classification/ARC_") == 5
    assert "ignored: normal_comparison/image_classification/notes.txt" in printed
    # PTB: perplexity is minimised, inf kept in the curve but never the best; missing rows are flagged
    ptb = cells[cells.task == "ptb"]
    for schedule in ("constant", "arc"):
        values = bests[("ptb", schedule, 1.0)]
        cell = ptb[(ptb.schedule == schedule) & (ptb.lr0 == 1.0)].iloc[0]
        assert cell.median_best == pytest.approx(statistics.median(values)) and cell.n_runs == 5
    assert "warning: incomplete: ptb / cd: no finished runs" in printed
    runs = out / "runs" / "fe_logs"
    diverged = pd.read_parquet(runs / "ptb" / "normal_comparison-1_lr-controller-weighted-acc_4" / "epochs.parquet")
    assert math.isinf(diverged.eval_metric.iloc[-1])
    # one converted run, number by number: LR in force, losses, units stripped, decisions, wall time
    run = runs / "cifar10" / "normal_comparison-001_lr-controller-weighted-acc_0"
    curve = pd.read_parquet(run / "epochs.parquet")
    assert curve.epoch.tolist() == [1, 2, 3, 4] and curve.steps.tolist() == [10, 10, 10, 10]
    assert curve.lr.tolist() == pytest.approx([0.01, 0.01, 0.01618, 0.01618])
    assert curve.eval_loss.tolist() == pytest.approx([1.4, 1.3, 1.2, 1.1])
    assert curve.seconds.tolist() == pytest.approx([7.01, 7.02, 7.03, 7.04])
    assert curve.train_loss_mean.iloc[0] == pytest.approx(statistics.mean([2.0 - 0.01, 2.0 - 0.05, 2.0 - 0.1]))
    assert curve.eval_metric.tolist() == pytest.approx([metric_value("arc", 0.01, 0, e, "cifar10")
                                                        for e in range(1, 5)])
    assert decisions(run) == [(2, 1.618), (3, 1.0)]
    done = pd.read_json(run / "DONE", typ="series")
    assert done.wall_seconds == 30.5 and done.best_epoch == 4 and done.seed == 0 and done.lr0 == 0.01
    no_finish = pd.read_json(runs / "cifar10" / "normal_comparison-001_base-lr_1" / "DONE", typ="series")
    assert no_finish.wall_seconds == pytest.approx(7.01 + 7.02 + 7.03 + 7.04)  # no Finish line: sum of epochs
    blr = pd.read_parquet(runs / "cifar10" / "normal_comparison-001_base-lr_0" / "epochs.parquet")
    assert blr.lr.tolist() == [0.01] * 4  # BLR logs model_lr only on its Finish line
    # the tables beside the paper, LaTeX, the report with the claims
    tables = (out / "tables_paper.md").read_text()
    assert "#### cifar10 beside the paper" in tables and "| ARC |" in tables and "†" in tables
    assert (out / "tables.tex").is_file() and (out / "tables.md").is_file()
    report = (out / "REPORT.md").read_text()
    assert "Decays (CD, CCD, ED) beat BLR" in report and "5 of 5 ARC runs raised the LR" in report
