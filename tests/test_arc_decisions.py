"""ARC's decisions as outputs: the confusion matrix and predicted shares of hand-made labels, the decision columns of
candidates.csv on tiny smoke candidates (SYNTHETIC points), the published and the selected ARC scored on the same
held-out points, the REPORT.md section and figure of `python -m figures`, and the notes that replace a model that
cannot be scored."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

import arc_model.stage
from arc_model.candidates import DECISION_COLUMNS, candidate_table, heldout_decisions, heldout_set, write_table
from arc_model.metrics import (CONFUSION_COLUMNS, SHARE_COLUMNS, confusion, decision_columns, matrix_of,
                               recall_precision)
from arc_model.network import ARCNet
from arc_model.weights import save_keras_h5
from core.artifacts import read_done
from core.errors import DataError
from figures.decisions import model_rows
from conftest import REPO
from test_figures_render import compose_cfg, write_run

SYNTHETIC = ("data.synthetic_points=256",)  # 77 held-out points (test_arc_train)


def train_cfg(root: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose("train_arc", overrides=["profile=smoke", f"paths.root={root}", *SYNTHETIC, *overrides])


def always(action: int, path: Path) -> Path:
    """An ARC weights file that predicts `action` for every input: zero output weights, a large bias."""
    torch.manual_seed(0)
    model = ARCNet()
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.zero_()
        model.out.bias[action] = 50.0
    return save_keras_h5(model, path)


def test_confusion_and_shares_of_hand_made_labels():
    # true:      raise raise keep decrease decrease decrease
    # predicted: raise keep  keep decrease raise    keep
    labels, predicted = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 1]
    cm = confusion(labels, predicted)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 1, 1]]  # rows true, columns predicted
    columns = decision_columns(labels, predicted)
    assert list(columns) == CONFUSION_COLUMNS + SHARE_COLUMNS
    assert columns["cm_true_decrease_pred_raise"] == 1 and columns["cm_true_raise_pred_keep"] == 1
    assert columns["cm_true_keep_pred_decrease"] == 0
    assert (columns["pred_raise"], columns["pred_keep"], columns["pred_decrease"]) == (2 / 6, 3 / 6, 1 / 6)
    assert matrix_of(columns).tolist() == cm.tolist()
    assert recall_precision(cm, "decrease") == (1 / 3, 1.0)  # 1 of 3 true decreases found; its 1 call right
    assert recall_precision(cm, "raise") == (1 / 2, 1 / 2)
    never = confusion([0, 2], [0, 0])
    assert recall_precision(never, "decrease")[0] == 0.0 and math.isnan(recall_precision(never, "decrease")[1])
    with pytest.raises(ValueError, match="no held-out points"):
        decision_columns([], [])


@pytest.fixture(scope="module")
def candidates(tmp_path_factory) -> Path:
    """Two smoke candidates (2 epochs on 256 SYNTHETIC points) and their candidates.csv; returns the root."""
    root = tmp_path_factory.mktemp("decisions")
    for candidate in (1, 2):
        arc_model.stage.train_candidate(train_cfg(root, f"candidate={candidate}"))
    write_table(train_cfg(root))
    return root


def test_candidates_csv_has_each_candidates_confusion_and_shares(candidates):
    table = pd.read_csv(candidates / "artifacts/smoke/candidates/candidates.csv")
    assert table.columns[-len(DECISION_COLUMNS):].tolist() == DECISION_COLUMNS
    assert table.candidate.tolist() == [1, 2] and (table.held_out_points == 77).all()
    for row in table.to_dict("records"):
        cm = matrix_of(row)
        assert cm.sum() == 77
        assert [row[c] for c in SHARE_COLUMNS] == pytest.approx(cm.sum(axis=0) / 77)
        # the same model on the same points as the candidate's own held-out accuracy (DONE, arc_model.metrics)
        final = read_done(candidates / "artifacts/smoke/candidates" / row["run"])["final"]
        assert np.trace(cm) / 77 == pytest.approx(final["accuracy"], abs=1e-12)
        run_dir = candidates / "artifacts/smoke/candidates" / row["run"]
        assert heldout_decisions(run_dir / "arc.h5", heldout_set(run_dir)) == \
            {c: pytest.approx(row[c]) for c in DECISION_COLUMNS}


def test_a_model_that_always_decreases_predicts_the_true_label_mix_as_its_decrease_column(candidates, tmp_path):
    run_dir = next((candidates / "artifacts/smoke/candidates").glob("*-c1-*"))
    held = heldout_set(run_dir)
    true = np.bincount(held.labels, minlength=3)
    scored = heldout_decisions(always(2, tmp_path / "down.h5"), held)
    assert [scored[f"cm_true_{a}_pred_decrease"] for a in ("raise", "keep", "decrease")] == true.tolist()
    assert scored["pred_decrease"] == 1.0 and scored["pred_raise"] == scored["pred_keep"] == 0.0


def test_no_held_out_split_is_said_and_leaves_the_columns_empty(tmp_path, capsys):
    arc_model.stage.train_candidate(train_cfg(tmp_path, "data.holdout=0"))
    table = candidate_table(tmp_path / "artifacts/smoke/candidates")
    assert "skip: held-out decisions of 1 candidate(s)" in capsys.readouterr().out
    assert table[DECISION_COLUMNS].isna().all(axis=None)
    with pytest.raises(DataError, match="no held-out points: data.holdout=0"):
        heldout_set(next((tmp_path / "artifacts/smoke/candidates").iterdir()))
    rows, notes = model_rows(compose_cfg(tmp_path, f"paths.published_arc={always(2, tmp_path / 'p.h5')}"))
    assert rows.empty and "there are no held-out points: data.holdout=0" in notes[0]
    assert "published ARC: no held-out points to score it on; skipped" in notes


@pytest.mark.slow
def test_figures_report_and_figure_show_every_arcs_decisions(candidates, tmp_path, capsys, name_every_run):
    from figures.__main__ import render

    root = tmp_path / "root"
    art = root / "artifacts" / "smoke"
    shutil.copytree(candidates / "artifacts/smoke/candidates", art / "candidates")  # another artifacts root
    winner = next((art / "candidates").glob("*-c2-*"))
    (art / "selection").mkdir(parents=True)
    shutil.copyfile(winner / "arc.h5", art / "selection" / "arc.h5")
    (art / "selection" / "DONE").write_text(json.dumps({"winner": winner.name, "candidate": 2}))
    bench = art / "benchmark" / "benchmark"
    for seed in range(2):
        write_run(bench, "cifar10", "arc", 0.01, seed, [0.5, 0.6, 0.7], [0.01, 0.01, 0.01618],
                  decisions_after=[(2, 1.618)])
    write_run(bench, "cifar10", "arc_published", 0.01, 0, [0.5, 0.6, 0.7], [0.01, 0.01, 0.00618],
              decisions_after=[(2, 0.618)])
    write_run(bench, "cifar10", "constant", 0.01, 0, [0.5, 0.6, 0.7], [0.01] * 3)
    published = always(2, tmp_path / "published.h5")

    render(compose_cfg(root, f"paths.published_arc={published}"))
    table = pd.read_csv(art / "figures" / "arc_decisions_heldout.csv")
    assert table.model.tolist() == ["c1", "c2", "published", "selected (c2)"]
    rows = table.set_index("model")
    assert rows.loc["published", "pred_decrease"] == 1.0 and rows.loc["published", "preprocessing"] == "repo"
    # the selected ARC is c2's weights on c2's held-out points: the same numbers as c2's row of candidates.csv
    assert rows.loc["selected (c2)", DECISION_COLUMNS].tolist() == rows.loc["c2", DECISION_COLUMNS].tolist()
    assert (art / "figures" / "arc_decisions.png").stat().st_size > 5000
    report = (art / "REPORT.md").read_text()
    section = report.split("ARC's decisions on held-out points", 1)[1].split("\n## ", 1)[0]
    assert "| **published** | 77 |" in section and "100.0% | yes |" in section
    assert "**selected (c2) ARC**" in section and "| true \\ predicted | raise | keep | decrease | true total |" \
        in section
    down = rows.loc["published"]
    assert f"| decrease | 0 | 0 | {int(down.cm_true_decrease_pred_decrease)} |" in section
    assert "- ARC (published) lowers the LR (a x0.618 call): **yes**, in 1 of 1 cells" in report
    assert "- ARC lowers the LR (a x0.618 call): **no**, in 0 of 1 cells" in report
    assert "| 0.01 | ARC | 2 | 2 | 0 | 0 | 1.0 | no |" in report
    assert "](figures/arc_decisions.png)" in report
    capsys.readouterr()

    render(compose_cfg(root, f"paths.published_arc={tmp_path / 'missing.h5'}", "plots=false"))
    assert f"published ARC: weights file not found: {tmp_path / 'missing.h5'}; skipped" in capsys.readouterr().out
    assert f"- published ARC: weights file not found: {tmp_path / 'missing.h5'}; skipped" in \
        (art / "REPORT.md").read_text()


def test_the_published_arc_is_scored_on_the_held_out_points(candidates, published_arc):
    run_dir = next((candidates / "artifacts/smoke/candidates").glob("*-c1-*"))
    scored = heldout_decisions(published_arc, heldout_set(run_dir).preprocessed("repo"))
    assert scored["held_out_points"] == 77 and sum(scored[c] for c in SHARE_COLUMNS) == pytest.approx(1.0)
