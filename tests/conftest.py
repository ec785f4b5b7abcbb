"""Shared fixtures. Tests never touch ../shared at run time except to skip-or-use the published arc.h5."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo() -> Path:
    return REPO


def run_module(module: str, *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300):
    """Run `python -m module args...` from the repo root and return the CompletedProcess."""
    import subprocess

    full_env = {**os.environ, "PYTHONHASHSEED": "0", "ARC_REPRO_ROOT": str(cwd or REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
