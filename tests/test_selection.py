"""Selection stage: the proxy WideResNet, CoarseDropout, and `python -m selection` on smoke."""
from __future__ import annotations

import filecmp

import pandas as pd
import torch

from arc_model.network import ARCNet
from arc_model.weights import save_keras_h5
from conftest import run_module
from core.artifacts import mark_done, read_done
from selection.proxy import WideResNet, coarse_dropout


def test_wrn_28_2_paper_shape_trains_two_steps():
    model = WideResNet(depth=28, width=2)
    assert sum(len(stage) for stage in [model.features]) == 3 + 3 * 4 + 2  # stem, 12 blocks, 2 pools
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([1, 7])
    for _ in range(2):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    assert model(x).shape == (2, 10) and torch.isfinite(loss)


def test_coarse_dropout_zeroes_one_hole_per_image():
    x = torch.ones(64, 3, 32, 32)
    out = coarse_dropout(x, 8, torch.Generator().manual_seed(0))
    zeros = (out == 0).all(dim=1).sum(dim=(1, 2))
    assert (zeros == 64).all()  # one 8x8 hole, all channels
    rows = (out[:, 0] == 0).any(dim=2).float()
    assert (rows.sum(1) == 8).all()  # contiguous 8 rows


def make_candidate(root, name, seed):
    torch.manual_seed(seed)
    out = root / "artifacts" / "smoke" / "train_arc" / name
    out.mkdir(parents=True)
    save_keras_h5(ARCNet(), out / "arc.h5")
    mark_done(out, {"seed": seed})
    return out


def test_selection_smoke_scores_candidates_and_copies_the_winner(tmp_path):
    first, second = make_candidate(tmp_path, "cand-s1", 1), make_candidate(tmp_path, "cand-s2", 2)
    result = run_module("selection", "profile=smoke", "budgets.smoke.epochs=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "artifacts" / "smoke" / "selection"
    scores = pd.read_csv(out / "scores.csv")
    assert sorted(scores.candidate) == ["cand-s1", "cand-s2"] and (scores.runs == 3).all()
    assert scores.score.is_monotonic_decreasing and scores.score.between(0, 1).all()
    winner = read_done(out)["winner"]
    assert filecmp.cmp(out / "arc.h5", {"cand-s1": first, "cand-s2": second}[winner] / "arc.h5", shallow=False)
    runs = list((out / "runs").glob("*/*/DONE"))
    assert len(runs) == 6
    decisions = [ln for r in runs for ln in (r.parent / "log.txt").read_text().splitlines() if "multiplying lr" in ln]
    assert len(decisions) == 6  # one ARC call (epoch 4) per run
    again = run_module("selection", "profile=smoke", "budgets.smoke.epochs=4", cwd=tmp_path)
    assert again.returncode == 0 and "done already" in again.stdout


def test_selection_without_candidates_fails_clearly(tmp_path):
    result = run_module("selection", "profile=smoke", cwd=tmp_path)
    assert result.returncode == 2 and "make train_arc" in result.stderr
    assert list(tmp_path.iterdir()) == []
