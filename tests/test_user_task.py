"""A user's own task in ARC's training set (examples/own_task/): datagen takes it beside a Table-1 task, the correction
labels its points, a candidate trains on them; bad input is one line before anything is written. Smoke, subprocesses,
artifacts under tmp_path (ARC_REPRO_ROOT)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import datagen.config  # noqa: F401  (registers the schemas)
from conftest import REPO, run_module
from core.cli import CONFIGS, unknown_choice
from core.points import read_points
from test_core_cli import run_in_process

OWN = REPO / "examples" / "own_task" / "configs"
SEARCHPATH = f"hydra.searchpath=[file://{OWN}]"
# A user's module outside the repository: a Task missing methods, and a class with the methods but not a Task.
USER_MODULE = '''
import torch
from core.tasks import Task

class Half(Task):
    def build_model(self):
        return torch.nn.Linear(2, 2)

class Duck:
    def __init__(self, device="cpu"): pass
    def train_batches(self, generator): return iter(())
    def build_model(self): return torch.nn.Linear(2, 2)
    def train_loss(self, model, batch): return torch.zeros(())
    def evaluate(self, model): return 0.0, 0.0
'''


def smoke(root: Path) -> Path:
    return root / "artifacts" / "smoke"


@pytest.mark.slow
def test_own_task_joins_the_dataset_and_a_candidate_trains_on_it(tmp_path):
    gen = run_module("datagen", "-m", "profile=smoke", SEARCHPATH, "datagen_task=own_blobs,imdb_lstm", cwd=tmp_path)
    assert gen.returncode == 0, gen.stderr[-2000:]
    fixed = run_module("datagen.correct", "profile=smoke", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    points = read_points(smoke(tmp_path) / "dataset" / "dataset.parquet")
    counts = points.task.value_counts().to_dict()
    assert counts == {"own_blobs": 3, "imdb_lstm": 3}  # smoke: 1 run x 3 points per task
    assert points[points.task == "own_blobs"].label.isin([0, 1, 2]).all()
    arc = run_module("arc_model", "profile=smoke", "candidate=1", cwd=tmp_path)
    assert arc.returncode == 0, arc.stderr[-2000:]
    (done,) = (smoke(tmp_path) / "candidates").glob("*/DONE")
    assert json.loads(done.read_text())["points"] == 6


def test_the_experiment_adds_own_blobs_to_table1s_sweep():
    """examples/own_task/configs/experiment/datagen_own_blobs.yaml: datagen_table1's tasks (its list, in its order)
    with own_blobs first, and datagen_table1's sizes."""
    overrides = ["profile=mini", SEARCHPATH, "experiment=datagen_own_blobs"]
    assert unknown_choice(overrides) is None
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        own = compose("datagen", overrides=overrides, return_hydra_config=True)
        table1 = compose("datagen", overrides=["profile=mini"], return_hydra_config=True)
    assert own.hydra.sweeper.params.datagen_task == "own_blobs," + table1.hydra.sweeper.params.datagen_task
    assert own.sizes == table1.sizes


def bad_configs() -> dict:
    """name -> (changes to own_blobs.yaml, what the one line must say)."""
    return {
        "no_import": ({"target": "examples.own_task.missing.Blobs"},
                      "datagen_task.target: cannot import examples.own_task.missing.Blobs"),
        "not_a_task": ({"target": "my_tasks.Duck"}, "datagen_task.target: my_tasks.Duck is not a subclass of "
                                                    "core.tasks.Task"),
        "missing_methods": ({"target": "my_tasks.Half"}, "datagen_task.target: my_tasks.Half does not define "
                                                         "['evaluate', 'train_batches', 'train_loss']"),
        "no_lr_range": ({"lr_range": None}, "datagen_task.lr_range has no value"),
        "one_lr": ({"lr_range": [1e-4]}, "datagen_task.lr_range must be [min, max] with 0 < min <= max, got [0.0001]"),
        "zero_lr": ({"lr_range": [0, 1e-3]}, "datagen_task.lr_range must be [min, max]"),
        "no_smoke_size": ({"sizes": {"mini": {"args": {}}}}, "datagen_task.sizes: no sizes for profile 'smoke'"),
        "same_number": ({"number": 7}, "datagen_task.number: same_number and imdb_lstm"),
    }


@pytest.mark.parametrize("name", list(bad_configs()))
def test_bad_own_task_is_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys, name):
    """`python -m datagen` in this process (test_core_cli.run_in_process: its exit status and stderr); the
    subprocess below checks the same of a sweep."""
    changes, expected = bad_configs()[name]
    config = OmegaConf.to_container(OmegaConf.load(OWN / "datagen_task" / "own_blobs.yaml"))
    config.update(changes, name=name)
    config = {k: v for k, v in config.items() if v is not None}
    (tmp_path / "configs" / "datagen_task").mkdir(parents=True)
    (tmp_path / "configs" / "datagen_task" / f"{name}.yaml").write_text(OmegaConf.to_yaml(config))
    (tmp_path / "my_tasks.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    root = tmp_path / "root"
    monkeypatch.setenv("ARC_REPRO_ROOT", str(root))
    code, stderr = run_in_process("datagen", [f"hydra.searchpath=[file://{tmp_path / 'configs'}]",
                                              f"datagen_task={name}"], monkeypatch, capsys)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {expected}"), stderr[-2000:]
    assert not root.exists()  # no run directory, no log


@pytest.mark.slow
def test_a_bad_own_task_first_in_a_sweep_stops_it_before_any_training(tmp_path):
    config = OmegaConf.to_container(OmegaConf.load(OWN / "datagen_task" / "own_blobs.yaml"))
    (tmp_path / "configs" / "datagen_task").mkdir(parents=True)
    (tmp_path / "configs" / "datagen_task" / "own_blobs.yaml").write_text(
        OmegaConf.to_yaml({**config, "target": "collections.OrderedDict"}))
    root = tmp_path / "root"
    out = run_module("datagen", "-m", "profile=smoke", f"hydra.searchpath=[file://{tmp_path / 'configs'}]",
                     "datagen_task=own_blobs,imdb_lstm", cwd=root)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "collections.OrderedDict" in lines[0], out.stderr[-2000:]
    assert not (smoke(root) / "datagen").exists()  # Hydra's own multirun/ record only
