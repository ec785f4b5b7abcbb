"""SYNTHETIC ARC points for tests, the smoke profile and timing — never for results.

A toy loss process replaces real training so the stage can run before datagen's dataset exists:
per step, loss -> floor + (loss - floor)(1 - rate) + noise, with a rate that peaks at an ideal LR
lr* (which decays over epochs) and turns negative (divergence-like growth) far above it. The points
follow paper §3.2 / docs/experiments.md §2 exactly as datagen does for real tasks: step 1 at LR r, three branches
(x1.618, x1, x0.618) from the same state, label = lowest final val loss, continue with a random one
of the two best, and the ground-truth correction of §2.1 from the replicate. Columns: core.points.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.points import ACTIONS, COLUMNS, corrected_label


def _simulate(loss: float, epoch: int, lr: float, lr_star0: float, n: int, steps: int, rng: np.random.Generator):
    """n epochs at `lr` from (loss, epoch) -> (step losses, per-epoch val losses, end loss)."""
    train, val = [], []
    for e in range(epoch, epoch + n):
        ratio = lr / (lr_star0 * 0.93 ** e)
        rate = 0.05 * ratio * (2.0 - ratio) if ratio < 2.0 else max(-0.01 * (ratio - 2.0), -0.02)
        for _ in range(steps):
            loss = min(0.1 + (loss - 0.1) * (1.0 - rate), 10.0)
            train.append(loss * np.exp(0.05 * rng.normal()))
        val.append(loss * 1.1 * np.exp(0.01 * rng.normal()))
    return train, val, loss


def synthetic_run(run: int, seed: int, points: int) -> list[dict]:
    rng = np.random.default_rng([seed, run])
    n, steps = int(rng.integers(1, 4)), int(rng.integers(8, 30))
    lr0 = float(10 ** rng.uniform(-5, -2))
    lr_star0 = lr0 * float(10 ** rng.uniform(-0.5, 1))
    loss, epoch, lr, cycles, rows = 2.0, 0, lr0, [], []
    for p in range(points):
        train, val, loss = _simulate(loss, epoch, lr, lr_star0, n, steps, rng)
        epoch += n
        cycles.append((train, val, lr))
        if rows:  # this step 1 re-ran the previous point's chosen branch: its replicate
            rows[-1]["replicate_loss"] = val[-1]
            rows[-1]["label"] = corrected_label(rows[-1]["branch_loss"], rows[-1]["chosen"], val[-1],
                                                rows[-1]["label_raw"])
        branch = [_simulate(loss, epoch, lr * m, lr_star0, n, steps, rng)[1][-1] for m in ACTIONS]
        survivors = [a for a in range(3) if a != int(np.argmax(branch))]
        chosen = int(rng.choice(survivors)) if p < points - 1 else -1
        window = cycles[-3:]
        rows.append({
            "task": "synthetic", "run_id": f"synthetic-{seed}-{run}", "point": p, "seed": seed,
            "optimizer": str(rng.choice(["adam", "sgd", "rmsprop"])), "frequency": n, "lr0": lr0, "cycles": len(window),
            "train_loss": [x for c in window for x in c[0]], "val_loss": [x for c in window for x in c[1]],
            "train_lr": [c[2] for c in window], "branch_loss": branch, "chosen": chosen,
            "replicate_loss": float("nan"), "label_raw": int(np.argmin(branch)), "label": int(np.argmin(branch)),
        })
        if chosen >= 0:
            lr *= ACTIONS[chosen]
    return rows


def synthetic_points(count: int, seed: int = 0, points_per_run: int = 10) -> pd.DataFrame:
    """`count` SYNTHETIC points (task 'synthetic') in the core.points layout."""
    rows: list[dict] = []
    run = 0
    while len(rows) < count:
        rows.extend(synthetic_run(run, seed, points_per_run))
        run += 1
    return pd.DataFrame(rows[:count], columns=list(COLUMNS))
