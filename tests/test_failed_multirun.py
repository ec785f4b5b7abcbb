"""A multirun that fails leaves nothing under artifacts/: not even Hydra's sweep directory
(hydra_plugins.arc_sweeper.CoveringSweeper removes the one it created), nor a half-written stage output."""
from __future__ import annotations

import pytest

from conftest import run_module
from hydra_plugins.arc_sweeper.covering_sweeper import remove_hydra_record


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("args, says", [
    (["paths.candidates=/nonexistent"], "no finished ARC candidates under /nonexistent"),  # pre-flight, in a job
    (["sizes.smoke.nope=1"], "nope"),  # composition
])
def test_a_failed_multirun_leaves_no_sweep_directory(tmp_path, args, says):
    out = run_module("selection", "-m", "profile=smoke", *args, cwd=tmp_path)
    assert out.returncode != 0 and says in out.stderr, out.stderr[-2000:]
    assert not list(tmp_path.rglob("multirun")), files_under(tmp_path)
    assert [f for f in files_under(tmp_path) if "/logs/" not in f] == []  # at most the stage's own log


def test_a_sweep_directory_holding_more_than_hydras_record_is_kept(tmp_path):
    sweep = tmp_path / "multirun" / "selection"
    (sweep / "0").mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("x")
    (sweep / "0" / "result.csv").write_text("kept")
    remove_hydra_record(sweep)
    assert (sweep / "0" / "result.csv").is_file()
    (sweep / "0" / "result.csv").unlink()
    remove_hydra_record(sweep)
    assert not (tmp_path / "multirun").exists()
