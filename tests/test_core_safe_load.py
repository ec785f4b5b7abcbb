"""core.safe_load and core.offline_pickle: nothing read from disk executes code. Crafted pickles carry a
`__reduce__` that would create a marker file when unpickled: every loader must refuse them in one line naming the
file, and the marker must never appear."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import crafted, one_line
from core.errors import CheckpointError, UserError
from core.tasks.digits import DigitsCNN
from core.training import Run, load_checkpoint


def load_run_checkpoint(path):
    return load_checkpoint(path)


def restore_run(path):
    return Run(DigitsCNN(n_train=64), "adam", 1e-3, seed=0).restore(path)


def restore_candidate(path):
    from arc_model.candidate_trainer import CandidateTrainer

    x = np.zeros((4, 300, 3), np.float32)
    CandidateTrainer(x, np.zeros(4, np.int64), np.arange(4), np.arange(0), seed=0).restore(path)


def read_datagen_progress(path):
    from datagen.procedure import read_progress

    return read_progress(path)


def read_offline(path):
    from core.offline_pickle import read_offline_pickle

    return read_offline_pickle(path)


def arc_points(path):
    from arc_model.data import load_points

    return load_points(path)


@pytest.mark.parametrize("kind", ["torch", "raw"])
@pytest.mark.parametrize("loader", [load_run_checkpoint, restore_run, restore_candidate, read_datagen_progress])
def test_checkpoint_loaders_refuse_a_crafted_pickle(tmp_path, loader, kind):
    path, marker = crafted(tmp_path, kind)
    with pytest.raises(CheckpointError) as info:
        loader(path)
    one_line(str(info.value), str(path))
    assert not marker.exists()


@pytest.mark.parametrize("loader", [read_offline, arc_points])
def test_the_authors_pickle_needs_the_opt_in(tmp_path, loader):
    path, marker = crafted(tmp_path, "offline")
    with pytest.raises(UserError) as info:
        loader(path)
    one_line(str(info.value), str(path), "trust")
    assert not marker.exists()
