"""Engine overhead: one epoch of core.training.Run vs a minimal hand-written PyTorch loop.

Same model (the mini digits CNN), data, batch size (32) and per-epoch evaluation; the two are
interleaved in one process and each time is the median of REPEATS epochs, so machine noise hits both.
The core does more per step (records every loss with .item(), NaN check, FE log lines, schedule
hook); the target is engine_overhead_ratio <= 1.3.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from core.tasks.digits import DigitsCNN
from core.training import Run

REPEATS = 9
WARMUP = 2


def bare_loop_epoch(model, optimizer, task: DigitsCNN, generator: torch.Generator) -> None:
    x, y = task.train_data
    model.train()
    order = torch.randperm(len(y), generator=generator)
    for start in range(0, len(y), task.batch_size):
        idx = order[start : start + task.batch_size]
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        xe, ye = task.eval_data
        for start in range(0, len(ye), 256):
            logits = model(xe[start : start + 256])
            nn.functional.cross_entropy(logits, ye[start : start + 256], reduction="sum").item()
            (logits.argmax(1) == ye[start : start + 256]).sum().item()


def main() -> None:
    task = DigitsCNN(width=16, batch_size=32)
    torch.manual_seed(0)
    bare_model = task.build_model()
    bare_opt = torch.optim.Adam(bare_model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(task, "adam", 1e-3, seed=0, log_steps=10)
        run.open_log(Path(tmp) / "log.txt")
        core_times, bare_times = [], []
        for i in range(WARMUP + REPEATS):
            t0 = time.perf_counter()
            run.train(1)
            t1 = time.perf_counter()
            bare_loop_epoch(bare_model, bare_opt, task, generator)
            t2 = time.perf_counter()
            if i >= WARMUP:
                core_times.append(t1 - t0)
                bare_times.append(t2 - t1)
    core_s, bare_s = statistics.median(core_times), statistics.median(bare_times)
    steps = run.history.epoch_steps[-1]
    print(f"engine_core_epoch_s={core_s:.4f} (median of {REPEATS}, {steps} steps + eval)")
    print(f"engine_bare_epoch_s={bare_s:.4f}")
    print(f"engine_overhead_ratio={core_s / bare_s:.3f}")


if __name__ == "__main__":
    main()
