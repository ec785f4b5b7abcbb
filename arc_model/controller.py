"""The on-line ARC controller (docs/experiments.md §5), exact to FastEstimator 1.7's `LRScheduler(lr_fn="arc")`.

Two front ends share one decision function (`ARCDecider`):
  * `ARCSchedule` — a core.schedules.Schedule for core.training.Run (benchmarks): reads RunHistory;
  * `ARCController` — a plain object for any PyTorch loop: feed step and eval losses, ask for the LR
    (or let it set the optimizer's). The FastEstimator Trace is arc_model.fe_trace.ARCTrace.

When it acts (docs/experiments.md §5.1): at the start of training epoch e (1-based) when e > 1 and
(e % frequency == 1 or frequency == 1). What it sees (docs/experiments.md §5.2): the last <= 3 completed cycles of
`frequency` epochs: every step's training loss, every epoch's eval loss, and the LR in force at the
end of each cycle. New LR = float32(LR x {1.618, 1.0, 0.618}[argmax]), as FE computes it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from arc_model.preprocess import check_preprocessing, online_input
from arc_model.weights import load_keras_h5
from core.errors import ConfigError
from core.history import RunHistory
from core.optim import get_lr
from core.points import ACTIONS
from core.schedules import Schedule, check_frequency, is_decision_epoch

CYCLES = 3  # history window: FE's deque(maxlen=3)


def history_cycles(history: RunHistory, epoch: int, frequency: int, use_val_loss: bool = True):
    """FE's three deques at the start of `epoch`, rebuilt from the history of completed epochs.

    A cycle is pushed at the end of epochs frequency, 2*frequency, ...; unseen slots are None.
    Eval losses join only where the history has them (none at all -> zeros channel, docs/experiments.md §5.3).
    """
    completed = (epoch - 1) // frequency
    train, val, lrs = [None] * CYCLES, [None] * CYCLES, [None] * CYCLES
    for slot, cycle in zip(range(CYCLES - 1, -1, -1), range(completed, max(completed - CYCLES, 0), -1)):
        first, last = (cycle - 1) * frequency + 1, cycle * frequency
        train[slot] = list(history.losses_of_epochs(first, last))
        lrs[slot] = history.epoch_lr[last - 1]
        evals = history.eval_loss[first - 1:last] if use_val_loss else []
        val[slot] = list(evals) if evals else None
    return train, val, lrs


class ARCDecider:
    """The ARC network plus preprocessing: history in, LR multiplier out."""

    def __init__(self, weights: str | Path, preprocessing: str = "repo"):
        if not weights:
            raise ConfigError("weights: path to an ARC arc.h5 is required (e.g. the published model or a "
                              "candidate from `make train_arc`)")
        self.preprocessing = check_preprocessing(preprocessing)
        self.weights = str(weights)
        self.model = load_keras_h5(weights).eval()  # ARC runs on CPU, as in FE

    def probabilities(self, train_cycles, val_cycles, lr_cycles) -> np.ndarray:
        x = online_input(train_cycles, val_cycles, lr_cycles, self.preprocessing)
        return self.model.probabilities(x)[0].numpy()

    def multiplier(self, train_cycles, val_cycles, lr_cycles) -> float:
        return ACTIONS[int(np.argmax(self.probabilities(train_cycles, val_cycles, lr_cycles)))]


def next_lr(lr: float, multiplier: float) -> float:
    """FE: `np.float32(get_lr(model) * multiplier)`."""
    return float(np.float32(lr * multiplier))


class ARCSchedule(Schedule):
    """ARC as a core.schedules.Schedule: decides at epochs 4, 7, ... from the run's RunHistory.

    `log_lines()` returns `multiplying lr by <m>` after a decision (the line in the authors' logs, §9.4).
    Missing or unreadable weights fail here, before training starts.
    """

    def __init__(self, weights: str, frequency: int = 3, use_val_loss: bool = True, preprocessing: str = "repo"):
        self.frequency = check_frequency(frequency)
        self.use_val_loss = bool(use_val_loss)
        self.decider = ARCDecider(weights, preprocessing)
        self.decisions: list[tuple[int, float]] = []  # (epoch, multiplier)
        self._pending: list[str] = []

    def on_epoch_begin(self, epoch: int, history: RunHistory, lr: float) -> float:
        self._pending = []
        if not is_decision_epoch(epoch, self.frequency):
            return lr
        multiplier = self.decider.multiplier(*history_cycles(history, epoch, self.frequency, self.use_val_loss))
        self.decisions.append((epoch, multiplier))
        self._pending = [f"multiplying lr by {multiplier}"]
        return next_lr(lr, multiplier)

    def log_lines(self) -> list[str]:
        return list(self._pending)

    def state_dict(self) -> dict:
        return {"decisions": list(self.decisions)}

    def load_state_dict(self, state: dict) -> None:
        self.decisions = [tuple(d) for d in state.get("decisions", [])]


class ARCController:
    """ARC for a hand-written PyTorch loop. Per epoch::

        lr = arc.next_lr()            # start of the epoch (sets `optimizer`'s LR when given)
        arc.record_step(loss)         # after every training step
        arc.end_epoch()               # end of the training epoch (LR read from `optimizer`, or pass lr=)
        arc.record_eval(eval_loss)    # optional, after the epoch's evaluation

    Without `record_eval` calls the val channel is zeros (FE without eval data, docs/experiments.md §5.3).
    """

    def __init__(self, weights: str | Path, frequency: int = 3, use_val_loss: bool = True,
                 preprocessing: str = "repo", optimizer: torch.optim.Optimizer | None = None):
        self.frequency = check_frequency(frequency)
        self.use_val_loss = bool(use_val_loss)
        self.decider = ARCDecider(weights, preprocessing)
        self.optimizer = optimizer
        self.history = RunHistory()
        self._steps = 0  # steps of the epoch in progress
        self.last_multiplier: float | None = None

    @property
    def epoch(self) -> int:
        """Completed training epochs."""
        return len(self.history.epoch_steps)

    def record_step(self, loss) -> None:
        self.history.step_loss.append(float(loss))
        self._steps += 1

    def end_epoch(self, lr: float | None = None) -> None:
        if lr is None:
            if self.optimizer is None:
                raise ValueError("end_epoch needs lr= when the controller has no optimizer")
            lr = get_lr(self.optimizer)
        self.history.epoch_steps.append(self._steps)
        self.history.epoch_lr.append(float(lr))
        self._steps = 0

    def record_eval(self, loss) -> None:
        self.history.eval_loss.append(float(loss))

    def multiplier(self) -> float | None:
        """ARC's multiplier for the coming epoch, or None when this is not a decision epoch."""
        epoch = self.epoch + 1
        if not is_decision_epoch(epoch, self.frequency):
            return None
        return self.decider.multiplier(*history_cycles(self.history, epoch, self.frequency, self.use_val_loss))

    def next_lr(self, lr: float | None = None) -> float:
        """LR for the coming epoch (unchanged between decisions); also set on the optimizer if any."""
        if lr is None:
            if self.optimizer is None:
                raise ValueError("next_lr needs lr= when the controller has no optimizer")
            lr = get_lr(self.optimizer)
        self.last_multiplier = self.multiplier()
        if self.last_multiplier is not None:
            lr = next_lr(lr, self.last_multiplier)
            if self.optimizer is not None:  # every parameter group scaled, so the groups keep their ratios
                for group in self.optimizer.param_groups:
                    group["lr"] = next_lr(group["lr"], self.last_multiplier)
        return lr
