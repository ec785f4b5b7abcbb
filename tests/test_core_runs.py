"""core.runs: a run's own damaged files are named and the run redone; the readers of an earlier stage refuse damaged
runs."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from conftest import Payload, one_line
from core.artifacts import read_done
from core.errors import CorruptArtifact
from core.runs import finished_runs, train_into
from core.tasks.digits import DigitsCNN
from core.training import Run


def digits_run(out: Path, epochs: int = 2, keep_checkpoint: bool = False) -> dict:
    cfg = OmegaConf.create({"task": "digits"})
    return train_into(out, cfg, lambda: Run(DigitsCNN(n_train=96), "adam", 1e-3, seed=3, max_steps_per_epoch=3),
                      epochs, keep_checkpoint=keep_checkpoint)


def result(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "wall_seconds"}


@pytest.mark.parametrize("damage, named", [
    ("garbage checkpoint", "checkpoint.pt"), ("crafted checkpoint", "checkpoint.pt"),
    ("garbage DONE", "DONE"), ("truncated DONE", "DONE"), ("truncated epochs.parquet", "epochs.parquet"),
    ("missing steps.parquet", "steps.parquet")])
def test_a_runs_own_damaged_files_are_named_and_the_run_redone(tmp_path, capsys, damage, named):
    reference = digits_run(tmp_path / "reference")
    out = tmp_path / "run"
    marker = tmp_path / "pwned"
    if "checkpoint" in damage:  # a kill left a checkpoint, then the file was damaged
        digits_run(out, epochs=1, keep_checkpoint=True)
        (out / "DONE").unlink()
        if damage.startswith("garbage"):
            (out / "checkpoint.pt").write_bytes(b"\x00garbage" * 10)
        else:
            torch.save({"model": Payload(marker)}, out / "checkpoint.pt")
    else:
        digits_run(out)
        target = out / damage.split()[-1]
        if damage.startswith("garbage"):
            target.write_text("not json {")
        elif damage.startswith("truncated"):
            target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
        else:
            target.unlink()
    capsys.readouterr()
    row = digits_run(out)
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and named in warning[0] and str(out) in warning[0], warning
    assert result(row) == result(reference) and result(read_done(out)) == result(reference)
    assert not marker.exists()
    if "checkpoint" in damage:
        epochs = pd.read_parquet(out / "epochs.parquet")
        pd.testing.assert_frame_equal(epochs.drop(columns="seconds"),
                                      pd.read_parquet(tmp_path / "reference" / "epochs.parquet").drop(columns="seconds"))


def test_readers_of_an_earlier_stage_refuse_damaged_runs(tmp_path):
    from core.results import study_rows

    study = tmp_path / "benchmark" / "benchmark"
    good = study / "ptb" / "constant-lr1-s0-aaaa"
    digits_run(good)
    (study / "ptb" / "constant-lr1-s1-bbbb").mkdir()
    (study / "ptb" / "constant-lr1-s1-bbbb" / "DONE").write_text('{"task": "pt')  # truncated DONE
    with pytest.raises(CorruptArtifact) as info:
        finished_runs(study, "*/*")
    one_line(str(info.value), "constant-lr1-s1-bbbb/DONE", "rerun")
    (study / "ptb" / "constant-lr1-s1-bbbb" / "DONE").write_text(json.dumps(read_done(good)))  # a row ...
    with pytest.raises(CorruptArtifact) as info:  # ... without its run's files
        study_rows(tmp_path / "benchmark")
    one_line(str(info.value), "constant-lr1-s1-bbbb", "epochs.parquet")


def test_parquet_files_are_read_and_written_with_the_named_engine_alone(tmp_path, monkeypatch):
    """core.artifacts names fastparquet: pandas' "auto" looked for pyarrow first on every call (the locked pyarrow 26
    could not import beside numpy 1.26.4: ~10 ms a file, every time). A round trip keeps every value."""
    import sys

    from core.artifacts import atomic_write_parquet, read_parquet

    looked_for = []

    class Recorder:  # a finder that only notes the modules looked for
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "pyarrow":
                looked_for.append(name)
            return None

    frame = pd.DataFrame({"epoch": [1, 2], "loss": [0.5, float("nan")], "task": ["cifar10", "ptb"],
                          "diverged": [False, True]})
    monkeypatch.delitem(sys.modules, "pyarrow", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Recorder(), *sys.meta_path])
    atomic_write_parquet(tmp_path / "f.parquet", frame)
    back = read_parquet(tmp_path / "f.parquet")
    pd.read_parquet(tmp_path / "f.parquet")  # the check can fail: pandas' own default looks for pyarrow
    assert looked_for == ["pyarrow"]
    pd.testing.assert_frame_equal(back, frame)
    assert "pyarrow==" not in (Path(__file__).resolve().parents[1] / "requirements-lock.txt").read_text()
