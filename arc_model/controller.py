"""ARC as a core.schedules.Schedule for core.training.Run (the benchmarks' and the proxy's `schedule=arc`): a thin
wrapper on arc_model.scheduler.ARCScheduler, which takes every decision and keeps every piece of ARC's state.

Run calls `on_epoch_begin(epoch, history, lr)` with the RunHistory of the completed epochs. The wrapper hands the
scheduler each completed epoch it has not seen (its step losses, the LR in force, its eval loss) as a plain PyTorch
loop would, and returns the LR the scheduler set. The scheduler drives arc_model.scheduler's `lr_register`, an
optimizer that only holds that LR: Run owns the real optimizer and sets the returned LR on it.
`log_lines()` gives `multiplying lr by <m>` after a decision (the line of the authors' logs, docs/experiments.md §9.4).
Missing or unreadable weights fail when the schedule is built, before training starts.
"""
from __future__ import annotations

from arc_model.decider import required_weights
from arc_model.scheduler import ARCScheduler, lr_register
from core.history import RunHistory
from core.schedules import Schedule


class ARCSchedule(Schedule):
    """`ARCSchedule(weights, frequency=3)`: decisions at the start of epochs 4, 7, ... (1-based) from the Run's
    history; `decisions` lists (epoch, multiplier) as ARCScheduler's does."""

    def __init__(self, weights: str, frequency: int = 3, use_val_loss: bool = True, preprocessing: str = "repo"):
        self.scheduler = ARCScheduler(lr_register(), required_weights(weights), frequency, use_val_loss, preprocessing)
        self._pending: list[str] = []

    @property
    def decisions(self) -> list[tuple[int, float]]:
        return self.scheduler.decisions

    def on_epoch_begin(self, epoch: int, history: RunHistory, lr: float) -> float:
        self._pending = []
        scheduler = self.scheduler
        register = scheduler.optimizer.param_groups[0]
        for done in range(scheduler.last_epoch + 1, epoch):  # completed epochs the scheduler has not seen
            for loss in history.losses_of_epochs(done, done):
                scheduler.record(loss)
            register["lr"] = history.epoch_lr[done - 1]
            scheduler.step(history.eval_loss[done - 1])
        if scheduler.last_multiplier is None or scheduler.last_epoch != epoch - 1:
            return lr
        self._pending = [f"multiplying lr by {scheduler.last_multiplier}"]
        return scheduler.get_last_lr()[0]

    def log_lines(self) -> list[str]:
        return list(self._pending)

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if set(state) == {"decisions"}:  # a checkpoint written before this wrapper: replayed from the Run's history
            return
        self.scheduler.load_state_dict(state)
