"""ARC as a FastEstimator Trace: FE 1.7's `LRScheduler(lr_fn="arc")` with a configurable arc.h5, as a thin wrapper
on arc_model.scheduler.ARCScheduler (which takes every decision and keeps ARC's state).

FE's hooks, as fastestimator/trace/adapt/lr_scheduler.py uses them: step losses at train batch end, the LR at train
epoch end, the eval loss at eval epoch end, the decision at the next train epoch begin. At that begin the Trace steps
the scheduler with the epoch just finished and sets the scheduler's LR on the model with FE's `set_lr`. The
scheduler drives a one-parameter optimizer that holds the model's LR (arc_model.scheduler's `lr_register`), so the
Trace serves FE's TensorFlow models as well as its PyTorch ones. The weights come from a path you choose (FE
downloads its own into ~/fastestimator_data) and the network runs in PyTorch on CPU. Imports FastEstimator, so it
lives apart from the scheduler. `decisions` lists (epoch, multiplier) as ARCScheduler's does; `verbose=True` adds
arc_model.scheduler.decision_line (epoch, action, new LR) after FE's own line. Example: examples/fastestimator_trace.py.
"""
from __future__ import annotations

from typing import Iterable, Union

import numpy as np
from fastestimator.backend import get_lr, set_lr
from fastestimator.trace.trace import Trace
from fastestimator.util.data import Data
from fastestimator.util.util import to_number

from arc_model.decider import required_weights
from arc_model.scheduler import ARCScheduler, decision_line, lr_register


class ARCTrace(Trace):
    """`fe.Estimator(..., traces=[ARCTrace(model, weights="arc.h5")])` — model built with fe.build."""

    def __init__(self, model, weights: str, frequency: int = 3, preprocessing: str = "repo",
                 ds_id: Union[None, str, Iterable[str]] = None, verbose: bool = False):
        self.model = model
        self.scheduler = ARCScheduler(lr_register(), required_weights(weights), frequency, preprocessing=preprocessing)
        self.verbose = bool(verbose)
        self._epoch_lr: float | None = None  # the LR at the last train epoch end (FE's accumulate_all_lrs)
        self._eval_loss: float | None = None  # the last eval epoch's loss, until the scheduler takes it
        super().__init__(outputs=model.model_name + "_lr", ds_id=ds_id)

    @property
    def decisions(self) -> list[tuple[int, float]]:
        return self.scheduler.decisions

    def on_begin(self, data: Data) -> None:
        assert len(self.model.loss_name) == 1, "arc can only work with single model loss"
        self.loss_key = min(self.model.loss_name)

    def on_epoch_begin(self, data: Data) -> None:
        if self.system.mode != "train" or self._epoch_lr is None:
            return
        self.scheduler.optimizer.param_groups[0]["lr"] = self._epoch_lr
        self.scheduler.step(self._eval_loss)  # the epoch just finished; decides when this epoch is a decision epoch
        self._epoch_lr, self._eval_loss = None, None
        multiplier = self.scheduler.last_multiplier
        if multiplier is not None:
            set_lr(self.model, self.scheduler.get_last_lr()[0])
            print(f"FastEstimator-ARC: Multiplying LR by {multiplier}")
            if self.verbose:
                print(decision_line(self.system.epoch_idx, multiplier, float(get_lr(model=self.model))))

    def on_batch_end(self, data: Data) -> None:
        if self.system.mode == "train":
            self.scheduler.record(to_number(data[self.loss_key]))
            if self.system.log_steps and (self.system.global_step % self.system.log_steps == 0
                                          or self.system.global_step == 1):
                data.write_with_log(self.outputs[0], np.float32(get_lr(self.model)))

    def on_epoch_end(self, data: Data) -> None:
        if self.system.mode == "train":
            self._epoch_lr = float(get_lr(model=self.model))
        elif self.system.mode == "eval":
            self._eval_loss = float(to_number(data[self.loss_key]))
