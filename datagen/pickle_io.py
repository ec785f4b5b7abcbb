"""Import/export of the authors' `offline_data.pkl` layout (SPEC §2 "Stored sample format" [R:README]).

The layout is a dict of four equally long lists: train_loss (per-step train losses of the k cycles, resized to
100k; the authors' resize method is UNSPECIFIED, linear = cv2 INTER_LINEAR by default here), val_loss (per
epoch), train_lr (one per cycle) and label. Our dataset itself is Parquet (core.points); pickle exists only
to exchange data with the authors' ARC code. Unpickling runs code from the file, so import is opt-in
(--trust-pickle) and warns.

  python -m datagen.pickle_io export artifacts/mini/correct/dataset.parquet offline_data.pkl
  python -m datagen.pickle_io import offline_data.pkl points.parquet --trust-pickle
"""
from __future__ import annotations

import argparse
import math
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import atomic_write
from core.errors import DataError, UserError, exit_on_user_error
from core.points import COLUMNS, read_points, validate_points
from core.resize import METHODS, resize_1d

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
                     "n": max(1, len(val) // max(cycles, 1)), "lr0": float(lr[0]) if cycles else math.nan,
                     "cycles": cycles, "train_loss": np.asarray(train, float).tolist(),
                     "val_loss": np.asarray(val, float).tolist(), "train_lr": np.asarray(lr, float).tolist(),
                     "branch_loss": [math.nan] * 3, "chosen": -1, "replicate_loss": math.nan,
                     "label_raw": int(label), "label": int(label)})
    return validate_points(pd.DataFrame(rows, columns=list(COLUMNS)), source)


def export_pickle(points_file: Path, out: Path, resize: str = "linear") -> Path:
    layout = to_offline_layout(read_points(points_file), resize)
    return atomic_write(out, lambda tmp: Path(tmp).write_bytes(pickle.dumps(layout)))


def import_pickle(pickle_file: Path, out: Path, trust_pickle: bool = False) -> Path:
    if not trust_pickle:
        raise UserError(f"{pickle_file}: loading a pickle runs code stored in it; pass --trust-pickle only for "
                        f"a file you trust")
    if not pickle_file.is_file():
        raise DataError(f"pickle file not found: {pickle_file}")
    print(f"warning: unpickling {pickle_file} (pickle can execute arbitrary code)", file=sys.stderr)
    try:
        data = pickle.loads(pickle_file.read_bytes())
    except Exception as err:
        raise DataError(f"cannot unpickle {pickle_file}: {err}") from None
    frame = from_offline_layout(data, pickle_file)
    return atomic_write(out, lambda tmp: frame.to_parquet(tmp, index=False))


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m datagen.pickle_io", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="Parquet points -> offline_data.pkl")
    exp.add_argument("points", type=Path)
    exp.add_argument("out", type=Path)
    exp.add_argument("--resize", choices=sorted(METHODS), default="linear")
    imp = sub.add_parser("import", help="offline_data.pkl -> Parquet points")
    imp.add_argument("pickle", type=Path)
    imp.add_argument("out", type=Path)
    imp.add_argument("--trust-pickle", action="store_true", help="required: unpickling runs code from the file")
    args = parser.parse_args(argv)
    if args.command == "export":
        print(export_pickle(args.points, args.out, args.resize))
    else:
        print(import_pickle(args.pickle, args.out, args.trust_pickle))


if __name__ == "__main__":
    main()
