"""ARC decision latency: ours (PyTorch, from a RunHistory) vs FastEstimator 1.7's TF-eager `fe.schedule.ARC`.

One decision = build the (300, 3) input from the last 3 cycles and run the network, here for a
CIFAR-sized history (9 epochs x 391 steps, docs/experiments.md §7.1) at epoch 10. Both load the same weights: a
random candidate written to a temporary arc.h5 (latency does not depend on the values; nothing is
downloaded). Prints arc_decision_ms (ours) and fe_arc_decision_ms, medians over repeated decisions.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from arc_model.decider import ARCDecider, history_cycles
from arc_model.network import ARCNet
from arc_model.weights import save_keras_h5
from core.history import RunHistory

EPOCHS, STEPS, REPEATS = 9, 391, 30


def cifar_like_history(rng: np.random.Generator) -> RunHistory:
    losses = np.exp(-np.arange(EPOCHS * STEPS) / 2000) * rng.uniform(0.8, 1.2, EPOCHS * STEPS)
    return RunHistory(step_loss=[float(np.float32(v)) for v in losses], epoch_steps=[STEPS] * EPOCHS,
                      epoch_lr=[1e-3] * 3 + [1.618e-3] * 3 + [1e-3] * 3,
                      eval_loss=[float(v) for v in rng.uniform(0.5, 1.5, EPOCHS)])


def median_ms(decide) -> float:
    decide()  # warm-up (graph tracing, allocator)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        decide()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def fe_arc(weights: Path, history: RunHistory):
    """FE's own ARC, loading `weights` through its real load path, fed as its LRScheduler feeds it."""
    from fastestimator.schedule.lr_schedule import ARC

    with mock.patch.object(ARC, "_initialize_arc_weight", return_value=str(weights)):
        arc = ARC(frequency=3)
    for epoch in range(1, EPOCHS + 1):
        for loss in history.losses_of_epoch(epoch):
            arc.accumulate_single_train_loss(np.float32(loss))
        arc.accumulate_single_eval_loss(history.eval_loss[epoch - 1])
        if epoch % 3 == 0:
            arc.accumulate_all_lrs(history.epoch_lr[epoch - 1])
            arc.gather_multiple_train_losses()
            arc.gather_multiple_eval_losses()
    return arc


def main() -> None:
    history = cifar_like_history(np.random.default_rng(0))
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "arc.h5"
        torch.manual_seed(0)
        save_keras_h5(ARCNet(), weights)
        decider = ARCDecider(str(weights))  # what every front end (arc_model.scheduler.ARCScheduler) calls
        ours = median_ms(lambda: decider.multiplier(*history_cycles(history, EPOCHS + 1, 3)))
        fe = fe_arc(weights, history)
        theirs = median_ms(fe.predict_next_multiplier)
    print(f"arc_decision_ms={ours:.2f}")
    print(f"fe_arc_decision_ms={theirs:.2f}")
    print(f"arc_decision_speedup={theirs / ours:.1f}")
