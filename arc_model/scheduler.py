"""ARC as a `torch.optim.lr_scheduler`: `ARCScheduler(optimizer, weights=..., frequency=3)`.

    scheduler = ARCScheduler(optimizer, weights="arc.h5")
    for epoch in range(epochs):
        for x, y in batches:
            loss = step(x, y)
            scheduler.record(loss)          # every training step (a tensor is read once per epoch, not per step)
        scheduler.step(evaluate())          # epoch end, with the epoch's validation loss (or `step()` without)

Same decisions as FastEstimator 1.7's `LRScheduler(lr_fn="arc")` (tests/test_arc_scheduler.py): at the end of
epoch e the scheduler records the LR in force and the epoch's losses, and when epoch e + 1 is a decision epoch
(4, 7, 10, ... for frequency 3; core.schedules.is_decision_epoch) it multiplies every parameter group's LR
by ARC's choice among 1.618 / 1.0 / 0.618, rounded to float32 as FE does (`np.float32(lr * m)`). The history
ARC reads is group 0's LR (FE's `get_lr`); multiplying each group keeps the groups' ratios. The decision logic
is arc_model.decider's (ARCDecider, history_cycles): this module only does the bookkeeping.

`state_dict()` holds everything ARC will read again (the last three cycles of step losses, eval losses and
LRs, plus the epoch in progress), so a run resumed from a checkpoint takes the same decisions. The network's
weights are not in it: they are read again from `weights` when the scheduler is built.

Weights: a path to a Keras `arc.h5` (the published model, or a candidate from `make train_arc`), or None for
FastEstimator's own copy at ~/fastestimator_data/arc_model/arc.h5 when it is there (nothing is downloaded).

`verbose=True` prints one `decision_line` per call (`ARC epoch 4: raise x1.618, lr 0.0809`), the counterpart of
FE's `FastEstimator-ARC: Multiplying LR by 1.618` with the epoch and the new LR; the callbacks of
arc_model.integrations and the examples/ print the same line.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.optim.lr_scheduler import LRScheduler

from arc_model.decider import CYCLES, ARCDecider, history_cycles, next_lr
from core.errors import DataError
from core.history import RunHistory
from core.schedules import check_frequency, is_decision_epoch
from core.points import ACTIONS

STATE_VERSION = 1
ACTION_NAMES = dict(zip(ACTIONS, ("raise", "keep", "decrease")))  # ARC's classes 0, 1, 2 (docs/experiments.md §1)


def decision_line(epoch: int, multiplier: float, lr: float) -> str:
    """One ARC call as printed by `verbose` schedulers and callbacks: the epoch the new LR applies to (1-based),
    the action and group 0's new LR, e.g. `ARC epoch 4: raise x1.618, lr 0.0809`."""
    return f"ARC epoch {epoch}: {ACTION_NAMES[multiplier]} x{multiplier}, lr {lr:.6g}"


def lr_register(lr: float = 1.0) -> torch.optim.Optimizer:
    """An optimizer over one frozen scalar, never stepped: the LR that an ARCScheduler reads and writes when the
    training framework owns the real optimizer and sets the LR itself (core.training.Run through
    arc_model.controller.ARCSchedule; FastEstimator through arc_model.fe_trace.ARCTrace)."""
    return torch.optim.SGD([torch.zeros(())], lr=lr)


def fastestimator_cache() -> Path:
    """Where FastEstimator 1.7's ARC keeps (and would download) the published weights."""
    return Path.home() / "fastestimator_data" / "arc_model" / "arc.h5"


def resolve_weights(weights: str | Path | None) -> Path:
    """`weights` itself, or FastEstimator's cached arc.h5 when `weights` is None; DataError when neither exists."""
    if weights:
        return Path(weights)
    cached = fastestimator_cache()
    if cached.is_file():
        return cached
    raise DataError(f"ARC weights: none given and FastEstimator's cache {cached} does not exist; pass "
                    "weights=<path to arc.h5> (the published model, or a candidate from `make train_arc`)")


def _floats(values: list) -> list[float]:
    """Python floats of recorded losses; tensors are read in one transfer per epoch where possible."""
    if values and all(isinstance(v, torch.Tensor) for v in values):
        try:
            return torch.stack(values).tolist()
        except RuntimeError:  # different devices or dtypes that do not stack
            pass
    return [float(v) for v in values]


class ARCScheduler(LRScheduler):
    """ARC in the conventions of torch.optim.lr_scheduler (`step()` once per epoch, after evaluation).

    Args:
        optimizer: the wrapped optimizer; every parameter group is multiplied, group 0's LR is what ARC reads.
        weights: path to an ARC `arc.h5`, or None for FastEstimator's cached copy (see `resolve_weights`).
        frequency: epochs per ARC cycle; decisions at the start of epochs 1 + k * frequency (k >= 1).
        use_val_loss: False feeds ARC a zeros validation channel even when `step` gets a loss (FE without
            eval data does the same).
        preprocessing: "repo" (the authors' and FE's code, default) or "paper" (the paper's wording).
        verbose: print a `decision_line` at every ARC call.

    Attributes: `decisions` is the list of (epoch, multiplier) taken so far (epoch 1-based: the epoch the new
    LR applies to); `last_epoch` is the number of completed epochs.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, weights: str | Path | None = None, frequency: int = 3,
                 use_val_loss: bool = True, preprocessing: str = "repo", verbose: bool = False):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        # Like ReduceLROnPlateau: a subclass for isinstance checks (e.g. Lightning), without LRScheduler's
        # __init__, which would wrap optimizer.step and take a first step.
        self.optimizer = optimizer
        self.frequency = check_frequency(frequency)
        self.use_val_loss = bool(use_val_loss)
        self.verbose = bool(verbose)
        self.weights = str(resolve_weights(weights))
        self.decider = ARCDecider(self.weights, preprocessing)
        self.preprocessing = self.decider.preprocessing
        self.base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        self._last_lr = list(self.base_lrs)
        self.last_epoch = 0  # completed epochs
        self.decisions: list[tuple[int, float]] = []
        self._history = RunHistory()  # the completed epochs ARC can still see: the last CYCLES full cycles + the rest
        self._offset = 0  # completed epochs dropped from _history (a multiple of frequency)
        self._pending: list = []  # this epoch's step losses (tensors or numbers)
        self._with_val: bool | None = None  # whether step() gets validation losses (fixed by the first step)

    # -- feeding -----------------------------------------------------------------------------------------------
    def record(self, loss) -> None:
        """One training step's loss (a scalar tensor or a number), after the optimizer step."""
        if isinstance(loss, torch.Tensor):
            if loss.numel() != 1:
                raise ValueError(f"record() takes the step's scalar loss, got a tensor of shape {tuple(loss.shape)}")
            loss = loss.detach().reshape(())
        self._pending.append(loss)

    def step(self, val_loss=None) -> None:  # noqa: D401  (torch's name)
        """End of an epoch: record its losses and the LR in force, then set the next epoch's LR.

        `val_loss` is the epoch's validation loss; give it at every epoch or at none (without it ARC's
        validation channel is zeros). The LR changes only before a decision epoch (4, 7, 10, ... for 3).
        """
        with_val = val_loss is not None
        if self._with_val is None:
            self._with_val = with_val
        elif with_val != self._with_val:
            raise ValueError("ARCScheduler.step: give the validation loss at every epoch or at none "
                             f"(epoch {self.last_epoch + 1} {'has' if with_val else 'lacks'} one, earlier epochs "
                             f"{'do not' if with_val else 'did'})")
        history = self._history
        losses = _floats(self._pending)
        history.step_loss.extend(losses)
        history.epoch_steps.append(len(losses))
        history.epoch_lr.append(float(self.optimizer.param_groups[0]["lr"]))
        if with_val:
            history.eval_loss.append(float(val_loss))
        self._pending = []
        self.last_epoch += 1
        self._forget_old_cycles()

        epoch = self.last_epoch + 1  # the coming epoch
        if is_decision_epoch(epoch, self.frequency):
            cycles = history_cycles(history, epoch - self._offset, self.frequency, self.use_val_loss)
            if any(cycle is not None and not cycle for cycle in cycles[0]):
                raise RuntimeError("ARCScheduler: a cycle has no training losses; call scheduler.record(loss) "
                                   "after every optimizer step")
            multiplier = self.decider.multiplier(*cycles)
            for group in self.optimizer.param_groups:
                group["lr"] = next_lr(float(group["lr"]), multiplier)
            self.decisions.append((epoch, multiplier))
        self._last_lr = [float(group["lr"]) for group in self.optimizer.param_groups]
        if self.verbose and self.last_multiplier is not None:
            print(decision_line(epoch, self.last_multiplier, self._last_lr[0]), flush=True)

    def _forget_old_cycles(self) -> None:
        """Keep only the last CYCLES complete cycles (what ARC reads) and the epochs after them."""
        history = self._history
        drop = (len(history.epoch_steps) // self.frequency - CYCLES) * self.frequency
        if drop <= 0:
            return
        del history.step_loss[:sum(history.epoch_steps[:drop])]
        del history.epoch_steps[:drop]
        del history.epoch_lr[:drop]
        del history.eval_loss[:drop]
        self._offset += drop

    # -- torch.optim.lr_scheduler API --------------------------------------------------------------------------
    def get_last_lr(self) -> list[float]:
        """Each parameter group's LR after the last `step()` (at construction: the initial LRs)."""
        return list(self._last_lr)

    def get_lr(self) -> list[float]:
        """The LR of each parameter group now (ARC has no closed form)."""
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    @property
    def last_multiplier(self) -> float | None:
        """The multiplier of the last step() if that step decided, else None."""
        return self.decisions[-1][1] if self.decisions and self.decisions[-1][0] == self.last_epoch + 1 else None

    def state_dict(self) -> dict:
        """Everything ARC reads later, as plain lists and numbers (`torch.load(weights_only=True)` reads it)."""
        history = self._history
        return {
            "version": STATE_VERSION,
            "frequency": self.frequency,
            "use_val_loss": self.use_val_loss,
            "preprocessing": self.preprocessing,
            "weights": self.weights,
            "last_epoch": self.last_epoch,
            "base_lrs": list(self.base_lrs),
            "last_lr": list(self._last_lr),
            "decisions": [[epoch, multiplier] for epoch, multiplier in self.decisions],
            "epoch_offset": self._offset,
            "step_loss": list(history.step_loss),
            "epoch_steps": list(history.epoch_steps),
            "epoch_lr": list(history.epoch_lr),
            "eval_loss": list(history.eval_loss),
            "pending": _floats(self._pending),
            "with_val": self._with_val,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a `state_dict()`; the optimizer's own state (its LRs) is restored by the optimizer."""
        if state_dict.get("version") != STATE_VERSION:
            raise ValueError(f"not an ARCScheduler state (version {state_dict.get('version')!r}, "
                             f"expected {STATE_VERSION})")
        for key in ("frequency", "use_val_loss", "preprocessing"):
            if state_dict[key] != getattr(self, key):
                raise ValueError(f"ARCScheduler.load_state_dict: the state was saved with {key}="
                                 f"{state_dict[key]!r}, this scheduler has {getattr(self, key)!r}")
        steps = [int(n) for n in state_dict["epoch_steps"]]
        if sum(steps) != len(state_dict["step_loss"]) or len(state_dict["epoch_lr"]) != len(steps):
            raise ValueError("ARCScheduler.load_state_dict: inconsistent history (step counts and losses differ)")
        self.last_epoch = int(state_dict["last_epoch"])
        self.base_lrs = [float(v) for v in state_dict["base_lrs"]]
        self._last_lr = [float(v) for v in state_dict["last_lr"]]
        self.decisions = [(int(epoch), float(multiplier)) for epoch, multiplier in state_dict["decisions"]]
        self._offset = int(state_dict["epoch_offset"])
        self._history = RunHistory(step_loss=[float(v) for v in state_dict["step_loss"]], epoch_steps=steps,
                                   epoch_lr=[float(v) for v in state_dict["epoch_lr"]],
                                   eval_loss=[float(v) for v in state_dict["eval_loss"]])
        self._pending = [float(v) for v in state_dict["pending"]]
        self._with_val = state_dict["with_val"]

    def __repr__(self) -> str:
        return (f"ARCScheduler(weights={self.weights!r}, frequency={self.frequency}, epoch={self.last_epoch}, "
                f"lr={self._last_lr})")
