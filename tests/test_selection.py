"""Selection stage: the proxy WideResNet, CoarseDropout, and `python -m selection` on smoke."""
from __future__ import annotations

import filecmp

import pandas as pd
import pytest
import torch

from arc_model.network import ARCNet
from arc_model.weights import save_keras_h5
from conftest import run_module
from core.artifacts import mark_done, read_done
from selection.proxy import WideResNet, coarse_dropout
from selection.select import score_table


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


def make_candidate(root, name, candidate):
    torch.manual_seed(candidate)
    out = root / "artifacts" / "smoke" / "candidates" / name  # ${paths.candidates}
    out.mkdir(parents=True)
    save_keras_h5(ARCNet(), out / "arc.h5")
    mark_done(out, {"candidate": candidate})
    return out


SCORE = ("selection", "-m", "profile=smoke", "sizes.smoke.epochs=4", "candidate=1,2")


def test_selection_smoke_scores_candidates_and_copies_the_winner(tmp_path):
    first, second = make_candidate(tmp_path, "cand-c1", 1), make_candidate(tmp_path, "cand-c2", 2)
    result = run_module(*SCORE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skip: repeat" not in result.stdout  # the sweep's repeats are the profile's (1 on smoke)
    assert result.stdout.count('"candidate": "') == 2 * 3  # 2 candidates x 3 LR0s x 1 repeat
    picked = run_module("selection.pick", "profile=smoke", cwd=tmp_path)
    assert picked.returncode == 0, picked.stderr[-3000:]
    out = tmp_path / "artifacts" / "smoke" / "selection"
    scores = pd.read_csv(out / "scores.csv")
    assert sorted(scores.candidate.astype(str)) == ["1", "2"] and (scores.runs == 3).all()
    assert (scores.decisions_per_run == 1).all()  # one ARC call (epoch 4) per run
    assert scores.score.is_monotonic_decreasing and scores.score.between(0, 1).all()
    winner = read_done(out)["winner"]
    assert filecmp.cmp(out / "arc.h5", {"cand-c1": first, "cand-c2": second}[winner] / "arc.h5", shallow=False)
    runs = list((out / "runs").glob("*/*/DONE"))
    assert len(runs) == 6
    decisions = [ln for r in runs for ln in (r.parent / "log.txt").read_text().splitlines() if "multiplying lr" in ln]
    assert len(decisions) == 6
    again = run_module(*SCORE, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("done already") == 6


def test_score_table_breaks_ties_by_the_smallest_lr0_then_the_candidate_id():
    rows = pd.DataFrame([{"candidate": c, "run": f"r{c}", "lr0": lr0, "repeat": 0, "best_metric": v, "decisions": 3}
                         for c, values in (("3", (0.9, 0.5)), ("2", (0.8, 0.6)), ("1", (0.8, 0.6)),
                                           ("published", (1.0, 1.0)))
                         for lr0, v in zip((0.1, 1e-5), values)])
    table = score_table(rows, [0.1, 1e-5], repeats=1)
    # equal means 0.7: candidate 2 and 1 have the better smallest-LR0 score (0.6 > 0.5), then id 1 < 2;
    # the published ARC is a labelled row at the end, whatever its score
    assert table.candidate.tolist() == ["1", "2", "3", "published"]
    assert table.score.tolist()[:3] == pytest.approx([0.7, 0.7, 0.7])


def test_pick_refuses_candidates_without_all_their_proxy_runs(tmp_path):
    make_candidate(tmp_path, "cand-c1", 1)
    result = run_module("selection.pick", "profile=smoke", cwd=tmp_path)
    assert result.returncode == 2 and "proxy runs missing for cand-c1 (0 of 3 runs)" in result.stderr
    assert not (tmp_path / "artifacts" / "smoke" / "selection").exists()


def test_selection_without_candidates_fails_clearly(tmp_path):
    result = run_module("selection", "profile=smoke", "lr0=0.1", cwd=tmp_path)
    assert result.returncode == 2 and "make train_arc" in result.stderr
    assert list(tmp_path.iterdir()) == []
