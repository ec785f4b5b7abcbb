"""ARC's decision (docs/experiments.md §5), exact to FastEstimator 1.7's `LRScheduler(lr_fn="arc")`: a history
window in, an LR multiplier out.

The API is this decision (`ARCDecider`, `history_cycles`, `next_lr`) and arc_model.scheduler.ARCScheduler, which does
the bookkeeping in torch's conventions. Every other front end is a thin wrapper on the scheduler:
core.training.Run's `schedule=arc` (arc_model.controller.ARCSchedule), FastEstimator's Trace (arc_model.fe_trace),
the Lightning and transformers callbacks (arc_model.integrations).

When it acts (docs/experiments.md §5.1): at the start of training epoch e (1-based) when e > 1 and
(e % frequency == 1 or frequency == 1). What it sees (docs/experiments.md §5.2): the last <= 3 completed cycles of
`frequency` epochs: every step's training loss, every epoch's eval loss, and the LR in force at the
end of each cycle. New LR = float32(LR x {1.618, 1.0, 0.618}[argmax]), as FE computes it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from arc_model.preprocess import check_preprocessing, online_input
from arc_model.weights import load_keras_h5
from core.errors import ConfigError
from core.history import RunHistory
from core.points import ACTIONS

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


def required_weights(weights: str | Path | None) -> str | Path:
    """`weights` when given; a ConfigError when empty (front ends that must not fall back to FastEstimator's cache)."""
    if not weights:
        raise ConfigError("weights: path to an ARC arc.h5 is required (e.g. the published model or a "
                          "candidate from `make train_arc`)")
    return weights


class ARCDecider:
    """The ARC network plus preprocessing: history in, LR multiplier out."""

    def __init__(self, weights: str | Path, preprocessing: str = "repo"):
        required_weights(weights)
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
