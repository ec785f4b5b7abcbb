"""arc_model.integrations.lightning.ARCCallback: ARC in PyTorch Lightning, a thin wrapper on ARCScheduler.

* fed a fixed sequence of step and validation losses, it sets the LRs ARCScheduler sets (every parameter group,
  also under a Lightning LR scheduler, whose base_lrs follow ARC);
* a run interrupted after 5 epochs and resumed from Lightning's checkpoint (`fit(ckpt_path=...)`) has the same LR
  at every epoch and the same decisions as an uninterrupted one.
The published arc.h5 when present (conftest.PUBLISHED_ARC; decisions vary), else a random ARC network.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

pl = pytest.importorskip("lightning.pytorch")

from arc_model import ARCScheduler  # noqa: E402
from arc_model.integrations.lightning import ARCCallback  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUIET = {"accelerator": "cpu", "devices": 1, "logger": False, "enable_progress_bar": False,
         "enable_model_summary": False, "num_sanity_val_steps": 0}


class LRProbe(pl.Callback):
    """Each epoch's LRs (every group) as the epoch's first and last batch see them."""

    def __init__(self):
        self.first, self.last = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        lrs = [g["lr"] for g in trainer.optimizers[0].param_groups]
        if batch_idx == 0:
            self.first.append(lrs)
        self.last = self.last[:len(self.first) - 1] + [lrs]


class Fixed(pl.LightningModule):
    """training_step returns losses[epoch][batch] (with a graph), validation logs val[epoch]."""

    def __init__(self, losses, val, constant_schedule: bool):
        super().__init__()
        self.a, self.b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
        self.losses, self.val, self.constant_schedule = losses, val, constant_schedule

    def training_step(self, batch, batch_idx):
        return (self.a * 0).sum() + (self.b * 0).sum() + self.losses[self.current_epoch][batch_idx]

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.val[self.current_epoch])

    def configure_optimizers(self):
        optimizer = torch.optim.SGD([{"params": [self.a], "lr": 0.1}, {"params": [self.b], "lr": 0.003}])
        if not self.constant_schedule:
            return optimizer
        # a closed-form schedule (base_lr x 1 at every step) would undo ARC's change after one step without follow()
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@pytest.mark.parametrize("constant_schedule", [False, True])
def test_same_lrs_as_arc_scheduler_for_a_fixed_loss_sequence(arc_weights, constant_schedule):
    epochs, steps = 11, 6
    rng = np.random.default_rng(4)
    losses = [[float(np.float32(2.0 * 0.9 ** e * rng.uniform(0.7, 1.3))) for _ in range(steps)] for e in range(epochs)]
    val = [float(np.float32(2.2 * 0.9 ** e * rng.uniform(0.9, 1.1))) for e in range(epochs)]
    probe, arc = LRProbe(), ARCCallback(weights=arc_weights, frequency=3)
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[arc, probe], enable_checkpointing=False, **QUIET)
    trainer.fit(Fixed(losses, val, constant_schedule), DataLoader(TensorDataset(torch.zeros(steps, 1)), batch_size=1),
                DataLoader(TensorDataset(torch.zeros(1, 1)), batch_size=1))

    reference = ARCScheduler(torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": 0.1},
                                              {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.003}]),
                             weights=arc_weights, frequency=3)
    expected = [reference.get_last_lr()]
    for e in range(epochs):
        for loss in losses[e]:
            reference.record(loss)
        reference.step(val[e])
        expected.append(reference.get_last_lr())
    assert probe.first == expected[:epochs] and probe.last == expected[:epochs]  # the LR holds for the whole epoch
    assert arc.decisions == reference.decisions and [d[0] for d in arc.decisions] == [4, 7, 10]
    assert trainer.optimizers[0].param_groups[0]["lr"] == expected[-1][0]


class Regression(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))

    def training_step(self, batch, batch_idx):
        return torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


class Interrupted(Exception):
    pass


class Interrupt(pl.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 5:  # after the checkpoint of epoch 5 (0-based 4) was written
            raise Interrupted


def test_interrupted_and_resumed_run_takes_the_same_decisions(arc_weights, tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 8, generator=g)
    y = torch.sin(x[:, :1] * 2) + 0.1 * torch.randn(96, 1, generator=g)
    loaders = (DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16), DataLoader(TensorDataset(x[64:], y[64:]),
                                                                                     batch_size=32))

    def fit(directory, *extra, ckpt_path=None):
        probe, arc = LRProbe(), ARCCallback(weights=arc_weights, frequency=2)
        checkpoint = pl.callbacks.ModelCheckpoint(dirpath=directory, filename="{epoch}", save_top_k=-1)
        trainer = pl.Trainer(max_epochs=12, callbacks=[arc, probe, checkpoint, *extra], **QUIET)
        trainer.fit(Regression(), *loaders, ckpt_path=ckpt_path)
        return probe.first, arc

    straight, arc = fit(tmp_path / "straight")
    with pytest.raises(Interrupted):
        fit(tmp_path / "cut", Interrupt())
    saved = torch.load(tmp_path / "cut" / "epoch=4.ckpt", weights_only=False)["callbacks"]
    assert [state["last_epoch"] for key, state in saved.items() if "ARCCallback" in key] == [5]
    resumed, arc_resumed = fit(tmp_path / "resumed", ckpt_path=tmp_path / "cut" / "epoch=4.ckpt")
    assert len(straight) == 12 and len(resumed) == 7  # epochs 6-12
    assert resumed == straight[5:]
    assert arc_resumed.decisions == arc.decisions and len(arc.decisions) == 6  # epochs 3, 5, ..., 13
