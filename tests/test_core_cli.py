"""Bad input at every stage entry point: one clear line naming the key or file, a non-zero exit,
no traceback, and nothing written under artifacts/.

Each case runs the entry point's `main()` in this process with its command line (the whole path a user takes:
core.cli's checks, Hydra's composition, the stage), which costs a fraction of a second where a subprocess costs
seconds; `test_the_command_line_in_a_real_process` runs a few of them as real `python -m` processes.
"""
from __future__ import annotations

import importlib
import logging
import pickle
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from arc_model.network import ARCNet
from arc_model.weights import save_keras_h5
from conftest import run_module
from core.points import COLUMNS

ENTRY = {"datagen": "datagen.__main__", "arc_model": "arc_model.__main__", "selection": "selection.__main__",
         "figures": "figures.__main__"}


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def point_row(**extra) -> dict:
    return {"task": "t", "run_id": "t-r0", "point": 0, "seed": 1, "optimizer": "adam", "frequency": 1, "lr0": 1e-3,
            "cycles": 1, "train_loss": [1.0, 0.9], "val_loss": [1.0], "train_lr": [1e-3],
            "branch_loss": [0.3, 0.2, 0.1], "chosen": 1, "replicate_loss": 0.2, "label_raw": 2, "label": 2, **extra}


def inputs(root: Path) -> dict[str, str]:
    """Bad input files, outside artifacts/; returns {placeholder: path}."""
    d = root / "inputs"
    d.mkdir()
    save_keras_h5(ARCNet(), d / "arc.h5")
    save_keras_h5(ARCNet(), d / "other_arch.h5")
    with h5py.File(d / "other_arch.h5", "r+") as f:  # a 5-way head: another network than ARC's 3 actions
        del f["dense_1/dense_1/kernel:0"], f["dense_1/dense_1/bias:0"]
        f["dense_1"].create_dataset("dense_1/kernel:0", data=np.zeros((32, 5), np.float32))
        f["dense_1"].create_dataset("dense_1/bias:0", data=np.zeros(5, np.float32))
    (d / "garbage.h5").write_bytes(b"\x89HDF garbage" * 20)
    pd.DataFrame([point_row()], columns=list(COLUMNS)).iloc[:0].to_parquet(d / "empty.parquet", index=False)
    pd.DataFrame([point_row()]).drop(columns=["label"]).to_parquet(d / "labelless.parquet", index=False)
    whole = (d / "empty.parquet").read_bytes()
    (d / "truncated.parquet").write_bytes(whole[: len(whole) // 2])
    (d / "evil.pkl").write_bytes(pickle.dumps({"train_loss": [Payload(root / "pwned")]}))
    torch.save({"model": Payload(root / "pwned")}, d / "evil.pt")
    (d / "afile").write_text("not a directory")
    return {f"<{p.name}>": str(p) for p in d.iterdir()}


def artifacts(root: Path) -> Path:
    return root / "artifacts" / "smoke"


def candidate_dir(root: Path, weights: str | None, done: str = '{"candidate": 1}') -> None:
    out = artifacts(root) / "candidates" / "synthetic64-repo-c1-00000000"
    out.mkdir(parents=True)
    if weights:
        (out / "arc.h5").write_bytes(Path(weights).read_bytes())
    (out / "DONE").write_text(done)


def benchmark_run_without_files(root: Path) -> None:
    out = artifacts(root) / "benchmark" / "benchmark" / "ptb" / "constant-lr1-s0-00000000"
    out.mkdir(parents=True)
    (out / "DONE").write_text('{"task": "ptb", "schedule": "constant", "lr0": 1.0, "seed": 0, "best_metric": 50.0}')


def truncated_datagen_run(root: Path) -> None:
    out = artifacts(root) / "datagen" / "svhn_vgg19bn"
    out.mkdir(parents=True)
    (out / "run-000.parquet").write_bytes(b"PAR1 truncated")


SETUP = {"candidate of another architecture": lambda root, files: candidate_dir(root, files["<other_arch.h5>"]),
         "candidate with a garbage DONE": lambda root, files: candidate_dir(root, files["<arc.h5>"], "{garbage"),
         "benchmark row without its files": lambda root, files: benchmark_run_without_files(root),
         "truncated datagen run": lambda root, files: truncated_datagen_run(root)}

# (entry point, arguments, what the line must name, setup)
CASES = [
    ("datagen", ["frequency_min=0"], "frequency_min", None),
    ("datagen", ["paths.datagen=${paths.dataset}"], "paths.datagen", None),
    ("datagen", ["profile=paper", "profile.device=cpu", "paths.data=<afile>"], "paths.data", None),
    ("datagen", ["datagen_task.lr_range=[0.1,0.01]"], "datagen_task.lr_range", None),
    ("datagen", ["lr0_distribution=normal"], "lr0_distribution", None),
    ("datagen.correct", ["rule=median"], "rule", None),
    ("datagen.correct", ["ties=random"], "ties", None),
    ("datagen.correct", [], "run-000.parquet", "truncated datagen run"),
    ("datagen.plan", ["frequency_max=0"], "frequency_max", None),
    ("datagen.pickle_io", ["import", "<evil.pkl>", "<afile>.parquet"], "--trust-pickle", None),
    ("datagen.pickle_io", ["export", "<afile>.missing.parquet", "<afile>.pkl"], "afile.missing.parquet", None),
    ("arc_model", ["data.path=<empty.parquet>"], "empty.parquet", None),
    ("arc_model", ["data.path=<labelless.parquet>"], "label", None),
    ("arc_model", ["data.path=<truncated.parquet>"], "truncated.parquet", None),
    ("arc_model", ["data.path=<evil.pkl>"], "trust_pickle", None),
    ("arc_model", ["paths.candidates=${paths.datagen}"], "paths.candidates", None),
    ("arc_model.candidates", [], "no finished ARC candidates", None),
    ("arc_model.candidates", [], "DONE", "candidate with a garbage DONE"),
    ("selection", ["lr0s=[0.001,-0.01]", "lr0=0.001"], "lr0s", None),
    ("selection", ["lr0s=[0.001]", "lr0=0.001", "frequency=0"], "frequency", None),
    ("selection", ["lr0s=[0.001]", "lr0=0.001"], "c1-00000000/arc.h5", "candidate of another architecture"),
    ("selection", ["paths.selection=${paths.candidates}/sel"], "paths.selection", None),
    ("selection.pick", [], "paths.candidates", None),
    ("experiments.range_test", ["bench_task.range_criterion=median"], "bench_task.range_criterion", None),
    ("experiments.range_test", ["paths.benchmark=${paths.dataset}/bench"], "paths.benchmark", None),
    ("experiments.benchmark", ["schedule=arc", "lr0=0.01", "paths.selected_arc=<other_arch.h5>"], "other_arch.h5",
     None),
    ("experiments.benchmark", ["schedule=arc", "lr0=0.01", "paths.selected_arc=<garbage.h5>"], "garbage.h5", None),
    ("experiments.benchmark", ["schedule=arc", "lr0=0.01", "schedule.frequency=0", "paths.selected_arc=<arc.h5>"],
     "frequency", None),
    ("experiments.benchmark", ["schedule=cd", "lr0=0.01", "bench_task.lr0s=[0.01,0.0]"], "bench_task.lr0s", None),
    ("experiments.benchmark", ["schedule=cd", "lr0=0.01", "paths.benchmark=<afile>"], "paths.benchmark", None),
    ("experiments.table", [], "no finished runs", None),
    ("experiments.table", [], "epochs.parquet", "benchmark row without its files"),
    ("figures", ["source=bogus"], "source", None),
    ("figures", [], "make benchmark", None),
    ("core.single_run", ["init_checkpoint=<evil.pt>"], "evil.pt", None),
    ("core.single_run", ["profile=paper", "profile.device=cpu", "paths.data=<afile>"], "paths.data", None),
]


def case_id(case) -> str:
    return f"{case[0]}:{case[3] or ' '.join(case[1]) or 'no input'}"


# experiments.table and figures with no runs on disk compose every job of every study to name the runs the config
# names (core.bench_run.named_runs): tens of seconds each, where every other case takes about a second
SLOW_CASES = {"experiments.table:no input", "experiments.table:benchmark row without its files", "figures:no input"}


def substitute(args: list[str], files: dict[str, str]) -> list[str]:
    out = []
    for arg in args:
        for placeholder, path in files.items():
            arg = arg.replace(placeholder, path)
        out.append(arg)
    return out


def snapshot(root: Path) -> list[Path]:
    return sorted(p for p in (root / "artifacts").rglob("*")) if (root / "artifacts").exists() else []


def run_in_process(module: str, argv: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """`python -m module argv...` in this process: (exit status, stderr). Hydra's global state and the logging
    handlers it installs are put back afterwards."""
    from hydra.core.global_hydra import GlobalHydra

    main = importlib.import_module(ENTRY.get(module, module)).main
    hydra_args = [] if module == "datagen.pickle_io" else ["profile=smoke"]
    monkeypatch.setattr(sys, "argv", [module, *hydra_args, *argv])
    root_logger = logging.getLogger()
    handlers, level = list(root_logger.handlers), root_logger.level
    capsys.readouterr()
    try:
        main() if module != "datagen.pickle_io" else main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
        root_logger.handlers[:] = handlers
        root_logger.setLevel(level)
    return code, capsys.readouterr().err


def check(code: int, stderr: str, named: str, root: Path, before: list[Path]) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code != 0, stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr[-3000:]
    assert named in lines[0], (named, lines[0])
    assert snapshot(root) == before, "something was written under artifacts/"
    assert not (root / "pwned").exists()


@pytest.mark.parametrize("module, args, named, setup",
                         [pytest.param(*c, marks=pytest.mark.slow) if case_id(c) in SLOW_CASES else c for c in CASES],
                         ids=[case_id(c) for c in CASES])
def test_bad_input_is_one_line_naming_it_and_writes_nothing(tmp_path, monkeypatch, capsys, module, args, named,
                                                            setup):
    monkeypatch.setenv("ARC_REPRO_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    files = inputs(tmp_path)
    if setup:
        SETUP[setup](tmp_path, files)
    before = snapshot(tmp_path)
    code, stderr = run_in_process(module, substitute(args, files), monkeypatch, capsys)
    check(code, stderr, named, tmp_path, before)


@pytest.mark.slow
@pytest.mark.parametrize("module, args, named", [
    ("experiments.benchmark", ["schedule=arc", "lr0=0.01", "paths.selected_arc=<other_arch.h5>"], "other_arch.h5"),
    ("arc_model", ["paths.candidates=${paths.datagen}"], "paths.candidates"),
])
def test_the_command_line_in_a_real_process(tmp_path, module, args, named):
    files = inputs(tmp_path)
    result = run_module(module, "profile=smoke", *substitute(args, files), cwd=tmp_path)
    check(result.returncode, result.stderr, named, tmp_path, [])


def test_at_least_25_cases_cover_every_entry_point():
    entry_points = {"datagen", "datagen.correct", "datagen.plan", "datagen.pickle_io", "arc_model",
                    "arc_model.candidates", "selection", "selection.pick", "experiments.range_test",
                    "experiments.benchmark", "experiments.table", "figures", "core.single_run"}
    assert len(CASES) >= 25 and {c[0] for c in CASES} == entry_points
