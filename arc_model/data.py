"""ARC training data: stored points -> (N, 300, 3) inputs and labels, plus the held-out split.

Sources:
  * a core.points Parquet file (what datagen writes: ${paths.artifacts}/correct/dataset.parquet);
  * the authors' `offline_data.pkl` layout — a dict of parallel lists {train_loss, val_loss,
    train_lr, label} (SPEC §2, README) — read only through `points_from_offline_dict`.
Inputs are preprocessed once (arc_model.preprocess.offline_input); the random val-channel removal
(SPEC §4.4) is applied per draw at training time, not here.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from arc_model.preprocess import offline_input
from core.errors import DataError
from core.points import read_points

OFFLINE_KEYS = ("train_loss", "val_loss", "train_lr", "label")


def points_from_offline_dict(data: dict, source: str = "offline_data.pkl") -> pd.DataFrame:
    """The authors' pickle layout (dict of parallel sequences) -> a frame with the columns training reads."""
    if not isinstance(data, dict) or any(k not in data for k in OFFLINE_KEYS):
        raise DataError(f"{source}: expected a dict with keys {list(OFFLINE_KEYS)}")
    lengths = {k: len(data[k]) for k in OFFLINE_KEYS}
    if len(set(lengths.values())) != 1 or not lengths["label"]:
        raise DataError(f"{source}: keys must hold equally many (> 0) points, got {lengths}")
    frame = pd.DataFrame({k: [np.asarray(v, dtype=np.float64).ravel() for v in data[k]]
                          for k in ("train_loss", "val_loss", "train_lr")})
    frame["label"] = np.asarray(data["label"]).ravel().astype(int)
    frame["run_id"] = [f"offline-{i}" for i in range(len(frame))]  # the pickle keeps no run identity
    if not frame["label"].isin([0, 1, 2]).all():
        raise DataError(f"{source}: labels must be 0, 1 or 2")
    return frame


def load_points(path: str | Path) -> pd.DataFrame:
    """Read a .parquet points file or the authors' .pkl; DataError names the file on any problem."""
    path = Path(path)
    if path.suffix != ".pkl":
        return read_points(path)
    if not path.is_file():
        raise DataError(f"ARC offline data file not found: {path}")
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)  # the authors' format is a pickle; only load files you trust
    except Exception as err:
        raise DataError(f"cannot read ARC offline data {path}: {err}") from None
    return points_from_offline_dict(data, str(path))


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

    The authors' metric study held out 30% of points at random (v1 `train_ds.split(0.3)`, SPEC §10.1);
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
