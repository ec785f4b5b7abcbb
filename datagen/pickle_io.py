"""`python -m datagen.pickle_io`: import/export of the authors' `offline_data.pkl` layout (core.offline_pickle).

  python -m datagen.pickle_io export artifacts/mini/dataset/dataset.parquet offline_data.pkl
  python -m datagen.pickle_io import offline_data.pkl points.parquet --trust-pickle
"""
from __future__ import annotations

import argparse
import pickle
from pathlib import Path

from core.artifacts import atomic_write, atomic_write_parquet
from core.errors import exit_on_user_error
from core.offline_pickle import read_offline_pickle, to_offline_layout
from core.points import read_points
from core.resize import METHODS


def export_pickle(points_file: Path, out: Path, resize: str = "linear") -> Path:
    layout = to_offline_layout(read_points(points_file), resize)
    return atomic_write(out, lambda tmp: Path(tmp).write_bytes(pickle.dumps(layout)))


def import_pickle(pickle_file: Path, out: Path, trust_pickle: bool = False) -> Path:
    frame = read_offline_pickle(pickle_file, trust_pickle)
    return atomic_write_parquet(out, frame)


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
