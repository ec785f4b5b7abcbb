"""ARC as a PyTorch Lightning callback: `Trainer(callbacks=[ARCCallback(weights="arc.h5")])`.

A thin wrapper on arc_model.ARCScheduler, which does all of ARC's bookkeeping (docs/experiments.md §5):
  * training loss: `on_train_batch_end` reads the loss `training_step` returned (Lightning's `outputs["loss"]`),
    one record per optimizer step: with `accumulate_grad_batches=k` Lightning hands over each micro-batch's loss
    divided by k, whose sum over the k micro-batches is the step's mean loss [I];
  * validation loss: `trainer.callback_metrics[monitor]` after each validation run (log it with
    `self.log("val_loss", loss)` in `validation_step`); without validation ARC's val channel is zeros (§5.3);
  * epoch end: `on_train_epoch_end` (Lightning runs the epoch's validation before it) steps the scheduler, which
    scales every parameter group of the optimizer; a Lightning LR scheduler's base_lrs follow (integrations.follow);
  * checkpoint: `state_dict` / `load_state_dict` (Lightning's Callback state, under checkpoint["callbacks"]), so
    `trainer.fit(model, ckpt_path=...)` resumes with ARC's history; ModelCheckpoint runs after every other callback
    (Lightning orders it last), so an end-of-epoch checkpoint holds the epoch's decision. A checkpoint taken
    mid-epoch holds the epoch's losses so far; Lightning itself resumes such a run only approximately.
Imports Lightning (and nothing of transformers itself; Lightning's torchmetrics imports transformers when it is
installed). Example: examples/lightning_callback.py; tests: tests/test_lightning_callback.py.
"""
from __future__ import annotations

from collections.abc import Mapping

import lightning.pytorch as pl

from arc_model.integrations import follow, weights_file
from arc_model.scheduler import ARCScheduler


class ARCCallback(pl.Callback):
    """ARC every `frequency` epochs on the trainer's (single) optimizer; `scheduler` is the ARCScheduler once
    training has started (`decisions`, `get_last_lr()`); `verbose=True` prints one line per ARC call."""

    def __init__(self, weights=None, frequency: int = 3, monitor: str = "val_loss", use_val_loss: bool = True,
                 preprocessing: str = "repo", verbose: bool = False):
        self.weights = weights_file(weights)
        self.options = {"frequency": frequency, "use_val_loss": use_val_loss, "preprocessing": preprocessing,
                        "verbose": verbose}
        self.monitor = monitor
        self.scheduler: ARCScheduler | None = None
        self._restored: dict | None = None  # a checkpoint's state, loaded before the optimizer exists
        self._step_loss = None  # this optimizer step's loss so far (micro-batches)
        self._stepped = False
        self._val_loss: float | None = None

    @property
    def decisions(self) -> list[tuple[int, float]]:
        return self.scheduler.decisions if self.scheduler is not None else []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if len(trainer.optimizers) != 1:
            raise ValueError(f"ARCCallback: one optimizer expected, configure_optimizers gave "
                             f"{len(trainer.optimizers)}")
        # built here, after Lightning has restored the optimizer (its LRs) from a checkpoint
        self.scheduler = ARCScheduler(trainer.optimizers[0], weights=self.weights, **self.options)
        if self._restored is not None:
            self.scheduler.load_state_dict(self._restored)
            self._restored = None

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self._stepped = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if loss is not None:  # None: training_step skipped the batch
            loss = loss.detach()
            self._step_loss = loss if self._step_loss is None else self._step_loss + loss
        if self._stepped and self._step_loss is not None:
            self.scheduler.record(self._step_loss)
            self._step_loss, self._stepped = None, False

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise ValueError(f"ARCCallback: validation logged no {self.monitor!r} (logged: "
                             f"{sorted(trainer.callback_metrics)}); self.log({self.monitor!r}, loss) in "
                             "validation_step, or ARCCallback(monitor=<its name>)")
        self._val_loss = float(value)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.scheduler.step(self._val_loss)
        self._val_loss = None
        for config in trainer.lr_scheduler_configs:
            follow(config.scheduler, self.scheduler.last_multiplier)

    def state_dict(self) -> dict:
        return self.scheduler.state_dict() if self.scheduler is not None else dict(self._restored or {})

    def load_state_dict(self, state_dict: dict) -> None:
        if not state_dict:
            return
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state_dict)
        else:
            self._restored = dict(state_dict)
