"""hydra_plugins.arc_sweeper: the basic sweeper validating every swept value once (configs/hydra/default.yaml), and a
multirun that fails leaving nothing under artifacts/: not even Hydra's sweep directory (CoveringSweeper removes the one
it created), nor a half-written stage output."""
from __future__ import annotations

import pytest

from conftest import run_module
from hydra_plugins.arc_sweeper.covering_sweeper import covering_jobs, remove_hydra_record


def test_covering_jobs_validates_each_value_once():
    batch = [[f"s={s}", f"lr0={lr}", f"seed={seed}"] for s in "ab" for lr in (1, 2) for seed in (0, 1, 2)]
    chosen = covering_jobs(batch)
    # first s=a lr0=1 seed=0 (3 new values); then the first job with 3 new ones, s=b lr0=2 seed=1; then seed=2 is
    # the only value left, first brought by s=a lr0=1 seed=2: 3 compositions, as many as seed has values
    assert chosen == [["s=a", "lr0=1", "seed=0"], ["s=a", "lr0=1", "seed=2"], ["s=b", "lr0=2", "seed=1"]]
    assert {o for job in chosen for o in job} == {o for job in batch for o in job}
    assert covering_jobs([]) == [] and covering_jobs([["x=1"], ["x=1"]]) == [["x=1"]]
    grid = [[f"s={s}", f"lr0={lr}", f"seed={seed}"] for s in range(8) for lr in range(3) for seed in range(5)]
    assert len(covering_jobs(grid)) == 8  # the longest parameter's values (taking jobs in order: 14)


def test_a_bad_swept_value_fails_before_any_job_runs(tmp_path):
    # seed=oops is the last value of the sweep: it is validated (composed) before the first job starts
    result = run_module("experiments.benchmark", "-m", "experiment=table2_cifar10", "profile=smoke",
                        "schedule=constant", "lr0=0.01", "seed=0,oops", cwd=tmp_path)
    assert result.returncode != 0
    assert "seed" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "artifacts" / "smoke" / "benchmark").exists()


def test_stop_workers_kills_the_idle_loky_workers_and_a_later_grid_gets_new_ones():
    import os

    from joblib import Parallel, delayed

    from hydra_plugins.arc_sweeper.covering_sweeper import stop_workers

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    pids = set(Parallel(n_jobs=2, backend="loky")(delayed(os.getpid)() for _ in range(4)))
    assert pids and os.getpid() not in pids and all(alive(pid) for pid in pids)  # idle, kept for 300 s by loky
    stop_workers()
    assert not any(alive(pid) for pid in pids)
    again = set(Parallel(n_jobs=2, backend="loky")(delayed(os.getpid)() for _ in range(2)))
    assert again and not again & pids
    stop_workers()
    stop_workers()  # nothing left to stop: a no-op


def test_loky_workers_check_memory_with_psutil_instead_of_collecting_after_every_job():
    # without psutil a loky worker runs gc.collect() after every job longer than 1 s: 0.23-0.33 s with torch loaded
    from joblib.externals.loky import process_executor

    assert process_executor._USE_PSUTIL, "psutil is missing from the environment (requirements.txt lists it)"


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.slow
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

