"""A tiny FastEstimator 1.7 PyTorch training, shared by the tests that compare our ARC front ends with FE's own ARC
(tests/test_arc_parity.py, tests/test_arc_scheduler.py): 48 points of 8 features, batch 16, SGD at LR 0.05."""
from __future__ import annotations

import contextlib
import io
import shutil

import numpy as np
import torch


def fastestimator_home(weights, tmp_path, monkeypatch) -> None:
    """Point $HOME at a directory whose ~/fastestimator_data/arc_model/arc.h5 is `weights`: FE's ARC reads it there
    (and would download it when missing)."""
    home = tmp_path / "home"
    (home / "fastestimator_data" / "arc_model").mkdir(parents=True)
    shutil.copy(weights, home / "fastestimator_data" / "arc_model" / "arc.h5")
    monkeypatch.setenv("HOME", str(home))


def fit(trace_fn, epochs: int, log_steps: int = 0):
    """fe.Estimator.fit with `traces=[trace_fn(model)]` (loss key "ce"); returns (FE's summary, the
    `FastEstimator-ARC` lines it printed)."""
    import fastestimator as fe

    fe.enable_deterministic(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 8)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=48) > 0).astype(np.int64)
    pipeline = fe.Pipeline(train_data=fe.dataset.NumpyDataset({"x": x, "y": y}),
                           eval_data=fe.dataset.NumpyDataset({"x": x[:16], "y": y[:16]}), batch_size=16)
    model = fe.build(lambda: torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2),
                                                 torch.nn.Softmax(-1)),
                     optimizer_fn=lambda p: torch.optim.SGD(p, lr=0.05))
    network = fe.Network(ops=[fe.op.tensorop.model.ModelOp(model=model, inputs="x", outputs="y_pred"),
                              fe.op.tensorop.loss.CrossEntropy(inputs=("y_pred", "y"), outputs="ce"),
                              fe.op.tensorop.model.UpdateOp(model=model, loss_name="ce")])
    estimator = fe.Estimator(pipeline=pipeline, network=network, epochs=epochs, traces=[trace_fn(model)],
                             log_steps=log_steps)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        summary = estimator.fit(summary="arc")
    return summary, [line for line in out.getvalue().splitlines() if line.startswith("FastEstimator-ARC")]
