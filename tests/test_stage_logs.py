"""Each stage's output also goes to ${paths.artifacts}/logs/<config name>.log (core.cli.stage)."""
from __future__ import annotations

import sys

import pytest
from hydra import compose, initialize

from conftest import run_module
from core.cli import stage
from core.errors import ConfigError


def train_cfg(root):
    with initialize(version_base="1.3", config_path="../configs"):
        return compose("train", overrides=["profile=smoke", f"paths.root={root}"])


def test_stage_output_goes_to_its_log_and_to_the_terminal(tmp_path, capsys):
    def work(cfg):
        print("epoch 1 done")
        print("a warning", file=sys.stderr)

    main = stage("train")(work)
    stdout = sys.stdout
    main.run(train_cfg(tmp_path))
    main.run(train_cfg(tmp_path))
    assert sys.stdout is stdout
    out = capsys.readouterr()
    assert out.out == "epoch 1 done\n" * 2 and out.err == "a warning\n" * 2
    log = (tmp_path / "artifacts" / "smoke" / "logs" / "train.log").read_text()
    lines = log.splitlines()
    assert [ln for ln in lines if ln.startswith("=== ")] == [lines[0], lines[3]]  # appended: one header per run
    assert "test_stage_logs" in lines[0] and lines[1:3] == ["epoch 1 done", "a warning"]


def test_bad_input_writes_no_log(tmp_path, capsys):
    def work(cfg):
        raise ConfigError("optimizer.lr must be > 0, got 0.0")

    with pytest.raises(SystemExit) as exit_info:
        stage("train")(work).run(train_cfg(tmp_path))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: optimizer.lr must be > 0, got 0.0\n"
    assert not any(tmp_path.iterdir())


def test_an_error_after_output_and_a_crash_are_logged(tmp_path, capsys):
    def late_error(cfg):
        print("started")
        raise ConfigError("data: broken file x.parquet")

    with pytest.raises(SystemExit):
        stage("train")(late_error).run(train_cfg(tmp_path))
    log = tmp_path / "artifacts" / "smoke" / "logs" / "train.log"
    assert log.read_text().splitlines()[1:] == ["started", "error: data: broken file x.parquet"]

    def crash(cfg):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        stage("train")(crash).run(train_cfg(tmp_path))
    assert "RuntimeError: boom" in log.read_text()  # a crash is logged even without output (SLURM jobs)


@pytest.mark.slow
def test_real_stage_entry_points(tmp_path):
    ok = run_module("core.single_run", "profile=smoke", cwd=tmp_path / "ok")
    assert ok.returncode == 0, ok.stderr
    log = (tmp_path / "ok" / "artifacts" / "smoke" / "logs" / "train.log").read_text().splitlines()
    assert log[0].startswith("=== ") and "core.single_run profile=smoke" in log[0]
    # everything the stage printed; Hydra callbacks that print after the stage returned are not in it
    assert log[1:] and log[1:] == ok.stdout.splitlines()[:len(log) - 1]
    assert any("single_runs/digits_cnn-" in ln for ln in log)
    bad = run_module("core.single_run", "profile=smoke", "optimizer.lr=0", cwd=tmp_path / "bad")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: optimizer.lr")
    assert not (tmp_path / "bad").exists()
