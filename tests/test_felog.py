"""FastEstimator-format logs: FE 1.7's own parser reads ours back; our parser keeps what FE drops."""
from __future__ import annotations

import math

import pytest

from core.felog import FELogWriter, format_line, format_value, parse_log, read_comments
from core.tasks.digits import DigitsCNN
from core.training import Run


def test_format_value_never_uses_positive_exponents():
    assert format_value(1e-06) == "1e-06"
    assert format_value(0.009972612) == "0.009972612"
    assert "e+" not in format_value(1e20) and float(format_value(1e20)) == 1e20
    assert format_value(float("inf")) == "inf"
    assert format_line("Eval", 5, {"epoch": 1, "ce": 0.5}) == "FastEstimator-Eval: step: 5; ce: 0.5; epoch: 1;"


def test_run_log_round_trips_through_fastestimator_parser(tmp_path):
    from fastestimator.summary.logs import parse_log_file

    run = Run(DigitsCNN(width=4, n_train=200, batch_size=32), "adam", 1e-3, seed=0, log_steps=5)
    run.open_log(tmp_path / "run.txt")
    history = run.train(3)
    run.finish_log(1.0)
    summary = parse_log_file(str(tmp_path / "run.txt"), ".txt")
    eval_acc = summary.history["eval"]["accuracy"]
    assert sorted(eval_acc) == [7, 14, 21]  # eval step = global step at the end of each epoch
    assert [float(eval_acc[s]) for s in sorted(eval_acc)] == pytest.approx(history.eval_metric, rel=1e-6)
    assert sorted(summary.history["train"]["epoch"]) == [7, 14, 21]
    train_ce = summary.history["train"]["ce"]
    assert sorted(train_ce) == [1, 5, 10, 15, 20]
    assert float(train_ce[5]) == pytest.approx(history.step_loss[4], rel=1e-6)
    assert float(summary.history["train"]["model_lr"][21]) == pytest.approx(1e-3)


def test_own_parser_keeps_inf_nan_and_units(tmp_path):
    log = FELogWriter(tmp_path / "x.txt")
    log.start(100)
    log.comment("multiplying lr by 1.618")
    log.write("Train", 391, epoch=1, epoch_time="8.58 sec")
    log.write("Eval", 391, epoch=1, ce=float("inf"), perplexity=float("nan"))
    log.close()
    history = parse_log(tmp_path / "x.txt")
    assert history["train"]["epoch_time"][391] == 8.58
    assert math.isinf(history["eval"]["ce"][391]) and math.isnan(history["eval"]["perplexity"][391])
    assert read_comments(tmp_path / "x.txt", "multiplying lr by") == ["multiplying lr by 1.618"]


def test_resumed_log_is_cut_back_to_the_checkpoint(tmp_path):
    task = DigitsCNN(width=4, n_train=200, batch_size=32)
    straight = Run(task, "adam", 1e-3, seed=0, log_steps=5)
    straight.open_log(tmp_path / "a.txt")
    straight.train(3)
    first = Run(task, "adam", 1e-3, seed=0, log_steps=5)
    first.open_log(tmp_path / "b.txt")
    first.train(1)
    first.save(tmp_path / "ck.pt")
    first.train(1)  # work after the checkpoint that a crash would lose
    first.log.close()
    resumed = Run(task, "adam", 1e-3, seed=0, log_steps=5).restore(tmp_path / "ck.pt")
    resumed.open_log(tmp_path / "b.txt")
    resumed.train(2)
    strip = lambda p: [ln.split(" steps/sec")[0] for ln in p.read_text().splitlines() if "epoch_time" not in ln]
    assert strip(tmp_path / "a.txt") == strip(tmp_path / "b.txt")
