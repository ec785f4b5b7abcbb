"""Shared fixtures. Tests never touch ../shared at run time except to skip-or-use the published arc.h5."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The authors' published ARC weights (FastEstimator's arc.h5): $ARC_PUBLISHED_WEIGHTS, else ../shared/reference/
# beside the repository. Tests that need the file skip, naming this path, when it is missing.
PUBLISHED_ARC = Path(os.environ.get("ARC_PUBLISHED_WEIGHTS") or REPO.parent / "shared" / "reference" / "arc.h5")
needs_published_arc = pytest.mark.skipif(
    not PUBLISHED_ARC.is_file(),
    reason=f"published ARC weights not found at {PUBLISHED_ARC} (set ARC_PUBLISHED_WEIGHTS)")


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def published_arc() -> Path:
    """The published arc.h5; the test skips, naming the path looked at, when it is missing."""
    if not PUBLISHED_ARC.is_file():
        pytest.skip(f"published ARC weights not found at {PUBLISHED_ARC} (set ARC_PUBLISHED_WEIGHTS)")
    return PUBLISHED_ARC


def run_module(module: str, *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300):
    """Run `python -m module args...` from the repo root and return the CompletedProcess."""
    import subprocess

    full_env = {**os.environ, "PYTHONHASHSEED": "0", "ARC_REPRO_ROOT": str(cwd or REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)



@pytest.fixture(autouse=True)
def _absl_handler_on_the_real_stderr():
    """TensorFlow's absl logging handler keeps the stderr of its import, i.e. pytest's capture stream when a test
    module imports FastEstimator at collection. Hydra's logging setup (an entry point run in-process) closes old
    handlers, and absl's close() closes any stream that is not the current sys.stderr: it would close pytest's
    capture stream and crash the session ('lost sys.stderr'). Outside pytest the stream is the real stderr."""
    absl_logging = sys.modules.get("absl.logging")
    if absl_logging is not None:
        absl_logging.get_absl_handler().python_handler.stream = sys.__stderr__
    yield


def children(pid: int) -> list[int]:
    """The pids of `pid`'s child processes (from /proc), for tests that kill a worker."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture
def name_every_run(monkeypatch):
    """For tests whose benchmark runs are hand-made (no config names them: their digests are made up): the figures
    stage reads every run on disk of a study, as it did before it read only the runs the config names. Naming is
    tested in tests/test_named_runs.py with runs the benchmark itself writes."""
    import figures.__main__ as figures_main
    from core.bench_run import NamedRuns

    def every_run(study: str, overrides: list[str]) -> NamedRuns:
        bench = next(o.split("=", 1)[1].strip("'") for o in overrides if o.startswith("paths.benchmark="))
        return NamedRuns(sorted(p for p in (Path(bench) / study).glob("*/*") if p.is_dir()))

    monkeypatch.setattr(figures_main, "named_runs", every_run)


@pytest.fixture
def one_torch_thread():
    """ARC's LSTM is tiny: with TensorFlow's or a framework's thread pools in the same process, torch's threads only
    contend (0.3 s per decision instead of 5 ms on 2 cores). `pytestmark = pytest.mark.usefixtures(...)` per file."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def arc_weights(tmp_path_factory) -> str:
    """The published arc.h5 when present (decisions vary), else a seeded random ARC network's arc.h5."""
    if PUBLISHED_ARC.is_file():
        return str(PUBLISHED_ARC)
    import torch

    from arc_model.network import ARCNet
    from arc_model.weights import save_keras_h5

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return str(save_keras_h5(ARCNet(), tmp_path_factory.mktemp("arc") / "arc.h5"))


@pytest.fixture(scope="session")
def paper_plan(tmp_path_factory):
    """`make plan PROFILE=paper` without bench-gpu results: (the planner, {study: its row}). Composing every stage's
    sweep takes seconds, so the plan tests share one."""
    from pipeline.plan import Planner

    planner = Planner(["profile=paper"], bench_results=tmp_path_factory.mktemp("no-bench-gpu") / "gpu.json")
    return planner, {row.study: row for row in planner.rows()}
