"""ARC training data: stored points -> (N, 300, 3) inputs and labels, plus the held-out split.

Sources:
  * a core.points Parquet file (what datagen writes: ${paths.artifacts}/correct/dataset.parquet);
  * the authors' `offline_data.pkl` layout (core.offline_pickle), only with the `data.trust_pickle` opt-in.
Inputs are preprocessed once (arc_model.preprocess.offline_input); the random val-channel removal
(docs/experiments.md §4.4) is applied per draw at training time, not here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from arc_model.preprocess import offline_input
from core.errors import DataError
from core.offline_pickle import read_offline_pickle
from core.points import read_points

def load_points(path: str | Path, trust_pickle: bool = False) -> pd.DataFrame:
    """Read a .parquet points file, or the authors' .pkl (only with `trust_pickle`: unpickling runs code);
    DataError names the file on any problem."""
    path = Path(path)
    if path.suffix == ".pkl":
        return read_offline_pickle(path, trust_pickle)
    return read_points(path)


def build_inputs(points: pd.DataFrame, preprocessing: str = "repo") -> tuple[np.ndarray, np.ndarray]:
    """(inputs float32 (N, 300, 3), labels int64 (N,)). Non-finite losses (diverged runs) are an error."""
    inputs = np.stack([offline_input(r.train_loss, r.val_loss, r.train_lr, preprocessing)
                       for r in points.itertuples()])
    bad = ~np.isfinite(inputs).all(axis=(1, 2))
    if bad.any():
        raise DataError(f"point {int(np.argmax(bad))} yields a non-finite ARC input (a diverged run's losses?)")
    return inputs.astype(np.float32), points["label"].to_numpy(dtype=np.int64)


def holdout_split(points: pd.DataFrame, fraction: float, seed: int, by_run: bool) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices). by_run keeps all points of a training run on one side.

    The authors' metric study held out 30% of points at random (v1 `train_ds.split(0.3)`, docs/experiments.md §10.1);
    by_run=True avoids scoring on near-duplicates of training points (points of one run overlap).
    """
    rng = np.random.default_rng(seed)
    if fraction <= 0:
        return np.arange(len(points)), np.array([], dtype=int)
    if by_run:
        runs = points["run_id"].unique()
        held_runs = set(rng.permutation(runs)[: int(round(len(runs) * fraction))])
        held = points["run_id"].isin(held_runs).to_numpy()
    else:
        held = np.zeros(len(points), dtype=bool)
        held[rng.permutation(len(points))[: int(round(len(points) * fraction))]] = True
    return np.flatnonzero(~held), np.flatnonzero(held)
