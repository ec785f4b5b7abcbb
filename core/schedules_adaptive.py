"""Beyond the paper: LR controllers that react to the run without a learned model.

Both use one configuration for every task (configs/schedule/{plateau,greedy}.yaml) and, like ARC,
only look at the run's recorded history at epoch boundaries.
"""
from __future__ import annotations

import math

import torch

from core.schedules import Schedule, check_frequency, is_decision_epoch


class ReduceOnPlateau(Schedule):
    """torch's ReduceLROnPlateau on the eval loss, stepped once per completed epoch.

    torch's class drives an optimizer, so it gets a one-parameter stand-in optimizer whose LR mirrors
    the run's; its counters live in state_dict so resume is exact.
    """

    def __init__(self, factor: float = 0.5, patience: int = 2, threshold: float = 1e-4, min_lr: float = 1e-6):
        self._holder = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self._holder, mode="min", factor=factor, patience=patience, threshold=threshold, min_lr=min_lr)

    def on_epoch_begin(self, epoch, history, lr):
        if history.epochs == 0:
            return lr
        for group in self._holder.param_groups:
            group["lr"] = lr
        loss = history.eval_loss[-1]
        self.plateau.step(loss if math.isfinite(loss) else math.inf)
        return self._holder.param_groups[0]["lr"]

    def state_dict(self):
        return self.plateau.state_dict()

    def load_state_dict(self, state):
        self.plateau.load_state_dict(state)


class GreedyLR(Schedule):
    """ARC's decision without a learned model: every `frequency` epochs (same call epochs as ARC,
    docs/experiments.md §5.1: e > 1 and (e % f == 1 or f == 1)) multiply the LR by `raise_factor` if the eval loss
    improved over the last cycle, else by `lower_factor`.

    "Improved" compares the eval loss at the end of the last cycle with the one `frequency` epochs
    earlier (epoch 1's at the first call; no decision
    when there is nothing earlier) and needs a relative gain above `min_improvement`.
    A non-finite loss counts as a stall.
    """

    def __init__(self, frequency: int = 3, raise_factor: float = 1.618, lower_factor: float = 0.618,
                 min_improvement: float = 0.0):
        check_frequency(frequency)
        self.frequency, self.raise_factor, self.lower_factor = frequency, raise_factor, lower_factor
        self.min_improvement = min_improvement
        self._lines: list[str] = []

    def on_epoch_begin(self, epoch, history, lr):
        self._lines = []
        f = self.frequency
        earlier = max(epoch - 1 - f, 1)  # 1-based epoch the last cycle is compared with
        if not is_decision_epoch(epoch, f) or earlier == epoch - 1:
            return lr
        last, before = history.eval_loss[epoch - 2], history.eval_loss[earlier - 1]
        improved = math.isfinite(last) and last < before * (1 - self.min_improvement)
        factor = self.raise_factor if improved else self.lower_factor
        self._lines = [f"multiplying lr by {factor}"]
        return lr * factor

    def log_lines(self):
        return self._lines
