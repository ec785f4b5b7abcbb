"""arc_model against FastEstimator 1.7's own ARC.

* 1,000 random histories: our on-line input equals what `fe.schedule.ARC` builds (max abs diff <= 1e-6);
* FE's own network with seeded random weights (conftest.fe_seeded_arc), and again with the published arc.h5 when it
  is there: our probabilities match FE's Keras model to 1e-5, decisions agree 100%, a whole FE training run with
  LRScheduler(lr_fn="arc") gives the LRs of our ARCTrace, and ARCScheduler fed by a loop decides as FE's ARC;
* weight interchange both ways.
TensorFlow is imported once for the module (~5 s).
"""
from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch

tf = pytest.importorskip("tensorflow")
from fastestimator.schedule.lr_schedule import ARC  # noqa: E402

from arc_model.decider import history_cycles  # noqa: E402
from arc_model.scheduler import ARCScheduler, lr_register  # noqa: E402
from arc_model.network import ARCNet  # noqa: E402
from arc_model.preprocess import online_input  # noqa: E402
from arc_model.weights import load_keras_h5, save_keras_h5  # noqa: E402
from core.history import RunHistory  # noqa: E402
from core.schedules import is_decision_epoch  # noqa: E402
from fe_runs import fastestimator_home, fit  # noqa: E402

MULTIPLIERS = (1.618, 1.0, 0.618)


def fe_arc_without_model(frequency: int) -> ARC:
    """FE's own ARC object (its real __init__ and bookkeeping), minus the network it would download."""
    with mock.patch.object(ARC, "_load_arc_model", return_value=None):
        return ARC(frequency=frequency)


def fe_input(arc: ARC) -> np.ndarray:
    """The first lines of FE's `ARC.predict_next_multiplier`: its own preprocessing of its own deques."""
    train_loss, missing = arc._merge_list(arc.all_train_loss)
    train_loss = arc._preprocess_train_loss(train_loss, missing)
    val_loss, missing = arc._merge_list(arc.all_eval_loss)
    val_loss = arc._preprocess_val_loss(val_loss, missing)
    train_lr, missing = arc._merge_list(arc.all_train_lr)
    train_lr = arc._preprocess_train_lr(train_lr, missing)
    return np.concatenate((train_loss, val_loss, train_lr), axis=1)


def random_history(rng: np.random.Generator):
    """A random run up to a decision epoch, fed to FE's ARC exactly as its LRScheduler does, and recorded
    in a RunHistory as core.training does. Returns (FE input, history, epoch, frequency, with_eval)."""
    frequency = int(rng.integers(1, 6))
    epoch = int(rng.choice([e for e in range(2, 4 * frequency + 3) if is_decision_epoch(e, frequency)]))
    with_eval = rng.random() < 0.8
    arc, history = fe_arc_without_model(frequency), RunHistory()
    lr = float(10 ** rng.uniform(-5, 0))
    loss = float(10 ** rng.uniform(-2, 1))
    for e in range(1, epoch):
        if e > 1 and is_decision_epoch(e, frequency):
            lr = float(np.float32(lr * MULTIPLIERS[rng.integers(3)]))
        steps = int(rng.integers(1, 60))
        for _ in range(steps):
            loss = loss * float(np.exp(rng.normal(-0.01, 0.1)))
            value = np.float32(loss)  # FE: data[loss].numpy(); core: loss.item() of a float32 tensor
            arc.accumulate_single_train_loss(value)
            history.step_loss.append(float(value))
        history.epoch_steps.append(steps)
        history.epoch_lr.append(lr)
        if e % frequency == 0:  # FE: train epoch end
            arc.accumulate_all_lrs(lr)
            arc.gather_multiple_train_losses()
        if with_eval:  # FE: eval epoch end
            eval_loss = np.float32(loss * rng.uniform(0.8, 1.5))
            arc.accumulate_single_eval_loss(eval_loss)
            history.eval_loss.append(float(eval_loss))
            if e % frequency == 0:
                arc.gather_multiple_eval_losses()
    return fe_input(arc), history, epoch, frequency, with_eval


@pytest.fixture(scope="module")
def histories():
    rng = np.random.default_rng(2021)
    return [random_history(rng) for _ in range(1000)]


def test_online_input_equals_fastestimator_for_1000_random_histories(histories):
    worst = 0.0
    for fe_x, history, epoch, frequency, _ in histories:
        ours = online_input(*history_cycles(history, epoch, frequency))
        assert ours.shape == fe_x.shape == (300, 3) and ours.dtype == np.float32
        worst = max(worst, float(np.abs(ours - fe_x).max()))
    assert worst <= 1e-6, worst
    assert any(not h[4] for h in histories) and any(h[2] > 3 * h[3] for h in histories)  # both regimes covered


def test_probabilities_and_decisions_match_fastestimator(histories, parity_arc):
    keras_model = ARC.lstm_stacked()
    keras_model.load_weights(str(parity_arc))
    ours = load_keras_h5(parity_arc)
    fe_x = np.stack([h[0] for h in histories]).astype(np.float32)
    our_x = np.stack([online_input(*history_cycles(h[1], h[2], h[3])) for h in histories])
    fe_p = keras_model(fe_x, training=False).numpy()
    our_p = ours.probabilities(our_x).numpy()
    assert np.abs(fe_p - our_p).max() <= 1e-5
    assert (fe_p.argmax(1) == our_p.argmax(1)).all()
    assert len(set(fe_p.argmax(1))) > 1  # the histories exercise more than one decision


def test_our_candidate_h5_loads_into_fastestimator_keras_model(tmp_path):
    torch.manual_seed(7)
    model = ARCNet()
    save_keras_h5(model, tmp_path / "arc.h5")
    keras_model = ARC.lstm_stacked()
    keras_model.load_weights(str(tmp_path / "arc.h5"))
    x = np.random.default_rng(0).normal(size=(32, 300, 3)).astype(np.float32)
    assert np.abs(keras_model(x, training=False).numpy() - model.probabilities(x).numpy()).max() <= 1e-5
    keras_model.save_weights(str(tmp_path / "keras.h5"))  # and Keras' own file reads back into ours
    again = load_keras_h5(tmp_path / "keras.h5")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def _fe_run(trace_fn):
    """10 epochs of tests/fe_runs.py's training (ARC decides at epochs 4, 7, 10); (LR log, ARC lines)."""
    summary, lines = fit(trace_fn, epochs=10, log_steps=3)
    lr_key = next(k for k in summary.history["train"] if k.endswith("_lr"))
    return {step: float(v) for step, v in summary.history["train"][lr_key].items()}, lines


@pytest.mark.slow
def test_fe_trace_reproduces_fastestimator_lrscheduler_arc(tmp_path, monkeypatch, parity_arc):
    from fastestimator.trace.adapt import LRScheduler

    from arc_model.fe_trace import ARCTrace

    fastestimator_home(parity_arc, tmp_path, monkeypatch)
    fe_lrs, fe_lines = _fe_run(lambda model: LRScheduler(model, lr_fn="arc"))
    our_lrs, our_lines = _fe_run(lambda model: ARCTrace(model, weights=str(parity_arc)))
    assert len(fe_lines) == 3 and our_lines == fe_lines
    assert our_lrs == fe_lrs


@pytest.mark.slow
def test_scheduler_fed_like_a_pytorch_loop_matches_fastestimator(histories, parity_arc):
    """ARCScheduler, fed step/eval losses as a hand-written loop would, decides as FE's ARC; and so does
    ARCScheduler over arc_model.scheduler's LR register, which the Run and Trace wrappers use."""
    keras_model = ARC.lstm_stacked()
    keras_model.load_weights(str(parity_arc))
    seen = set()
    for fe_x, history, epoch, frequency, with_eval in histories[:50]:
        scheduler = ARCScheduler(lr_register(history.epoch_lr[0]), parity_arc, frequency=frequency)
        start = 0
        for e in range(1, epoch):
            for loss in history.step_loss[start:start + history.epoch_steps[e - 1]]:
                scheduler.record(loss)
            start += history.epoch_steps[e - 1]
            scheduler.optimizer.param_groups[0]["lr"] = history.epoch_lr[e - 1]  # the LR the loop ran epoch e at
            scheduler.step(history.eval_loss[e - 1] if with_eval else None)
        lr = history.epoch_lr[-1]
        expected = MULTIPLIERS[int(np.argmax(keras_model(fe_x[None], training=False).numpy()))]
        seen.add(expected)
        assert scheduler.decisions[-1] == (epoch, expected)
        assert scheduler.get_last_lr() == [float(np.float32(lr * expected))]
    assert len(seen) > 1
