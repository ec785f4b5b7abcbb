"""The candidate-training stage `python -m arc_model` on the smoke profile (SYNTHETIC points): outputs,
multirun + metrics table, reading a datagen-style Parquet file, resume after a kill, and clear errors; the held-out
split per profile, and damaged candidate weights (trained again by the stage, refused by selection)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

import arc_model.stage
from arc_model.synthetic import synthetic_points
from arc_model.weights import load_keras_h5
from core.artifacts import read_done
from core.errors import CorruptArtifact
from core.felog import parse_log
from conftest import REPO, compose_cfg, compose_stage, one_line, run_module


SYNTHETIC = ("data.synthetic_points=256",)  # SYNTHETIC points, so these tests need no datagen output


def smoke_cfg(root: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose("train_arc", overrides=["profile=smoke", f"paths.root={root}", *overrides])


@pytest.mark.slow
def test_multirun_trains_candidates_and_tabulates_their_metrics(tmp_path):
    result = run_module("arc_model", "--multirun", "profile=smoke", "candidate=1,2", *SYNTHETIC, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = sorted((tmp_path / "artifacts/smoke/candidates").glob("synthetic256-repo-c*"))
    assert [r.name.split("-")[2] for r in runs] == ["c1", "c2"]
    for candidate, run in zip((1, 2), runs):
        expected = {"config.yaml", "log.txt", "epochs.parquet", "arc.h5", "best_mcc.h5", "DONE"}
        assert expected <= {p.name for p in run.iterdir()}
        summary = json.loads((run / "DONE").read_text())
        assert summary["candidate"] == candidate and "seed" not in summary
        assert summary["held_out_points"] == 77 and summary["epochs"] == 2
        assert set(summary["final"]) >= {"accuracy", "mcc", "val_loss", "calibration_error", "weighted_accuracy"}
        load_keras_h5(run / "arc.h5")
        evals = parse_log(run / "log.txt")["eval"]
        assert sorted(evals["weighted_accuracy"]) == [2, 4]  # 179 train points / 128 = 2 steps per epoch
    table = run_module("arc_model.candidates", "profile=smoke", *SYNTHETIC, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    frame = pd.read_csv(tmp_path / "artifacts/smoke/candidates/candidates.csv")
    assert frame.candidate.tolist() == [1, 2] and frame.accuracy.between(0, 1).all()
    assert frame.run.tolist() == [r.name for r in runs]
    again = run_module("arc_model", "profile=smoke", "candidate=1", *SYNTHETIC, cwd=tmp_path)
    assert again.returncode == 0 and "done already" in again.stdout


@pytest.mark.slow
def test_reads_a_datagen_points_file_and_resumes_after_a_kill(tmp_path, monkeypatch, capsys):
    data = tmp_path / "dataset.parquet"
    synthetic_points(120, seed=3).to_parquet(data)  # what datagen writes (core.points)
    overrides = ["data.synthetic_points=0", f"data.path={data}", "epochs=3", "checkpoint_every=1"]
    straight = arc_model.stage.train_candidate(smoke_cfg(tmp_path / "straight", *overrides))
    cfg = smoke_cfg(tmp_path, *overrides)

    calls = {"n": 0}
    original = arc_model.stage.CandidateTrainer.train_epoch

    def killed_after_epoch_3_before_its_checkpoint(self, *args, **kwargs):
        row = original(self, *args, **kwargs)  # epoch 3's log lines are written past the checkpoint ...
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # ... so the resume must cut them off
        return row

    monkeypatch.setattr(arc_model.stage.CandidateTrainer, "train_epoch", killed_after_epoch_3_before_its_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        arc_model.stage.train_candidate(cfg)
    monkeypatch.setattr(arc_model.stage.CandidateTrainer, "train_epoch", original)
    resumed = arc_model.stage.train_candidate(cfg)
    assert "at epoch 2" in capsys.readouterr().out

    assert resumed.name == straight.name  # same data content and config -> same run directory name
    records = [(p / "log.txt").read_text().splitlines()[:-1] for p in (straight, resumed)]  # Finish has timing
    assert records[0] == records[1]
    assert pd.read_parquet(straight / "epochs.parquet").equals(pd.read_parquet(resumed / "epochs.parquet"))
    a, b = load_keras_h5(straight / "arc.h5"), load_keras_h5(resumed / "arc.h5")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.slow
def test_missing_dataset_and_bad_config_fail_with_one_line_before_writing(tmp_path):
    missing = run_module("arc_model", "profile=mini", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("error: data.path: ARC dataset not found: ")
    assert str(tmp_path / "artifacts/mini/dataset/dataset.parquet") in missing.stderr
    assert not (tmp_path / "artifacts").exists()
    bad = run_module("arc_model", "profile=smoke", "preprocessing=bilinear", *SYNTHETIC, cwd=tmp_path)
    assert bad.returncode == 2 and "preprocessing" in bad.stderr.strip().splitlines()[-1]
    typo = run_module("arc_model", "profile=smoke", "epochz=3", cwd=tmp_path)
    assert typo.returncode != 0 and "epochz" in typo.stderr
    assert not (tmp_path / "artifacts").exists()


@pytest.mark.parametrize("profile, holdout", [("paper", 0.0), ("mini", 0.3), ("smoke", 0.3)])
def test_arc_candidates_hold_out_30_percent_only_outside_paper(profile, holdout):
    """docs/experiments.md §4.3 ("validation split: none at HEAD; all ≈ 5050 samples are used for training"); the
    30% split is v1's, for the metric study (§10.1), kept in mini/smoke so their candidate metrics exist."""
    cfg = compose_cfg("train_arc", f"profile={profile}")
    assert cfg.data.holdout == holdout


def test_candidate_weights_damaged_are_redone_by_train_arc_and_refused_by_selection(tmp_path, monkeypatch, capsys):
    from arc_model.stage import train_candidate
    from arc_model.weights import load_keras_h5
    from selection.select import finished_candidates

    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    cfg = compose_stage("train_arc", "data.synthetic_points=64", "epochs=1")
    out = train_candidate(cfg)
    reference = {k: v for k, v in read_done(out).items() if k != "seconds"}
    (out / "arc.h5").write_bytes((out / "arc.h5").read_bytes()[:500])  # truncated
    with pytest.raises(CorruptArtifact) as info:  # the next stage refuses it, naming the file
        finished_candidates(out.parent)
    one_line(str(info.value), str(out / "arc.h5"), "make train_arc")
    capsys.readouterr()
    assert train_candidate(cfg) == out  # train_arc itself trains the candidate again
    assert "arc.h5" in capsys.readouterr().err
    load_keras_h5(out / "arc.h5")
    assert {k: v for k, v in read_done(out).items() if k != "seconds"} == reference
