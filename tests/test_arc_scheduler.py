"""arc_model.ARCScheduler: ARC as a torch.optim.lr_scheduler.

* decision epochs checked by hand (4, 7, 10 for frequency 3) and what ARC sees at each;
* the same LRs as ARCDecider on the whole history over long runs, and as FastEstimator 1.7's own ARC (its
  Estimator with LRScheduler(lr_fn="arc"), and its ARC object fed step by step), with FE's own network under
  seeded weights (conftest.fe_seeded_arc) and again with the published arc.h5;
* save/restore mid-run (also mid-epoch) changes nothing; two parameter groups keep their ratio;
* weights from FastEstimator's cache directory, and clear errors.
Without the published weights only its extra checks skip (conftest.parity_arc); the others then use a random ARC
network saved as arc.h5.
"""
from __future__ import annotations

import shutil
from unittest import mock

import numpy as np
import pytest
import torch

from arc_model import ARCScheduler
from arc_model.decider import ARCDecider, history_cycles, next_lr
from core.history import RunHistory
from core.schedules import is_decision_epoch
from core.errors import DataError

from conftest import PUBLISHED_ARC
from fe_runs import fastestimator_home, fit


MULTIPLIERS = (1.618, 1.0, 0.618)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sgd(*lrs: float) -> torch.optim.Optimizer:
    return torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs])


def synthetic_run(seed: int, epochs: int):
    """[(step losses as float32 tensors, eval loss)] per epoch: a noisy decreasing loss."""
    rng = np.random.default_rng(seed)
    loss, run = float(10 ** rng.uniform(-1, 1)), []
    for _ in range(epochs):
        steps = []
        for _ in range(int(rng.integers(1, 40))):
            loss *= float(np.exp(rng.normal(-0.01, 0.15)))
            steps.append(torch.tensor(loss, dtype=torch.float32))
        run.append((steps, float(np.float32(loss * rng.uniform(0.8, 1.5)))))
    return run


def test_decision_epochs_are_4_7_10_for_frequency_3_and_see_the_last_three_cycles(arc_weights):
    assert [e for e in range(1, 14) if is_decision_epoch(e, 3)] == [4, 7, 10, 13]
    assert [e for e in range(1, 6) if is_decision_epoch(e, 1)] == [2, 3, 4, 5]
    scheduler = ARCScheduler(sgd(0.1), weights=arc_weights, frequency=3)
    seen = []

    def decide(train, val, lrs):
        seen.append((train, val, lrs))
        return 0.618

    scheduler.decider.multiplier = decide
    lrs = []
    for epoch in range(1, 14):
        for step in range(2):
            scheduler.record(float(10 * epoch + step))
        scheduler.step(float(epoch))
        lrs.append(scheduler.get_last_lr()[0])  # the LR of epoch + 1
    assert [d[0] for d in scheduler.decisions] == [4, 7, 10, 13]
    expected, lr = [], 0.1
    for epoch in range(2, 15):
        lr = float(np.float32(lr * 0.618)) if epoch in (4, 7, 10, 13) else lr
        expected.append(lr)
    assert lrs == expected
    cycle = lambda c: [float(10 * e + s) for e in range(3 * c - 2, 3 * c + 1) for s in range(2)]  # noqa: E731
    evals = lambda c: [float(e) for e in range(3 * c - 2, 3 * c + 1)]  # noqa: E731
    assert seen[0] == ([None, None, cycle(1)], [None, None, evals(1)], [None, None, 0.1])
    assert seen[1] == ([None, cycle(1), cycle(2)], [None, evals(1), evals(2)], [None, 0.1, expected[4]])
    assert seen[3] == ([cycle(2), cycle(3), cycle(4)], [evals(2), evals(3), evals(4)],
                       [expected[4], expected[7], expected[10]])  # epoch 13: cycle 1 has left the window


@pytest.mark.parametrize("frequency, with_eval", [(1, True), (2, False), (3, True), (3, False), (5, True)])
def test_same_lrs_as_the_decision_on_the_whole_history_over_long_runs(arc_weights, frequency, with_eval):
    """The scheduler keeps only ARC's window; ARCDecider on the whole history (history_cycles) is the reference.
    Same LRs every epoch."""
    epochs = 4 * frequency + 9
    scheduler = ARCScheduler(sgd(0.05), weights=arc_weights, frequency=frequency)
    decider, history, lr = ARCDecider(arc_weights), RunHistory(), 0.05
    for epoch, (steps, eval_loss) in enumerate(synthetic_run(frequency, epochs), start=1):
        if is_decision_epoch(epoch, frequency):
            lr = next_lr(lr, decider.multiplier(*history_cycles(history, epoch, frequency)))
        assert scheduler.get_last_lr() == [lr]
        for loss in steps:
            scheduler.record(loss)
        history.step_loss.extend(loss.item() for loss in steps)
        history.epoch_steps.append(len(steps))
        history.epoch_lr.append(lr)
        if with_eval:
            history.eval_loss.append(eval_loss)
        scheduler.step(eval_loss if with_eval else None)
    assert len(scheduler.decisions) == len([e for e in range(2, epochs + 2) if is_decision_epoch(e, frequency)])  # + the coming epoch
    assert len(scheduler.state_dict()["epoch_steps"]) < 4 * frequency  # only ARC's window is kept


@pytest.fixture
def fe_arc(parity_arc):
    """`fe_arc(frequency)`: FastEstimator 1.7's ARC object (its own __init__ and bookkeeping) with the network of
    `parity_arc` (FE's own with seeded weights, then the published one), never downloaded."""
    pytest.importorskip("tensorflow")
    from fastestimator.schedule.lr_schedule import ARC

    with mock.patch.object(ARC, "_initialize_arc_weight", return_value=str(parity_arc)):
        network = ARC(frequency=3).model

    def make(frequency: int):
        with mock.patch.object(ARC, "_load_arc_model", return_value=network):
            return ARC(frequency=frequency)

    return make


@pytest.mark.slow
def test_same_decisions_as_fastestimators_arc_object_step_by_step(fe_arc, parity_arc):
    """FE's ARC fed exactly as its LRScheduler trace feeds it, against ARCScheduler fed by a plain loop."""
    multipliers = set()
    for seed in range(8):  # frequencies 1-4, each with and without eval, each past ARC's 3-cycle window
        frequency = 1 + seed % 4
        with_eval = seed < 4
        arc = fe_arc(frequency=frequency)
        arc.use_eval_loss = with_eval
        scheduler = ARCScheduler(sgd(0.01, 0.001), weights=parity_arc, frequency=frequency)
        lr = 0.01
        for epoch, (steps, eval_loss) in enumerate(synthetic_run(100 + seed, 4 * frequency + 2), start=1):
            if epoch > 1 and (epoch % frequency == 1 or frequency == 1):  # FE: on_epoch_begin
                multiplier = arc.predict_next_multiplier()
                multipliers.add(multiplier)
                lr = np.float32(lr * multiplier)
            assert scheduler.get_last_lr()[0] == float(lr), (seed, epoch)
            for loss in steps:
                arc.accumulate_single_train_loss(loss.numpy())  # FE: on_batch_end
                scheduler.record(loss)
            if epoch % frequency == 0:  # FE: train on_epoch_end
                arc.accumulate_all_lrs(float(lr))
                arc.gather_multiple_train_losses()
            if with_eval:  # FE: eval on_epoch_end
                arc.accumulate_single_eval_loss(np.float32(eval_loss))
                if epoch % frequency == 0:
                    arc.gather_multiple_eval_losses()
            scheduler.step(eval_loss if with_eval else None)
    assert len(multipliers) > 1  # the runs exercise more than one decision


@pytest.mark.slow
def test_same_lrs_as_fastestimator_estimator_with_lrscheduler_arc(tmp_path, monkeypatch, parity_arc):
    """A FastEstimator training (13 epochs: decisions at 4, 7, 10, 13) with LRScheduler(lr_fn="arc"); what
    its ARC was fed is replayed into ARCScheduler, which must set the same LR at every epoch."""
    pytest.importorskip("tensorflow")
    from fastestimator.trace.adapt import LRScheduler

    fastestimator_home(parity_arc, tmp_path, monkeypatch)
    fed = {"steps": {}, "eval": {}, "lr": {}}

    class Recording(LRScheduler):
        def on_epoch_begin(self, data):
            super().on_epoch_begin(data)
            if self.system.mode == "train":
                fed["lr"][self.system.epoch_idx] = float(self.model.current_optimizer.param_groups[0]["lr"])

        def on_batch_end(self, data):
            super().on_batch_end(data)
            if self.system.mode == "train":
                fed["steps"].setdefault(self.system.epoch_idx, []).append(float(data["ce"].numpy()))

        def on_epoch_end(self, data):
            super().on_epoch_end(data)
            if self.system.mode == "eval":
                fed["eval"][self.system.epoch_idx] = float(data["ce"])

    _, fe_lines = fit(lambda model: Recording(model, lr_fn="arc"), epochs=13)
    assert len(fe_lines) == 4 and sorted(fed["steps"]) == list(range(1, 14))

    scheduler = ARCScheduler(sgd(0.05), weights=parity_arc)
    for epoch in range(1, 14):
        assert scheduler.get_last_lr() == [fed["lr"][epoch]], epoch
        for loss in fed["steps"][epoch]:
            scheduler.record(loss)
        scheduler.step(fed["eval"][epoch])
    assert [f"FastEstimator-ARC: Multiplying LR by {m}" for _, m in scheduler.decisions] == fe_lines


def train(model, optimizer, scheduler, epochs, data, stop_after_steps=None):
    """A plain PyTorch loop; returns the LR of every epoch. Stops mid-epoch after `stop_after_steps` steps."""
    x, y = data
    lrs, steps = [], 0
    for _ in range(epochs):
        lrs.append([g["lr"] for g in optimizer.param_groups])
        for i in range(0, len(x), 8):
            if steps == stop_after_steps:
                return lrs
            loss = torch.nn.functional.mse_loss(model(x[i:i + 8]), y[i:i + 8])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.record(loss)
            steps += 1
        with torch.no_grad():
            scheduler.step(torch.nn.functional.mse_loss(model(x), y).item())
    return lrs


def build(arc_weights, frequency=3):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.3},
                                 {"params": model[2].parameters(), "lr": 0.03}], momentum=0.9)
    return model, optimizer, ARCScheduler(optimizer, weights=arc_weights, frequency=frequency)


@pytest.mark.parametrize("frequency", [2, 3])
def test_save_and_restore_mid_run_changes_nothing(arc_weights, tmp_path, frequency):
    g = torch.Generator().manual_seed(1)
    data = (torch.randn(40, 4, generator=g), torch.randn(40, 1, generator=g))
    model, optimizer, scheduler = build(arc_weights, frequency)
    straight = train(model, optimizer, scheduler, 16, data)

    model_a, optimizer_a, scheduler_a = build(arc_weights, frequency)
    cut = 3 * frequency + 1  # full epochs before the checkpoint, which is taken 2 steps into the next one
    first = train(model_a, optimizer_a, scheduler_a, 16, data, stop_after_steps=5 * cut + 2)
    torch.save({"model": model_a.state_dict(), "optimizer": optimizer_a.state_dict(),
                "scheduler": scheduler_a.state_dict()}, tmp_path / "ck.pt")
    assert len(first) == cut + 1 and len(scheduler_a.state_dict()["pending"]) == 2
    checkpoint = torch.load(tmp_path / "ck.pt", weights_only=True)
    model_b, optimizer_b, scheduler_b = build(arc_weights, frequency)
    model_b.load_state_dict(checkpoint["model"])
    optimizer_b.load_state_dict(checkpoint["optimizer"])
    scheduler_b.load_state_dict(checkpoint["scheduler"])
    assert scheduler_b.state_dict() == scheduler_a.state_dict()
    # finish the interrupted epoch (3 steps left of 5), then the remaining epochs
    x, y = data
    for i in range(16, 40, 8):
        loss = torch.nn.functional.mse_loss(model_b(x[i:i + 8]), y[i:i + 8])
        optimizer_b.zero_grad()
        loss.backward()
        optimizer_b.step()
        scheduler_b.record(loss)
    with torch.no_grad():
        scheduler_b.step(torch.nn.functional.mse_loss(model_b(x), y).item())
    rest = train(model_b, optimizer_b, scheduler_b, 16 - len(first), data)
    assert first + rest == straight
    assert scheduler_b.decisions == scheduler.decisions and scheduler_b.get_last_lr() == scheduler.get_last_lr()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model_b.state_dict().values()))


def test_two_parameter_groups_keep_their_ratio_and_group_0_follows_fastestimators_rule(arc_weights):
    one = ARCScheduler(sgd(0.02), weights=arc_weights)
    two = ARCScheduler(sgd(0.02, 0.0007), weights=arc_weights)
    for steps, eval_loss in synthetic_run(5, 22):
        for loss in steps:
            one.record(loss)
            two.record(loss.item())
        before = two.get_last_lr()
        one.step(eval_loss)
        two.step(eval_loss)
        after = two.get_last_lr()
        assert after[0] == one.get_last_lr()[0]  # ARC reads group 0, as FE's get_lr does
        m = two.last_multiplier
        assert after == ([float(np.float32(lr * m)) for lr in before] if m is not None else before)
        assert after[0] / after[1] == pytest.approx(0.02 / 0.0007, rel=1e-6)
    assert len(two.decisions) == 7
    if PUBLISHED_ARC.is_file():
        assert two.get_last_lr()[0] != 0.02  # the published model does change the LR on this run


def test_weights_found_in_fastestimators_cache_directory(arc_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(DataError, match="fastestimator_data/arc_model/arc.h5"):
        ARCScheduler(sgd(0.1))
    cache = tmp_path / "fastestimator_data" / "arc_model" / "arc.h5"
    cache.parent.mkdir(parents=True)
    shutil.copy(arc_weights, cache)
    assert ARCScheduler(sgd(0.1)).weights == str(cache)
    with pytest.raises(DataError, match="not found"):
        ARCScheduler(sgd(0.1), weights=tmp_path / "missing.h5")


def test_clear_errors(arc_weights):
    scheduler = ARCScheduler(sgd(0.1), weights=arc_weights)
    scheduler.step(1.0)
    with pytest.raises(ValueError, match="every epoch or at none"):
        scheduler.step()
    with pytest.raises(ValueError, match="scalar loss"):
        scheduler.record(torch.ones(3))
    silent = ARCScheduler(sgd(0.1), weights=arc_weights)
    silent.step()
    silent.step()
    with pytest.raises(RuntimeError, match=r"record\(loss\)"):
        silent.step()  # epoch 4 is a decision and no loss was ever recorded
    other = ARCScheduler(sgd(0.1), weights=arc_weights, frequency=2)
    with pytest.raises(ValueError, match="frequency=3"):
        other.load_state_dict(scheduler.state_dict())
    with pytest.raises(TypeError):
        ARCScheduler(torch.nn.Linear(1, 1), weights=arc_weights)


def test_is_a_torch_lr_scheduler(arc_weights):
    scheduler = ARCScheduler(sgd(0.1, 0.2), weights=arc_weights)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler)
    assert scheduler.get_last_lr() == [0.1, 0.2] and scheduler.last_epoch == 0 and scheduler.base_lrs == [0.1, 0.2]
