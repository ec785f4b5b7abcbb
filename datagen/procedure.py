"""One training run of docs/experiments.md §2 / paper §3.2 steps 1-6, producing one ARC point per cycle.

Run-level draws (docs/experiments.md §2): the optimizer from `optimizers`, block-randomised [I] (each block of
len(optimizers) consecutive runs of a task uses every optimizer once, in a seeded random order), LR0 log-uniform in
the task's Table-1 range (distribution UNSPECIFIED, log-uniform [I]; `lr0_distribution=uniform`, the literal reading,
is a setting), the cycle length n (`frequency`, epochs between two ARC calls) uniform integer in [frequency_min,
frequency_max]; `points_per_run` step-1 cycles (paper: 10, i.e. 10n epochs and N/n = 10 points).
Why blocks: the paper draws an optimizer per run over ~42 runs per task (~504 in all), so its dataset holds each
optimizer a third of the time to within a few runs; mini's 6 runs per task (72 in all) drew 27 SGD / 24 Adam /
21 RMSprop, and an SGD run at Table 1's LR0s is 86% 'raise' (Adam 69%, RMSprop 49%, raw labels of that dataset),
so the mix of the dataset depended on the luck of 72 draws. Blocks give a third each wherever a task has a multiple
of 3 runs (mini 6, paper 42; smoke runs 1).

Point i, at checkpoint C_i (the trunk after i+1 cycles, LR r_i):
  * branches: from C_i train n epochs under r_i x (1.618, 1.0, 0.618) -> l = (l+, l1, l-); label_raw = argmin l
    (a diverged branch counts +inf, the worst);
  * choice: drop the worst, continue with one of the other two uniformly at random [I]; a diverged branch is
    never continued (if only one branch is finite it is taken; if none is, the run ends here);
  * replicate: the next step 1 re-runs the chosen branch from C_i with a fresh seed: its state is C_{i+1}, its
    validation loss is l*_x (docs/experiments.md §2.1). A run's last point has no replicate (chosen = -1, l* = NaN).
Features of point i = the trunk's per-step train losses, per-epoch val losses and per-cycle LRs of the last
min(3, i+1) cycles ending at C_i [P §3.2].

Every random decision comes from a seed derived from (seed, task, run, point), so a run is reproducible and
resumable: after each point the run saves C_{i+1} and its progress (both atomically) in `<run>.work/`; a
killed run resumes from its last finished point; a finished run is one Parquet file written atomically.
progress.pt holds plain values only and is read with `torch.load(weights_only=True)`; a damaged progress file
or checkpoint C restarts the run from its first point (one warning line; the result is the same, every draw is
seeded). One process at a time works on a run (core.runs.run_lock on `<run>.work/`).
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.artifacts import atomic_write, atomic_write_parquet
from core.errors import CheckpointError, ConfigError
from core.history import RunHistory
from core.points import ACTIONS, COLUMNS, order
from core.runs import run_lock, warn
from core.safe_load import load_torch
from datagen.branches import BranchPool, Job

REPLICATE, FIRST_STEP, CHOICE = 3, 4, 5  # seed kinds beside the branch indices 0, 1, 2
OPTIMIZER_BLOCK = 6  # seed kind of a block's optimizer order


@dataclass(frozen=True)
class RunPlan:
    """Everything drawn for one training run."""
    task: str
    index: int
    optimizer: str
    lr0: float
    frequency: int  # n: epochs per cycle
    run_seed: int

    @property
    def run_id(self) -> str:
        return f"{self.task}-r{self.index:03d}"


def block_optimizer(task_number: int, index: int, seed: int, optimizers) -> str:
    """Run `index`'s optimizer: runs [kB, kB + B) of a task (B = len(optimizers)) take every optimizer once, in
    an order drawn from (seed, task, k)."""
    block, slot = divmod(index, len(optimizers))
    permutation = np.random.default_rng([seed, task_number, block, OPTIMIZER_BLOCK]).permutation(len(optimizers))
    return str(optimizers[permutation[slot]])


LR0_DISTRIBUTIONS = ("log_uniform", "uniform")


def draw_run(task: str, task_number: int, index: int, seed: int, optimizers, lr_range, frequency_range,
             lr0_distribution: str = "log_uniform") -> RunPlan:
    rng = np.random.default_rng([seed, task_number, index])
    optimizer = block_optimizer(task_number, index, seed, optimizers)
    rng.integers(len(optimizers))  # the per-run optimizer draw before blocks, still consumed: LR0, n, seed unchanged
    if lr0_distribution not in LR0_DISTRIBUTIONS:
        raise ConfigError(f"lr0_distribution must be one of {LR0_DISTRIBUTIONS}, got '{lr0_distribution}'")
    if lr0_distribution == "uniform":  # one draw either way: n and the run's seed are the same under both
        lr0 = float(rng.uniform(lr_range[0], lr_range[1]))
    else:
        lr0 = float(math.exp(rng.uniform(math.log(lr_range[0]), math.log(lr_range[1]))))
    frequency = int(rng.integers(frequency_range[0], frequency_range[1] + 1))
    return RunPlan(task, index, optimizer, lr0, frequency, int(rng.integers(2**31 - 1)))


def trial_seed(run_seed: int, point: int, kind: int) -> int:
    return int(np.random.SeedSequence([run_seed, point, kind]).generate_state(1)[0])


def choose_next(losses, run_seed: int, point: int) -> int | None:
    """Drop the worst, pick one of the other two at random; never a diverged one; None if all diverged."""
    candidates = [a for a in order(losses)[:2] if math.isfinite(losses[a])]
    if not candidates:
        return None
    rng = np.random.default_rng(trial_seed(run_seed, point, CHOICE))
    return candidates[int(rng.integers(len(candidates)))]


def point_features(history: RunHistory, point: int, n: int) -> dict:
    """The last k = min(3, point+1) cycles ending at C_point: raw step losses, epoch val losses, and each
    cycle's LR read at the cycle's end (as ARC's controller reads it, docs/experiments.md §3)."""
    k = min(3, point + 1)
    first_epoch, last_epoch = (point + 1 - k) * n + 1, (point + 1) * n
    return {"cycles": k, "train_loss": history.losses_of_epochs(first_epoch, last_epoch),
            "val_loss": history.eval_loss[first_epoch - 1:last_epoch],
            "train_lr": history.epoch_lr[first_epoch + n - 2:last_epoch:n]}


@dataclass
class RunSpec:
    plan: RunPlan
    task_spec: str  # JSON instantiate node of the task
    points_per_run: int
    sgd_momentum: float
    max_steps_per_epoch: int | None
    device: str


PROGRESS_KEYS = ("point", "rows", "history", "ended")


def read_progress(path: Path) -> dict:
    """A run's progress.pt (plain values, weights_only); CheckpointError naming it when damaged."""
    progress = load_torch(path, "datagen progress file")
    if not isinstance(progress, dict) or not set(PROGRESS_KEYS) <= progress.keys():
        raise CheckpointError(f"cannot read datagen progress file {path}: not a progress file (needs "
                              f"{', '.join(PROGRESS_KEYS)})")
    return progress


def generate_run(spec: RunSpec, out_file: Path, pool: BranchPool, log=print) -> Path:
    """Run (or resume) one training run and write its points to `out_file` (Parquet, atomically)."""
    work = out_file.with_suffix(".work")
    with run_lock(work, spec.plan.run_id):
        if out_file.exists():  # another process finished it while this one waited
            shutil.rmtree(work, ignore_errors=True)
            return out_file
        try:
            return _generate_run(spec, out_file, work, pool, log)
        except CheckpointError as err:
            if str(work) not in str(err):
                raise
            warn(f"{err}; restarting the run {spec.plan.run_id} from its first point")
            for item in work.iterdir():  # keep the lock file this process holds
                if item.name != ".lock":
                    item.unlink()
            return _generate_run(spec, out_file, work, pool, log)


def _generate_run(spec: RunSpec, out_file: Path, work: Path, pool: BranchPool, log) -> Path:
    plan, n = spec.plan, spec.plan.frequency
    progress_file = work / "progress.pt"

    def job(lr: float, seed: int, start: Path | None, save_to: Path | None = None) -> Job:
        return Job(task=spec.task_spec, optimizer=plan.optimizer, lr0=plan.lr0, sgd_momentum=spec.sgd_momentum,
                   run_seed=plan.run_seed, lr=lr, epochs=n, seed=seed, start=str(start) if start else None,
                   save_to=str(save_to) if save_to else None, max_steps_per_epoch=spec.max_steps_per_epoch,
                   device=spec.device)

    if progress_file.exists():
        progress = read_progress(progress_file)
        log(f"{plan.run_id}: resuming at point {progress['point']}")
    else:  # step 1 of the first point: a fresh model trained n epochs at LR0
        first = pool.run_all([job(plan.lr0, trial_seed(plan.run_seed, 0, FIRST_STEP), None, work / "C-0.pt")],
                             f"{plan.run_id} point 0")[0]
        progress = {"point": 0, "rows": [], "history": first.history,
                    "ended": not math.isfinite(first.loss)}  # diverged in its first cycle: no points
        atomic_write(progress_file, lambda tmp: torch.save(progress, tmp))

    while not progress["ended"]:
        i, history = progress["point"], RunHistory.from_state_dict(progress["history"])
        lr, checkpoint = history.epoch_lr[-1], work / f"C-{i}.pt"
        label = f"{plan.run_id} point {i}"
        results = pool.run_all([job(lr * m, trial_seed(plan.run_seed, i, a), checkpoint)
                                for a, m in enumerate(ACTIONS)], label)
        losses = [r.loss for r in results]
        last = i == spec.points_per_run - 1
        chosen = None if last else choose_next(losses, plan.run_seed, i)
        replicate = math.nan
        if chosen is not None:
            next_checkpoint = work / f"C-{i + 1}.pt"
            result = pool.run_all([job(lr * ACTIONS[chosen], trial_seed(plan.run_seed, i, REPLICATE), checkpoint,
                                       next_checkpoint)], label)[0]
            replicate = result.loss
        row = {"task": plan.task, "run_id": plan.run_id, "point": i, "seed": plan.run_seed,
               "optimizer": plan.optimizer, "frequency": n, "lr0": plan.lr0,
               **point_features(history, i, n),
               "branch_loss": losses, "chosen": -1 if chosen is None else chosen, "replicate_loss": replicate,
               "label_raw": order(losses)[0]}
        row["label"] = row["label_raw"]
        # the run ends at its last cycle, when every branch diverged, or when the replicate (the trunk) diverged
        ended = chosen is None or not math.isfinite(replicate)
        progress = {"point": i + 1, "rows": progress["rows"] + [row], "ended": ended,
                    "history": history.state_dict() if ended else result.history}
        atomic_write(progress_file, lambda tmp: torch.save(progress, tmp))
        checkpoint.unlink(missing_ok=True)
        log(f"{plan.run_id} point {i}: branch losses {', '.join(f'{v:.4g}' for v in losses)} -> "
            f"label {row['label_raw']}, continue with {row['chosen']}, l* {replicate:.4g}")

    frame = pd.DataFrame(progress["rows"], columns=list(COLUMNS))
    atomic_write_parquet(out_file, frame)
    shutil.rmtree(work)
    return out_file
