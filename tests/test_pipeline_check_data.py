"""pipeline.check_data (`make check-data`): every dataset, tokenizer and weight file of the paper profile checked before
work, and the loaders stopping before work on the files it lists."""
from __future__ import annotations

import contextlib
import dataclasses
import io
from pathlib import Path

import pytest
from hydra.utils import get_object

from core.errors import DataError
from core.inputs import REGISTRY, missing
from pipeline import check_data
from pipeline.check_data import consumers, inputs_of, profile_inputs, report

pytestmark = pytest.mark.slow  # the inputs of every paper loader are composed once per module (seconds)


@pytest.fixture(scope="module")
def empty_roots(tmp_path_factory):
    data, weights = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("weights")
    overrides = ["profile=paper", f"paths.data={data}", f"paths.weights={weights}"]
    found, paths = consumers(overrides)
    rows, _ = profile_inputs(overrides)
    return data, weights, found, rows, paths


def test_check_data_lists_every_dataset_tokenizer_and_weight_file_of_the_paper_profile(empty_roots):
    data, weights, found, rows, paths = empty_roots
    # the 12 datagen tasks (9 datasets), CIFAR10, MSCOCO, PTB, SVHN, the BERT tokenizer and weights, ResNet50
    assert {item.source.name for item, _ in rows} == set(REGISTRY)
    kinds = {item.source.name: item.source.kind for item, _ in rows}
    assert kinds["bert_tokenizer"] == "tokenizer" and kinds["bert_weights"] == kinds["resnet50_imagenet"] == "weights"
    readers = {name for _, names in rows for name in names}
    assert {r for r, _, _ in found} == readers  # every loader of the profile reads something
    assert len([r for r in readers if r.startswith("datagen ")]) == 12
    assert {"selection proxy", "benchmark cifar10", "benchmark mscoco", "benchmark ptb"} <= readers
    for item, _ in rows:  # under paths.data or paths.weights, as the loaders look for them
        assert str(item.path).startswith((str(data), str(weights))), item.path
    assert any(str(item.path).startswith(str(weights)) for item, _ in rows)  # ResNet50 under paths.weights


def test_check_data_reports_missing_files_with_paths_and_sizes_and_fails(empty_roots):
    data, weights, _, rows, paths = empty_roots
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        absent = report(rows, paths, "paper")
    lines = out.getvalue().splitlines()
    assert absent == len(rows)
    missing = [ln for ln in lines if ln.startswith("MISSING")]
    assert len(missing) == len(rows)
    for item, _ in rows:
        line = next(ln for ln in missing if f" {item.path} " in ln)
        assert "≈" in line  # the expected size
    assert lines[-1].endswith(f"{len(rows)} missing")


def test_check_data_main_exits_non_zero_when_anything_is_missing(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        check_data.main(["profile=paper", f"paths.data={tmp_path}", f"paths.weights={tmp_path}"])
    assert stop.value.code == 1
    captured = capsys.readouterr()
    assert "MISSING" in captured.out and "missing" in captured.err


def test_check_data_finds_a_complete_tree(empty_roots, tmp_path):
    data, weights, _, rows, paths = empty_roots
    moved = []
    for item, names in rows:
        path = Path(str(item.path).replace(str(data), str(tmp_path / "d")).replace(str(weights), str(tmp_path / "w")))
        if item.expected.is_dir:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x")
        moved.append((dataclasses.replace(item, path=path), names))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert report(moved, {"data": tmp_path / "d", "weights": tmp_path / "w"}, "paper") == 0
    assert "MISSING" not in out.getvalue() and out.getvalue().splitlines()[-1].endswith("0 missing")


def test_every_paper_loader_stops_before_work_naming_the_files_check_data_lists(empty_roots):
    """The loaders and check-data share one source: each loader, built as the paper config builds it on an empty
    paths.data, raises a one-line DataError naming exactly the files its paper_inputs gives check-data."""
    *_, found, _, _ = empty_roots
    for reader, target, args in found:
        expected = missing(inputs_of(target, args))  # (ResNet50 may lie in this machine's torch cache)
        with pytest.raises(DataError) as err:
            get_object(target)(**args)
        message = str(err.value)
        assert "\n" not in message
        for item in expected:
            assert str(item.path) in message, (reader, item.path)
