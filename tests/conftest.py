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
    tested in tests/test_core_bench_run.py with runs the benchmark itself writes."""
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
def fe_seeded_arc(tmp_path_factory) -> Path:
    """FastEstimator 1.7's own ARC network (`ARC.lstm_stacked`) with seeded random weights, saved by Keras as an
    arc.h5: the weights of the parity tests, so that a fresh clone runs them. The output layer's kernel is scaled x30
    so that the softmax has margins (>= 1e-3 on the parity tests' histories, where TF and torch differ by < 1e-5)
    and all three decisions occur (seed 4: 220 / 41 / 39 of 300 random histories) [I]."""
    tf = pytest.importorskip("tensorflow")
    import random

    import numpy as np
    from fastestimator.schedule.lr_schedule import ARC

    states = random.getstate(), np.random.get_state()
    tf.keras.utils.set_random_seed(4)  # also seeds Python's and NumPy's global generators: restored below
    model = ARC.lstm_stacked()
    random.setstate(states[0])
    np.random.set_state(states[1])
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel * 30, bias])
    path = tmp_path_factory.mktemp("fe_arc") / "arc.h5"
    model.save_weights(str(path))
    return path


@pytest.fixture(params=["fe_seeded", "published"])
def parity_arc(request, fe_seeded_arc) -> Path:
    """The weights a parity test runs with: FE's network with seeded weights (always), then the published arc.h5
    (an extra check of the published model itself; skips, naming the path, when it is missing)."""
    return request.getfixturevalue("published_arc") if request.param == "published" else fe_seeded_arc


@pytest.fixture(scope="session")
def paper_plan(tmp_path_factory):
    """`make plan PROFILE=paper` without bench-gpu results: (the planner, {study: its row}). Composing every stage's
    sweep takes seconds, so the plan tests share one."""
    from pipeline.plan import Planner

    planner = Planner(["profile=paper"], bench_results=tmp_path_factory.mktemp("no-bench-gpu") / "gpu.json")
    return planner, {row.study: row for row in planner.rows()}


# ---- helpers shared by tests of several modules -------------------------------------------------------------------
CONFIGS = REPO / "configs"
RESNET50_FILE = "resnet50-0676ba61.pth"  # torchvision ResNet50_Weights.IMAGENET1K_V1


def compose_cfg(name: str, *overrides: str):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def compose_stage(config: str, *overrides: str):
    from hydra import compose, initialize

    with initialize(version_base="1.3", config_path="../configs"):
        return compose(config, overrides=["profile=smoke", *overrides])


def save_resnet50_state(path: Path) -> torch.Tensor:
    """A ResNet50 state dict saved under torchvision's file name: conv1 random (returned, to recognise it), every
    other tensor a broadcast constant (one stored value each, so the file stays a few kB)."""
    import torch
    import torchvision

    state = torchvision.models.resnet50(weights=None).state_dict()
    marker = torch.randn(state["conv1.weight"].shape, generator=torch.Generator().manual_seed(7))
    saved = {k: torch.full((), 0.5, dtype=v.dtype).expand(v.shape) for k, v in state.items()}
    saved["conv1.weight"] = marker
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(saved, path)
    return marker


class Payload:
    """Unpickling this creates `marker` (a stand-in for any code a tampered file could run)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def one_line(message: str, *names: str) -> None:
    assert "\n" not in message and "Traceback" not in message, message
    for name in names:
        assert name in message, (name, message)


def crafted(tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """(file, marker): a crafted file of `kind` whose loading would create `marker`."""
    import pickle

    import torch

    marker = tmp_path / "pwned"
    if kind == "torch":  # torch.save's zip format, with the payload where a checkpoint holds its model
        path = tmp_path / "checkpoint.pt"
        torch.save({"model": Payload(marker), "optimizer": {}, "history": {}, "rng": {}, "trainer": {},
                    "log_offset": None, "point": 0, "rows": [], "ended": False}, path)
    elif kind == "raw":  # a bare pickle under a checkpoint's name
        path = tmp_path / "checkpoint.pt"
        path.write_bytes(pickle.dumps({"model": Payload(marker)}))
    else:  # the authors' offline_data.pkl layout
        path = tmp_path / "offline_data.pkl"
        path.write_bytes(pickle.dumps({"train_loss": [Payload(marker)], "val_loss": [[1.0]], "train_lr": [[0.1]],
                                       "label": [0]}))
    return path, marker


# ---- stage processes started, waited for and killed by the tests of killed workers -----------------------------

def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for(condition, timeout: float, what: str):
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start(module: str, root: Path, *args: str) -> subprocess.Popen:
    import subprocess

    env = {**os.environ, "PYTHONHASHSEED": "0", "ARC_REPRO_ROOT": str(root)}
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float) -> tuple[int | None, str, str]:
    """(exit status, stdout, stderr); status None when it ran past `timeout` (then it is killed)."""
    import signal
    import subprocess

    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err
    return proc.returncode, out, err
