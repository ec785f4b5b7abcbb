"""What the four examples share and ARC does not need: the ARC weights to use and a tiny regression task.

Weights: `--weights PATH` or $ARC_WEIGHTS (the published arc.h5, or a candidate from `make train_arc`); without
either, a seeded random ARC network saved as arc.h5 in a temporary directory, so the examples run anywhere —
its decisions are not ARC's. A path that does not exist ends the example with one line naming it.
Data: 512 + 128 points of y = teacher(x) + noise (16 features), made with torch alone (no download, no
scikit-learn), so plain_pytorch.py runs with nothing but this package and torch installed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

EPOCHS = 13  # ARC every 3 epochs: calls before epochs 4, 7, 10 and 13 (docs/experiments.md §5.1)
LR0 = 0.05


def arc_weights(argv: list[str] | None = None) -> str:
    """The arc.h5 to use: --weights, else $ARC_WEIGHTS, else a seeded random ARC (printed as such)."""
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__.splitlines()[0])
    parser.add_argument("--weights", default=os.environ.get("ARC_WEIGHTS") or None,
                        help="ARC weights (arc.h5); default $ARC_WEIGHTS, else random weights")
    path = parser.parse_args(argv).weights
    if path:
        if not Path(path).is_file():
            sys.exit(f"ARC weights file not found: {path} (from --weights or $ARC_WEIGHTS)")
        print(f"ARC weights: {path}")
        return str(path)
    from arc_model.network import ARCNet
    from arc_model.weights import save_keras_h5

    with torch.random.fork_rng(devices=[]):  # leaves the example's own random stream as it was
        torch.manual_seed(0)
        path = save_keras_h5(ARCNet(), Path(tempfile.mkdtemp(prefix="arc-example-")) / "arc.h5")
    print("ARC weights: random weights: the decisions are not ARC's (pass --weights PATH or set ARC_WEIGHTS)")
    return str(path)


def regression_data(seed: int = 0):
    """((x, y), (x_val, y_val)) float32 tensors: 512 training and 128 validation points."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(640, 16, generator=g)
    w1, w2 = torch.randn(16, 32, generator=g) / 4, torch.randn(32, 1, generator=g) / 4
    y = torch.tanh(x @ w1) @ w2 + 0.1 * torch.randn(640, 1, generator=g)
    return (x[:512], y[:512]), (x[512:], y[512:])


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
