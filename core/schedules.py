"""LR schedules as FastEstimator-Trace-style hooks that the training loop calls.

Two hook points:
  * `on_epoch_begin(epoch, history, lr)` — epoch-boundary controllers (constant, cosine, ARC, ...)
    see the whole RunHistory and return the LR for the coming epoch;
  * `on_step_begin(step, epoch, lr)` — per-step schedules (super-convergence) return the LR for
    the coming step. Only schedules with `per_step = True` are called here, keeping the loop lean.
Epochs and steps are 1-based, as in FastEstimator. A schedule that carries state implements
`state_dict` / `load_state_dict` so checkpoints resume it exactly.
"""
from __future__ import annotations

import math

from core.errors import ConfigError
from core.history import RunHistory


def check_frequency(frequency: int) -> int:
    """`frequency` (epochs between two decisions) if it is a positive integer, else a ConfigError naming it."""
    if not isinstance(frequency, int) or isinstance(frequency, bool) or frequency < 1:
        raise ConfigError(f"frequency: must be a positive integer, got {frequency!r}")
    return frequency


def is_decision_epoch(epoch: int, frequency: int) -> bool:
    """Whether a controller called every `frequency` epochs decides at the start of 1-based `epoch`: FastEstimator's
    LRScheduler.on_epoch_begin condition for ARC, epochs 4, 7, 10, ... for frequency 3 (every epoch but the first
    for frequency 1). ARC (arc_model) and its model-free counterpart (core.schedules_adaptive) share it."""
    return epoch > 1 and (epoch % frequency == 1 or frequency == 1)


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
    """BLR: the initial LR for the whole run (docs/experiments.md §7.4)."""


def cosine_decay(time: int, cycle_length: int, init_lr: float, min_lr: float = 1e-6, cycle_multiplier: int = 1) -> float:
    """FastEstimator 1.7.0's `cosine_decay` (start=1, no warm-up): half cosines from init_lr to min_lr.

    Epoch 1 already sits at cos(pi / cycle_length) and each cycle's last epoch is exactly min_lr
    (docs/experiments.md §7.4). With cycle_multiplier > 1 cycle i lasts cycle_length * multiplier**i (SGDR).
    """
    if cycle_multiplier > 1:
        cycle = math.ceil(math.log(time * (cycle_multiplier - 1) / cycle_length + 1) / math.log(cycle_multiplier)) - 1
        done = cycle_length * (cycle_multiplier**cycle - 1) / (cycle_multiplier - 1)
    else:
        cycle = math.ceil(time / cycle_length) - 1
        done = cycle * cycle_length
    fraction = (time - done) / (cycle_length * cycle_multiplier**cycle)
    return (init_lr - min_lr) / 2 * math.cos(fraction * math.pi) + (init_lr + min_lr) / 2


class CosineDecay(Schedule):
    """CD (one half cosine over the run) and CCD (SGDR restarts), epoch-level as FE's LRScheduler (docs/experiments.md §7.4).

    `cycle_length=None` means the whole run (CD: E = total epochs); CCD sets it to T0 with
    `cycle_multiplier=2` (CIFAR/COCO T0 = 10, PTB T0 = 14).
    """

    def __init__(self, cycle_length: int | None = None, cycle_multiplier: int = 1, min_lr: float = 1e-6):
        if cycle_multiplier < 1:
            raise ConfigError(f"schedule.cycle_multiplier must be >= 1, got {cycle_multiplier}")
        self.cycle_length, self.cycle_multiplier, self.min_lr = cycle_length, cycle_multiplier, min_lr
        self.lr0, self.length = 0.0, 1

    def on_train_begin(self, lr0, steps_per_epoch, epochs):
        self.lr0, self.length = lr0, self.cycle_length or epochs

    def on_epoch_begin(self, epoch, history, lr):
        return cosine_decay(epoch, self.length, self.lr0, self.min_lr, self.cycle_multiplier)


class ExponentialDecay(Schedule):
    """ED: LR0 * gamma**(epoch - 1); gamma 0.9 for CIFAR/COCO, 0.96 for PTB (docs/experiments.md §7.4)."""

    def __init__(self, gamma: float):
        self.gamma, self.lr0 = gamma, 0.0

    def on_train_begin(self, lr0, steps_per_epoch, epochs):
        self.lr0 = lr0

    def on_epoch_begin(self, epoch, history, lr):
        return self.lr0 * self.gamma ** (epoch - 1)


SC_F_RANGE = (5.0, 40.0)  # App. A.3: LR0 = LRmax / f with f in [5, 40]


def sc_lr0(lr_max: float, f: float, grid: list[float]) -> float:
    """LR0 = LRmax / f' with f' in [5, 40] landing on a grid LR0, closest to the task's f (App. A.3:
    the paper picked f = 19.8 / 10 / 23.2 so that LR0 = 0.01 / 0.001 / 1.0); LRmax / f if none fits."""
    fits = [g for g in grid if SC_F_RANGE[0] <= lr_max / g <= SC_F_RANGE[1]]
    if not fits:
        return lr_max / f
    return min(fits, key=lambda g: abs(math.log(lr_max / g / f)))


class SuperConvergence(Schedule):
    """SC (meta_compare): per-step piecewise-linear LR0 -> lr_max -> LR0 -> 0 (docs/experiments.md §7.4 table).

    With S steps/epoch, T epochs and phase boundary a (epochs): warm-up while step < S*a, cool-down
    back to LR0 at S*2a, then annihilation to 0 at S*T. `step` is the 1-based global step, so step 1
    of CIFAR is 0.01 + 0.188/(391*13) = 0.010036986 as logged. No momentum cycling (repo).
    SC picks its own LR0, LRmax / f (`own_lr0`, App. A.3).
    """

    per_step = True

    def __init__(self, lr_max: float, phase_epochs: int, f: float):
        self.lr_max, self.phase_epochs, self.f = lr_max, phase_epochs, f
        self.lr0, self.phase_steps, self.total_steps = 0.0, 1, 1

    def own_lr0(self, grid: list[float]) -> float:
        """The LR0 SC runs at on a task whose LR0 grid is `grid` (sc_lr0)."""
        return sc_lr0(self.lr_max, self.f, grid)

    def on_train_begin(self, lr0, steps_per_epoch, epochs):
        if steps_per_epoch < 1:
            raise ConfigError("schedule: super-convergence needs the steps per epoch (set max_steps_per_epoch)")
        if not 0 < 2 * self.phase_epochs < epochs:
            raise ConfigError(f"schedule.phase_epochs must satisfy 0 < 2*a < epochs, got a={self.phase_epochs}, "
                              f"epochs={epochs}")
        self.lr0, self.phase_steps, self.total_steps = lr0, steps_per_epoch * self.phase_epochs, steps_per_epoch * epochs

    def on_step_begin(self, step, epoch, lr):
        lr0, peak, a = self.lr0, self.lr_max, self.phase_steps
        if step < a:
            return lr0 + (peak - lr0) * step / a
        if step < 2 * a:
            return peak - (peak - lr0) * (step - a) / a
        return lr0 * max(0.0, 1 - (step - 2 * a) / (self.total_steps - 2 * a))


class LinearRamp(Schedule):
    """LR range test (App. A.3): lr = lr_max_test * step / ramp_steps, linear from 0 (docs/experiments.md §7.4)."""

    per_step = True

    def __init__(self, lr_max_test: float, ramp_steps: int):
        if ramp_steps < 1:
            raise ConfigError(f"ramp_steps must be >= 1, got {ramp_steps}")
        self.lr_max_test, self.ramp_steps = lr_max_test, ramp_steps

    def on_step_begin(self, step, epoch, lr):
        return self.lr_max_test * step / self.ramp_steps
