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
