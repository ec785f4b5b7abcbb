"""examples/: each script runs as-is (a subprocess from the repository root) and prints ARC's calls and its final LR.

* every call line is `ARC epoch <e>: <action> x<m>, lr <new LR>` at epochs 4, 7, 10, 13 (ARC every 3 epochs);
* plain_pytorch.py: the final LR is the start LR times the printed multipliers (float32 at each call, as FE);
  without weights it says its decisions are not ARC's, and a missing weights file is one line naming it;
* README "ARC in your own training" quotes plain_pytorch.py's block between `# README: begin` and `# README: end`.
The published arc.h5 when present (conftest.PUBLISHED_ARC), else the examples' own random weights.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import PUBLISHED_ARC, REPO

CALL = re.compile(r"^ARC epoch (\d+): (raise|keep|decrease) x([\d.]+), lr (\S+)$", re.M)
NAMES = {"raise": 1.618, "keep": 1.0, "decrease": 0.618}


def run_example(name: str, weights: str = "", timeout: int = 1200) -> subprocess.CompletedProcess:
    """Each runs in well under a minute on a free CPU (FastEstimator's ~40 s: TensorFlow's import); the timeout only
    catches a hang, and is wide: on a 2-core machine shared with a long job the FastEstimator example took 10 min."""
    env = {**os.environ, "ARC_WEIGHTS": weights, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, f"examples/{name}"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def calls(stdout: str) -> list[tuple[int, float, float]]:
    found = [(int(e), float(m), float(lr)) for e, action, m, lr in CALL.findall(stdout)]
    assert all(NAMES[a] == float(m) for _, a, m, _ in CALL.findall(stdout))
    return found


def final_lr(stdout: str) -> float:
    return float(re.search(r"^final lr: (\S+)$", stdout, re.M).group(1))


def published() -> str:
    return str(PUBLISHED_ARC) if PUBLISHED_ARC.is_file() else ""


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["", "published"])
def test_plain_pytorch_ends_at_lr0_times_the_printed_multipliers(weights):
    if weights and not published():
        pytest.skip(f"published ARC weights not found at {PUBLISHED_ARC}")
    out = run_example("plain_pytorch.py", published() if weights else "")
    assert out.returncode == 0, out.stderr
    found = calls(out.stdout)
    assert [e for e, _, _ in found] == [4, 7, 10, 13]
    lr = float(re.search(r"^start lr: (\S+)$", out.stdout, re.M).group(1))
    for _, m, printed in found:
        lr = float(np.float32(lr * m))  # FE: np.float32(lr * multiplier)
        assert printed == pytest.approx(lr, rel=1e-5)  # printed with 6 significant digits
    assert final_lr(out.stdout) == lr
    product = float(np.prod([m for _, m, _ in found]))
    assert final_lr(out.stdout) == pytest.approx(0.05 * product, rel=1e-6)
    assert ("random weights: the decisions are not ARC's" in out.stdout) == (not weights)


def test_plain_pytorch_names_a_missing_weights_file(tmp_path):
    out = run_example("plain_pytorch.py", str(tmp_path / "nowhere.h5"))
    assert out.returncode == 1
    missing = tmp_path / "nowhere.h5"
    assert out.stderr.strip() == f"ARC weights file not found: {missing} (from --weights or $ARC_WEIGHTS)"


@pytest.mark.slow
@pytest.mark.parametrize("name, needs", [("fastestimator_trace.py", "fastestimator"),
                                         ("lightning_callback.py", "lightning"),
                                         ("hf_trainer_callback.py", "accelerate")])
def test_framework_example_prints_arcs_calls_and_final_lr(name, needs):
    if importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed")
    out = run_example(name, published())
    assert out.returncode == 0, out.stderr[-3000:]
    found = calls(out.stdout)
    assert [e for e, _, _ in found] == [4, 7, 10, 13]
    assert final_lr(out.stdout) == pytest.approx(found[-1][2], rel=1e-5)
    assert re.search(r"^decisions: \[\(4, ", out.stdout, re.M)


def test_readme_quotes_the_plain_example():
    script = (REPO / "examples" / "plain_pytorch.py").read_text()
    block = script.split("# README: begin\n")[1].split("# README: end\n")[0]
    readme = (REPO / "README.md").read_text()
    section = readme.split("## ARC in your own training\n")[1].split("\n## ")[0]
    quoted = re.findall(r"```python\n(.*?)```", section, re.S)
    assert block in quoted, "README's quote of examples/plain_pytorch.py is out of date"
    assert "examples/plain_pytorch.py" in section
    for name in ("fastestimator_trace.py", "lightning_callback.py", "hf_trainer_callback.py"):
        assert f"examples/{name}" in section, name
