"""arc_model.diagnose: the features of held-out points by group and the per-class loss table, on hand-made points."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from arc_model.diagnose import feature_table, loss_by_class_table, point_features


def points() -> pd.DataFrame:
    # point 0: val 2 -> 1.5 (-25%); steps [4]*10 + [2]*10: tenths 4 and 2 (-50%); LR 2e-3 of LR0 1e-3; branch losses
    # (1.0, 1.1, 0.9): best 0.9, second 1.0 -> margin 0.1 / 0.9.  point 1: val 1 -> 1.1 (+10%); steps 1..20: tenths
    # mean(1, 2) = 1.5 and mean(19, 20) = 19.5 (+1200%); LR 5e-4 of 1e-3; one diverged branch -> margin (2 - 1) / 1
    return pd.DataFrame({"val_loss": [[2.0, 1.5], [1.0, 1.1]],
                         "train_loss": [[4.0] * 10 + [2.0] * 10, list(range(1, 21))],
                         "train_lr": [[1e-3, 2e-3], [5e-4]], "lr0": [1e-3, 1e-3], "point": [3, 0],
                         "branch_loss": [[1.0, 1.1, 0.9], [math.inf, 1.0, 2.0]]})


def test_point_features_by_hand():
    f = point_features(points())
    assert f.val_change.tolist() == pytest.approx([-0.25, 0.1])
    assert f.train_change.tolist() == pytest.approx([-0.5, 12.0])
    assert f.lr_vs_lr0.tolist() == pytest.approx([2.0, 0.5])
    assert f.point.tolist() == [3.0, 0.0]
    assert f.margin.tolist() == pytest.approx([0.1 / 0.9, 1.0])


def test_feature_table_groups_true_and_predicted_decrease():
    features = pd.DataFrame({"val_change": [1.0, 2.0, 3.0, 4.0], "train_change": 0.0, "lr_vs_lr0": 1.0,
                             "point": [0.0, 1.0, 2.0, 3.0], "margin": 0.5})
    table = feature_table(features, np.array([0, 2, 2, 1]), np.array([0, 0, 2, 2])).set_index("group")
    assert table.loc["true decrease", "points"] == 2 and table.loc["true decrease", "val_change"] == 2.5
    assert table.loc["predicted decrease", "points"] == 2 and table.loc["predicted decrease", "val_change"] == 3.5
    assert table.loc["true and predicted decrease", "val_change"] == 3.0
    assert table.loc["true keep", "point"] == 3.0


def test_loss_by_class_table_averages_candidates_at_first_tenth_half_last():
    columns = [f"{s}_hybrid_{c}" for s in ("train", "held") for c in ("raise", "keep", "decrease")]
    frames = [pd.DataFrame({c: np.arange(20.0) * k for c in columns}) for k in (1.0, 3.0)]
    table = loss_by_class_table(frames)
    assert table.epoch.tolist() == [1, 2, 10, 20]
    # epoch e holds value e - 1 (x1 and x3): mean 2 (e - 1)
    assert table.held_hybrid_decrease.tolist() == [0.0, 2.0, 18.0, 38.0]
    assert loss_by_class_table([pd.DataFrame({"x": [1]})]).empty
