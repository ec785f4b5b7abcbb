"""ARC in PyTorch Lightning: `Trainer(callbacks=[ARCCallback(weights=...)])` (arc_model.integrations.lightning).

    pip install ".[lightning]"; python examples/lightning_callback.py [--weights arc.h5]   # or ARC_WEIGHTS=arc.h5

The LightningModule logs "val_loss" in validation_step; the callback records each step's training loss, feeds ARC
that validation loss at each epoch end, and keeps ARC's state in Lightning's checkpoints. Prints each ARC call and
the final LR.
"""
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from arc_model.integrations.lightning import ARCCallback
from common import EPOCHS, LR0, arc_weights, mlp, regression_data


class Regression(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = mlp()

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR0, momentum=0.9)


weights = arc_weights()
(x, y), (x_val, y_val) = regression_data()
arc = ARCCallback(weights=weights, frequency=3, verbose=True)
trainer = pl.Trainer(max_epochs=EPOCHS, callbacks=[arc], accelerator="cpu", devices=1, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
model = Regression()
print(f"start lr: {LR0}")
trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=32),
            DataLoader(TensorDataset(x_val, y_val), batch_size=len(x_val)))
print(f"final lr: {trainer.optimizers[0].param_groups[0]['lr']!r}")
print(f"decisions: {arc.decisions}")
