"""LR schedules as FastEstimator-Trace-style hooks that the training loop calls.

Two hook points (issue #2):
  * `on_epoch_begin(epoch, history, lr)` — epoch-boundary controllers (constant, cosine, ARC, ...)
    see the whole RunHistory and return the LR for the coming epoch;
  * `on_step_begin(step, epoch, lr)` — per-step schedules (super-convergence) return the LR for
    the coming step. Only schedules with `per_step = True` are called here, keeping the loop lean.
Optional observers `on_step_end` / `on_eval_end` exist for controllers that need them.
Epochs and steps are 1-based, as in FastEstimator. A schedule that carries state implements
`state_dict` / `load_state_dict` so checkpoints resume it exactly.
"""
from __future__ import annotations

from core.history import RunHistory


class Schedule:
    """Base class: keeps the LR unchanged. Subclasses override the hooks they need."""

    per_step = False  # the loop calls on_step_begin only when True

    def on_train_begin(self, lr0: float, steps_per_epoch: int, epochs: int) -> None:
        """Told once per run (also after a resume) what the run looks like."""

    def on_epoch_begin(self, epoch: int, history: RunHistory, lr: float) -> float:
        return lr

    def on_step_begin(self, step: int, epoch: int, lr: float) -> float:
        return lr

    def log_lines(self) -> list[str]:
        """Non-record lines to write to the run's log after the last hook (e.g. ARC decisions)."""
        return []

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class Constant(Schedule):
    """BLR: the initial LR for the whole run (SPEC §7.4)."""
