"""The training core: exact resume, divergence handling, schedule hooks, recorded history."""
from __future__ import annotations

import math

import pytest
import torch

from core.history import RunHistory
from core.optim import optimizer_factory
from core.schedules import Schedule
from core.tasks.digits import DigitsCNN
from core.training import Run, load_checkpoint
from core.errors import CheckpointError


def small_task():
    return DigitsCNN(width=4, n_train=200, batch_size=32)


def params(run):
    return torch.cat([p.detach().flatten() for p in run.model.parameters()])


class Dropout(DigitsCNN):
    """Digits CNN with dropout so the global torch RNG matters during training."""

    def build_model(self):
        return torch.nn.Sequential(torch.nn.Dropout(0.3), super().build_model())


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_resume_is_bit_exact(tmp_path, optimizer):
    task = Dropout(width=4, n_train=200, batch_size=32)
    factory = optimizer_factory(optimizer, momentum=0.9 if optimizer == "sgd" else 0.0)
    straight = Run(task, factory, 0.01, seed=3)
    straight.train(5)

    first = Run(task, factory, 0.01, seed=3)
    first.train(2)
    first.save(tmp_path / "ck.pt")
    torch.manual_seed(12345)  # disturb every global RNG between save and restore
    resumed = Run(task, factory, 0.01, seed=99)
    resumed.restore(tmp_path / "ck.pt")
    resumed.train(3)

    assert torch.equal(params(straight), params(resumed))
    assert straight.history.step_loss == resumed.history.step_loss
    assert straight.history.eval_loss == resumed.history.eval_loss
    assert resumed.global_step == straight.global_step == 5 * 7


def test_history_records_every_step_eval_and_lr():
    run = Run(small_task(), "adam", 1e-3, seed=0)
    history = run.train(3)
    assert history.epoch_steps == [7, 7, 7]  # 200 samples / batch 32, last partial batch kept
    assert len(history.step_loss) == 21
    assert len(history.eval_loss) == len(history.eval_metric) == len(history.epoch_lr) == 3
    assert history.losses_of_epochs(2, 3) == history.step_loss[7:]
    frame = history.epoch_frame()
    assert list(frame.epoch) == [1, 2, 3] and frame.lr.tolist() == [1e-3] * 3


def test_divergence_stops_cleanly_and_keeps_history():
    run = Run(small_task(), "sgd", 1e30, seed=0)
    history = run.train(5)
    assert history.diverged
    assert not math.isfinite(history.step_loss[-1]) or not math.isfinite(history.eval_loss[-1])
    assert history.epochs <= 5 and len(history.step_loss) >= 1
    assert history.step_frame().shape[0] == len(history.step_loss)


class Recorder(Schedule):
    per_step = True

    def __init__(self):
        self.epoch_calls, self.step_calls = [], []

    def on_epoch_begin(self, epoch, history, lr):
        self.epoch_calls.append((epoch, history.epochs, len(history.step_loss)))
        return lr * 0.5 if epoch == 2 else lr

    def on_step_begin(self, step, epoch, lr):
        self.step_calls.append(step)
        return lr


def test_schedule_hooks_see_history_and_set_lr():
    schedule = Recorder()
    run = Run(small_task(), "adam", 1e-3, schedule=schedule, seed=0)
    history = run.train(3)
    # epoch e begins after e-1 evaluated epochs and all their steps
    assert schedule.epoch_calls == [(1, 0, 0), (2, 1, 7), (3, 2, 14)]
    assert schedule.step_calls == list(range(1, 22))
    assert history.epoch_lr == [1e-3, 5e-4, 5e-4]


def test_unreadable_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_history_roundtrip():
    h = RunHistory(step_loss=[1.0, 2.0], epoch_steps=[2], epoch_lr=[0.1], eval_loss=[0.5], eval_metric=[0.9],
                   epoch_seconds=[0.1])
    assert RunHistory.from_state_dict(h.state_dict()) == h
    assert h.best_metric("max") == (0.9, 1)
