"""Exchange with the authors' offline_data.pkl layout (docs/experiments.md §2): export resizes to 100k, import is opt-in."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from conftest import crafted, run_module
from core.errors import DataError, UserError
from core.points import COLUMNS, read_points
from datagen.pickle_io import export_pickle, import_pickle, main


def points(path):
    rows = []
    for i, k in enumerate((1, 2, 3)):
        rows.append({"task": "t", "run_id": "t-r0", "point": i, "seed": 1, "optimizer": "adam", "frequency": 2, "lr0": 1e-3,
                     "cycles": k, "train_loss": list(np.linspace(2, 1, 7 * k)), "val_loss": [1.5] * (2 * k),
                     "train_lr": [1e-3 * 1.618 ** j for j in range(k)], "branch_loss": [0.3, 0.2, 0.1],
                     "chosen": 1, "replicate_loss": 0.25, "label_raw": 2, "label": 1})
    pd.DataFrame(rows, columns=list(COLUMNS)).to_parquet(path, index=False)
    return path


def test_export_then_import_round_trip(tmp_path):
    export_pickle(points(tmp_path / "p.parquet"), tmp_path / "offline_data.pkl")
    data = pickle.loads((tmp_path / "offline_data.pkl").read_bytes())
    assert sorted(data) == ["label", "train_loss", "train_lr", "val_loss"]
    assert [len(t) for t in data["train_loss"]] == [100, 200, 300]  # resized to 100k (docs/experiments.md §2)
    assert [len(v) for v in data["val_loss"]] == [2, 4, 6] and [len(v) for v in data["train_lr"]] == [1, 2, 3]
    assert data["label"] == [1, 1, 1]  # the corrected label
    assert data["train_loss"][0][0] == pytest.approx(2.0) and data["train_loss"][0][-1] == pytest.approx(1.0)
    import_pickle(tmp_path / "offline_data.pkl", tmp_path / "back.parquet", trust_pickle=True)
    back = read_points(tmp_path / "back.parquet")
    assert back.cycles.tolist() == [1, 2, 3] and back.label.tolist() == [1, 1, 1]
    assert np.allclose(back.train_loss[2], data["train_loss"][2])


def test_import_is_opt_in_and_checks_the_layout(tmp_path, capsys):
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps({"train_loss": [[1.0]], "label": [0]}))
    with pytest.raises(UserError, match="--trust-pickle"):
        import_pickle(tmp_path / "bad.pkl", tmp_path / "out.parquet")
    with pytest.raises(DataError, match="not an offline_data layout"):
        import_pickle(tmp_path / "bad.pkl", tmp_path / "out.parquet", trust_pickle=True)
    assert "warning: unpickling" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["import", str(tmp_path / "bad.pkl"), str(tmp_path / "out.parquet")])
    assert exit_info.value.code == 2 and not (tmp_path / "out.parquet").exists()


def test_pickle_io_import_refuses_without_trust_pickle(tmp_path):
    path, marker = crafted(tmp_path, "offline")
    result = run_module("datagen.pickle_io", "import", str(path), str(tmp_path / "out.parquet"), cwd=tmp_path)
    assert result.returncode == 2 and not marker.exists() and not (tmp_path / "out.parquet").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--trust-pickle" in lines[0]
