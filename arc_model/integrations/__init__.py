"""ARC as a callback of other training frameworks: thin wrappers that feed an arc_model.ARCScheduler.

  * `arc_model.integrations.lightning.ARCCallback` — PyTorch Lightning (`pip install ".[lightning]"`);
  * `arc_model.integrations.huggingface.ARCCallback` — transformers.Trainer (`pip install ".[hf]"`).

Each records every optimizer step's training loss, steps the scheduler with the epoch's validation loss, and keeps
ARC's state in the framework's checkpoint, so a resumed run takes the same decisions (tests/test_lightning_callback.py, tests/test_hf_callback.py).
This package imports neither framework: each module imports only its own (tests/test_packaging.py).
Runnable scripts: examples/lightning_callback.py, examples/hf_trainer_callback.py.
"""
from __future__ import annotations

from pathlib import Path

from arc_model.decider import next_lr
from arc_model.scheduler import resolve_weights
from core.errors import DataError


def weights_file(weights) -> str:
    """The arc.h5 a callback will load (arc_model.scheduler.resolve_weights), checked when the callback is built
    rather than when training starts: a missing file is one DataError naming it."""
    path = Path(resolve_weights(weights))
    if not path.is_file():
        raise DataError(f"ARC weights file not found: {path}")
    return str(path)


def follow(lr_scheduler, multiplier: float | None) -> None:
    """Scale a framework LR scheduler's `base_lrs` by ARC's multiplier, as ARC scaled the optimizer's LRs.

    Closed-form torch schedulers (LambdaLR: transformers' "constant" and "linear" schedules) set each group's LR to
    base_lr x factor(step) at every step and would undo ARC's change after one step; with base_lrs scaled, the
    schedule's shape multiplies ARC's LR [I] (the paper runs ARC alone: use a constant schedule for that).
    Chainable schedulers (StepLR, ExponentialLR) read the group's LR and need nothing. No-op for None."""
    if multiplier is None or lr_scheduler is None:
        return
    lr_scheduler = getattr(lr_scheduler, "scheduler", lr_scheduler)  # accelerate's AcceleratedScheduler wraps one
    if hasattr(lr_scheduler, "base_lrs"):
        lr_scheduler.base_lrs = [next_lr(float(lr), multiplier) for lr in lr_scheduler.base_lrs]
