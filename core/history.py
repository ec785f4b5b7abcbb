"""What a training run records: every step's loss, each epoch's eval loss/metric and the LR in force.

This is exactly what an LR controller such as ARC reads (docs/experiments.md §5.2), so controllers receive the
RunHistory itself rather than a hand-picked summary.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas loads in the two frame methods only: ARC inference (arc_model.ARCScheduler) runs without it
    import pandas as pd


@dataclass
class RunHistory:
    step_loss: list[float] = field(default_factory=list)  # every training step, in order
    epoch_steps: list[int] = field(default_factory=list)  # number of training steps in each epoch
    epoch_lr: list[float] = field(default_factory=list)  # LR in force at the end of each epoch
    eval_loss: list[float] = field(default_factory=list)  # mean eval loss after each epoch
    eval_metric: list[float] = field(default_factory=list)  # task metric after each epoch
    epoch_seconds: list[float] = field(default_factory=list)
    diverged: bool = False

    @property
    def epochs(self) -> int:
        """Completed epochs (an epoch counts once its eval is recorded)."""
        return len(self.eval_loss)

    def losses_of_epoch(self, epoch: int) -> list[float]:
        """Training-step losses of 1-based `epoch`."""
        start = sum(self.epoch_steps[: epoch - 1])
        return self.step_loss[start : start + self.epoch_steps[epoch - 1]]

    def losses_of_epochs(self, first: int, last: int) -> list[float]:
        """Training-step losses of epochs first..last (1-based, inclusive)."""
        start = sum(self.epoch_steps[: first - 1])
        stop = sum(self.epoch_steps[:last])
        return self.step_loss[start:stop]

    def best_metric(self, mode: str) -> tuple[float, int]:
        """(best value, 1-based epoch) over evaluated epochs; NaN values never win."""
        values = [v if math.isfinite(v) else math.nan for v in self.eval_metric]
        finite = [(v, i + 1) for i, v in enumerate(values) if not math.isnan(v)]
        if not finite:
            return math.nan, 0
        pick = max if mode == "max" else min
        return pick(finite, key=lambda pair: pair[0])

    def epoch_frame(self) -> pd.DataFrame:
        """One row per completed epoch: the structured record written as Parquet."""
        import pandas as pd

        rows = []
        for e in range(1, self.epochs + 1):
            losses = self.losses_of_epoch(e)
            rows.append(
                {
                    "epoch": e,
                    "steps": self.epoch_steps[e - 1],
                    "train_loss_mean": float(sum(losses) / len(losses)) if losses else math.nan,
                    "eval_loss": self.eval_loss[e - 1],
                    "eval_metric": self.eval_metric[e - 1],
                    "lr": self.epoch_lr[e - 1],
                    "seconds": self.epoch_seconds[e - 1],
                }
            )
        return pd.DataFrame(rows, columns=["epoch", "steps", "train_loss_mean", "eval_loss", "eval_metric", "lr", "seconds"])

    def step_frame(self) -> pd.DataFrame:
        """One row per training step (epoch, loss); what data generation stores for ARC's input."""
        import pandas as pd

        epochs = [e + 1 for e, n in enumerate(self.epoch_steps) for _ in range(n)]
        epochs += [len(self.epoch_steps) + 1] * (len(self.step_loss) - len(epochs))  # partial epoch (divergence)
        return pd.DataFrame({"epoch": epochs, "loss": self.step_loss})

    def state_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_state_dict(cls, state: dict) -> "RunHistory":
        return cls(**state)
