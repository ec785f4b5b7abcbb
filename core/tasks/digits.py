"""Small CNN on scikit-learn's 8x8 digits: the offline task that proves the core.

The 1,797 images ship with scikit-learn, so this runs anywhere without a download.
"""
from __future__ import annotations

import gzip
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.errors import DataError
from core.tasks import ClassificationTask


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) in 0..16, labels): scikit-learn's `load_digits()` without importing scikit-learn,
    whose import costs each worker 0.6 s (the grid overhead): the same file read the same way
    (sklearn/datasets/_base.py: np.loadtxt of data/digits.csv.gz, 64 pixels then the label per row;
    tests/test_digits.py checks it against `load_digits()`)."""
    spec = find_spec("sklearn")  # locates the package without running its __init__
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise DataError(f"the digits tasks read scikit-learn's copy of the digits data, not found at "
                        f"{path or 'sklearn/datasets/data/digits.csv.gz'} (install the locked scikit-learn: make setup)")
    with gzip.open(path) as file:
        data = np.loadtxt(file, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)


def digits_tensors(n_train: int | None = None, eval_fraction: float = 0.2, split_seed: int = 0):
    """(x_train, y_train), (x_eval, y_eval): images scaled to [0, 1], shape (N, 1, 8, 8); fixed split."""
    images, target = load_digits()
    x = torch.tensor(images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(target, dtype=torch.long)
    order = torch.tensor(np.random.default_rng(split_seed).permutation(len(y)))
    n_eval = int(round(len(y) * eval_fraction))
    eval_idx, train_idx = order[:n_eval], order[n_eval:]
    if n_train is not None:
        train_idx = train_idx[:n_train]
    return (x[train_idx], y[train_idx]), (x[eval_idx], y[eval_idx])


class DigitsCNN(ClassificationTask):
    name = "digits_cnn"

    def __init__(self, width: int = 16, n_train: int | None = None, batch_size: int = 32, eval_fraction: float = 0.2,
                 device: str = "cpu"):
        train, eval_ = digits_tensors(n_train, eval_fraction)
        super().__init__(train, eval_, batch_size, device=device)
        self.width = width

    def build_model(self) -> nn.Module:
        w = self.width
        return nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * w * 16, 10),
        )
