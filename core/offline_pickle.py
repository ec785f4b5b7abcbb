"""The authors' `offline_data.pkl` layout (docs/experiments.md §2 "Stored sample format" [R:README]) and its one reader.

The layout is a dict of four equally long lists: train_loss (per-step train losses of the k cycles, resized to
100k; the authors' resize method is UNSPECIFIED, linear = cv2 INTER_LINEAR by default here), val_loss (per
epoch), train_lr (one per cycle) and label. Our dataset itself is Parquet (core.points); pickle exists only to
exchange data with the authors' ARC code. Unpickling runs code stored in the file, so `read_offline_pickle`
refuses unless the caller passes `trust_pickle=True` (a `--trust-pickle` / `data.trust_pickle=true` opt-in),
and then warns. datagen's import/export and arc_model's data loading both go through here.
"""
from __future__ import annotations

import math
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import DataError, UserError
from core.points import COLUMNS, validate_points
from core.resize import resize_1d

KEYS = ("train_loss", "val_loss", "train_lr", "label")


def to_offline_layout(points: pd.DataFrame, resize: str = "linear") -> dict:
    return {
        "train_loss": [resize_1d(p.train_loss, 100 * p.cycles, resize) for p in points.itertuples()],
        "val_loss": [np.asarray(v, np.float32) for v in points.val_loss],
        "train_lr": [np.asarray(v, np.float32) for v in points.train_lr],
        "label": [int(v) for v in points.label],
    }


def from_offline_layout(data, source: str | Path) -> pd.DataFrame:
    """Points frame of a loaded offline_data dict; fields ARC does not need are left unknown (NaN / -1)."""
    if not isinstance(data, dict) or any(k not in data for k in KEYS):
        raise DataError(f"{source}: not an offline_data layout (needs a dict with keys {list(KEYS)})")
    lengths = {k: len(data[k]) for k in KEYS}
    if len(set(lengths.values())) != 1:
        raise DataError(f"{source}: keys hold lists of different lengths {lengths}")
    rows = []
    for i, (train, val, lr, label) in enumerate(zip(*(data[k] for k in KEYS))):
        cycles = len(lr)
        rows.append({"task": "imported", "run_id": f"imported-{i}", "point": i, "seed": -1, "optimizer": "",
                     "frequency": max(1, len(val) // max(cycles, 1)), "lr0": float(lr[0]) if cycles else math.nan,
                     "cycles": cycles, "train_loss": np.asarray(train, float).tolist(),
                     "val_loss": np.asarray(val, float).tolist(), "train_lr": np.asarray(lr, float).tolist(),
                     "branch_loss": [math.nan] * 3, "chosen": -1, "replicate_loss": math.nan,
                     "label_raw": int(label), "label": int(label)})
    return validate_points(pd.DataFrame(rows, columns=list(COLUMNS)), source)


def read_offline_pickle(path: str | Path, trust_pickle: bool = False) -> pd.DataFrame:
    """Points frame of an offline_data.pkl; refused without `trust_pickle` (unpickling runs code)."""
    path = Path(path)
    if not trust_pickle:
        raise UserError(f"{path}: loading a pickle runs code stored in it; opt in with --trust-pickle "
                        f"(data.trust_pickle=true) only for a file you trust")
    if not path.is_file():
        raise DataError(f"pickle file not found: {path}")
    print(f"warning: unpickling {path} (pickle can execute arbitrary code)", file=sys.stderr)
    try:
        data = pickle.loads(path.read_bytes())
    except Exception as err:
        raise DataError(f"cannot unpickle {path}: {err}") from None
    return from_offline_layout(data, path)
