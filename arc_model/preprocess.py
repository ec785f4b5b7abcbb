"""ARC's input: a (300, 3) float32 array [train_loss, val_loss, lr] built from the last k <= 3 cycles (docs/experiments.md §3).

One set of channel functions serves both paths, so training and deployment cannot drift apart:
  * on-line (`online_input`): per-cycle lists of step losses, eval losses and LRs, exactly as
    FastEstimator 1.7's `fe.schedule.ARC` keeps them (deque of 3, None = cycle not yet seen);
  * off-line (`offline_input`): one stored point (core.points) or one entry of the authors' pickle.

`preprocessing="repo"` (default) is the authors' deployed code and FE's: train loss resized with
INTER_LINEAR to 100k *then* z-scored. `"paper"` is the paper's wording (§3.4): z-score, then
nearest-neighbour resize. Val loss and LR are the same in both (docs/experiments.md §3 table).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from core.errors import ConfigError
from core.resize import resize_1d

LENGTH = 300  # ARC input length: 3 cycles x 100 samples
PER_CYCLE = 100
PREPROCESSING = ("repo", "paper")


def check_preprocessing(preprocessing: str) -> str:
    if preprocessing not in PREPROCESSING:
        raise ConfigError(f"preprocessing: must be one of {PREPROCESSING}, got '{preprocessing}'")
    return preprocessing


def zscore(values) -> np.ndarray:
    """FE's numpy zscore: population std, floored at 1e-7 (fe.backend.zscore; train_arc.py)."""
    data = np.asarray(values, dtype=np.float32)
    return (data - np.mean(data)) / max(np.std(data), 1e-7)


def _pad_left(column: np.ndarray, value: float) -> np.ndarray:
    return np.pad(column, (LENGTH - column.size, 0), constant_values=value) if column.size < LENGTH else column


def train_loss_channel(losses: Sequence[float], cycles: int, preprocessing: str = "repo") -> np.ndarray:
    """Step losses of `cycles` cycles -> 300 values (zero-padded on the left)."""
    size = cycles * PER_CYCLE
    if preprocessing == "repo":  # FE/arc.py: cv2.resize default (INTER_LINEAR), then z-score
        column = zscore(resize_1d(np.asarray(losses, dtype=np.float32), size, "linear"))
    else:  # paper §3.4: z-score, then nearest-neighbour resize
        column = resize_1d(zscore(losses), size, "nearest")
    return _pad_left(column, 0.0)


def val_loss_channel(losses: Sequence[float], cycles: int) -> np.ndarray:
    """Per-epoch eval losses -> z-score, INTER_NEAREST to 100k, zero-pad; no losses -> all zeros (docs/experiments.md §5.3)."""
    if len(losses) == 0:
        return np.zeros(LENGTH, dtype=np.float32)
    return _pad_left(resize_1d(zscore(losses), cycles * PER_CYCLE, "nearest"), 0.0)


def lr_channel(lrs: Sequence[float], cycles: int) -> np.ndarray:
    """One LR per cycle -> divided by the oldest, INTER_NEAREST to 100k, padded with ones.

    Computed in float64 as FE does with a PyTorch model's python-float LR, then stored as float32.
    """
    ratios = np.asarray(lrs, dtype=np.float64) / float(lrs[0])
    return _pad_left(resize_1d(ratios, cycles * PER_CYCLE, "nearest", dtype=np.float64), 1.0).astype(np.float32)


def merge_cycles(cycles: Sequence) -> tuple[list, int]:
    """FE's `ARC._merge_list`: concatenate the seen cycles; count the unseen (None) ones.

    Kept quirk (docs/experiments.md §5.2): a scalar that is falsy (an LR of exactly 0.0) counts as unseen.
    """
    merged, missing = [], 0
    for item in cycles:
        if isinstance(item, list):
            merged.extend(item)
        elif item:
            merged.append(item)
        else:
            missing += 1
    return merged, missing


def online_input(train_cycles: Sequence, val_cycles: Sequence, lr_cycles: Sequence,
                 preprocessing: str = "repo") -> np.ndarray:
    """The input FE's ARC.predict_next_multiplier builds from its three deques (3 entries each).

    Each channel counts its own k = 3 - missing, as FE does.
    """
    train, missing_train = merge_cycles(train_cycles)
    val, missing_val = merge_cycles(val_cycles)
    lrs, missing_lr = merge_cycles(lr_cycles)
    return np.stack([train_loss_channel(train, 3 - missing_train, preprocessing),
                     val_loss_channel(val, 3 - missing_val),
                     lr_channel(lrs, 3 - missing_lr)], axis=1)


def offline_input(train_loss: Sequence[float], val_loss: Sequence[float], train_lr: Sequence[float],
                  preprocessing: str = "repo") -> np.ndarray:
    """The training input of one stored point; k = len(train_lr) (train_arc.py: train_lr.size * 100).

    Stored train losses may be raw per-step values (core.points) or already resized to 100k (the
    authors' pickle); an INTER_LINEAR resize to the same length is the identity, so both read alike.
    """
    cycles = len(train_lr)
    return np.stack([train_loss_channel(train_loss, cycles, preprocessing),
                     val_loss_channel(val_loss, cycles),
                     lr_channel(train_lr, cycles)], axis=1)
