"""ARC as a FastEstimator Trace: FE 1.7's `LRScheduler(lr_fn="arc")` with a configurable arc.h5.

Same hooks and bookkeeping as fastestimator/trace/adapt/lr_scheduler.py (step losses at train batch
end, LR at train epoch end, eval loss at eval epoch end, decision at train epoch begin), but the
weights come from a path you choose (FE downloads its own into ~/fastestimator_data) and the network
runs in PyTorch on CPU (arc_model.controller). Imports FastEstimator, so it lives apart from the
controller that core.training uses. `decisions` lists (epoch, multiplier) as ARCScheduler's does; `verbose=True`
adds arc_model.scheduler.decision_line (epoch, action, new LR) after FE's own line. Example:
examples/fastestimator_trace.py.
"""
from __future__ import annotations

from typing import Iterable, Union

import numpy as np
from fastestimator.backend import get_lr, set_lr
from fastestimator.trace.trace import Trace
from fastestimator.util.data import Data
from fastestimator.util.util import to_number

from arc_model.controller import ARCController
from arc_model.scheduler import decision_line


class ARCTrace(Trace):
    """`fe.Estimator(..., traces=[ARCTrace(model, weights="arc.h5")])` — model built with fe.build."""

    def __init__(self, model, weights: str, frequency: int = 3, preprocessing: str = "repo",
                 ds_id: Union[None, str, Iterable[str]] = None, verbose: bool = False):
        self.model = model
        self.controller = ARCController(weights, frequency=frequency, preprocessing=preprocessing)
        self.verbose = bool(verbose)
        self.decisions: list[tuple[int, float]] = []  # (epoch the new LR applies to, multiplier)
        super().__init__(outputs=model.model_name + "_lr", ds_id=ds_id)

    def on_begin(self, data: Data) -> None:
        assert len(self.model.loss_name) == 1, "arc can only work with single model loss"
        self.loss_key = min(self.model.loss_name)

    def on_epoch_begin(self, data: Data) -> None:
        if self.system.mode == "train":
            multiplier = self.controller.multiplier()
            if multiplier is not None:
                set_lr(self.model, np.float32(get_lr(model=self.model) * multiplier))
                print(f"FastEstimator-ARC: Multiplying LR by {multiplier}")
                self.decisions.append((self.system.epoch_idx, multiplier))
                if self.verbose:
                    print(decision_line(self.system.epoch_idx, multiplier, float(get_lr(model=self.model))))

    def on_batch_end(self, data: Data) -> None:
        if self.system.mode == "train":
            self.controller.record_step(to_number(data[self.loss_key]))
            if self.system.log_steps and (self.system.global_step % self.system.log_steps == 0
                                          or self.system.global_step == 1):
                data.write_with_log(self.outputs[0], np.float32(get_lr(self.model)))

    def on_epoch_end(self, data: Data) -> None:
        if self.system.mode == "train":
            self.controller.end_epoch(lr=get_lr(model=self.model))
        elif self.system.mode == "eval":
            self.controller.record_eval(to_number(data[self.loss_key]))
