"""arc_model.integrations.huggingface.ARCCallback: ARC in transformers.Trainer, a thin wrapper on ARCScheduler.

* fed a fixed sequence of step and evaluation losses (with gradient accumulation: one loss per optimizer step, the
  mean of its micro-batches), it sets the LRs ARCScheduler sets, on every parameter group and for whole epochs
  (Trainer's constant LambdaLR follows ARC instead of resetting it);
* a run interrupted after 5 epochs and resumed with `train(resume_from_checkpoint=True)` has the same LR at every
  epoch and the same decisions as an uninterrupted one (ARC's state: arc_scheduler.json in the checkpoint);
* resuming from a checkpoint without ARC's state is one error naming the file.
The published arc.h5 when present (conftest.PUBLISHED_ARC; decisions vary), else a random ARC network.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("USE_TF", "0")  # `from transformers import Trainer` imports TensorFlow where it is installed
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # Trainer needs it for PyTorch

from arc_model import ARCScheduler  # noqa: E402
from arc_model.integrations.huggingface import STATE_FILE, ARCCallback  # noqa: E402
from core.errors import DataError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def arguments(output_dir, epochs, **overrides):
    fields = {f.name for f in __import__("dataclasses").fields(transformers.TrainingArguments)}
    eval_key = "eval_strategy" if "eval_strategy" in fields else "evaluation_strategy"
    options = dict(output_dir=str(output_dir), num_train_epochs=epochs, lr_scheduler_type="constant",
                   logging_strategy="no", save_strategy="no", report_to=[], disable_tqdm=True, use_cpu=True, seed=0,
                   remove_unused_columns=False, prediction_loss_only=True, **{eval_key: "epoch"})
    return transformers.TrainingArguments(**{**options, **overrides})


class LRProbe(transformers.TrainerCallback):
    """The LRs (every group) each optimizer step of each epoch used."""

    def __init__(self):
        self.epochs = []

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.epochs.append([])

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        self.epochs[-1].append([g["lr"] for g in optimizer.param_groups])


class Fixed(torch.nn.Module):
    """Training loss: the item's value `v` (with a graph); evaluation loss: val[number of evaluations so far]."""

    def __init__(self, val):
        super().__init__()
        self.a, self.b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
        self.val, self.evals, self.seen = val, 0, []

    def forward(self, v, labels=None):
        zero = (self.a * 0).sum() + (self.b * 0).sum()
        if not self.training:
            self.evals += 1
            return {"loss": zero + self.val[self.evals - 1]}
        self.seen.append(v.sum())
        return {"loss": zero + v.sum()}


def test_same_lrs_as_arc_scheduler_for_a_fixed_loss_sequence(arc_weights, tmp_path):
    epochs, items = 11, 12  # batch 1, 2 micro-batches per optimizer step: 6 steps per epoch
    rng = np.random.default_rng(5)
    values = rng.uniform(0.5, 2.0, size=items).astype(np.float32)
    val = [float(np.float32(2.0 * 0.9 ** e * rng.uniform(0.9, 1.1))) for e in range(epochs)]
    model = Fixed(val)
    optimizer = torch.optim.SGD([{"params": [model.a], "lr": 0.1}, {"params": [model.b], "lr": 0.003}])
    probe, arc = LRProbe(), ARCCallback(weights=arc_weights, frequency=3)
    train = [{"v": torch.tensor(v), "labels": torch.tensor(0.0)} for v in values]
    trainer = transformers.Trainer(model=model, args=arguments(tmp_path, epochs, per_device_train_batch_size=1,
                                                               gradient_accumulation_steps=2),
                                   train_dataset=train, eval_dataset=train[:1], optimizers=(optimizer, None),
                                   callbacks=[arc, probe])
    trainer.train()

    reference = ARCScheduler(torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": 0.1},
                                              {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.003}]),
                             weights=arc_weights, frequency=3)
    assert len(model.seen) == epochs * items and model.evals == epochs
    expected = []
    for e in range(epochs):
        expected.append(reference.get_last_lr())
        seen = model.seen[e * items:(e + 1) * items]
        for i in range(0, items, 2):
            reference.record(torch.stack(seen[i:i + 2]).mean())
        reference.step(val[e])
    assert probe.epochs == [[lrs] * (items // 2) for lrs in expected]  # every step of the epoch at ARC's LR
    assert arc.decisions == reference.decisions and [d[0] for d in arc.decisions] == [4, 7, 10]
    assert arc.scheduler.get_last_lr() == reference.get_last_lr()


class Regression(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))

    def forward(self, x, labels=None):
        return {"loss": torch.nn.functional.mse_loss(self.net(x), labels)}


class Interrupted(Exception):
    pass


class Interrupt(transformers.TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 20:  # the checkpoint of epoch 5 (4 steps an epoch) is written, ARC's state too
            raise Interrupted


@pytest.mark.slow
def test_interrupted_and_resumed_run_takes_the_same_decisions(arc_weights, tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 8, generator=g)
    y = torch.sin(x[:, :1] * 2) + 0.1 * torch.randn(96, 1, generator=g)
    rows = [{"x": a, "labels": b} for a, b in zip(x, y)]

    def train(directory, *extra, resume=None):
        model = Regression()
        probe, arc = LRProbe(), ARCCallback(weights=arc_weights, frequency=2)
        trainer = transformers.Trainer(
            model=model, args=arguments(directory, 10, per_device_train_batch_size=16, save_strategy="epoch"),
            train_dataset=rows[:64], eval_dataset=rows[64:], callbacks=[arc, probe, *extra],
            optimizers=(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), None))
        trainer.train(resume_from_checkpoint=resume)
        return probe.epochs, arc

    straight, arc = train(tmp_path / "straight")
    with pytest.raises(Interrupted):
        train(tmp_path / "cut", Interrupt())
    assert (tmp_path / "cut" / "checkpoint-20" / STATE_FILE).is_file()
    resumed, arc_resumed = train(tmp_path / "cut", resume=True)
    assert len(straight) == 10 and len(resumed) == 5
    assert resumed == straight[5:]
    assert arc_resumed.decisions == arc.decisions and len(arc.decisions) == 5  # epochs 3, 5, 7, 9, 11

    (tmp_path / "cut" / "checkpoint-20" / STATE_FILE).unlink()
    with pytest.raises(DataError, match=f"checkpoint-20/{STATE_FILE}"):
        train(tmp_path / "cut", resume=str(tmp_path / "cut" / "checkpoint-20"))
