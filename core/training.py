"""The lean PyTorch training loop shared by every stage.

A `Run` owns model, optimizer, schedule, RunHistory and every RNG the loop draws from (torch's
global RNG for init/dropout, a dedicated generator for data order, numpy and python `random` for
tasks that use them). `save()` captures all of it, so that train k epochs -> save -> restore ->
train m epochs is bit-for-bit the same as k + m epochs in one go (on CPU; tested).

Per step the loop does forward, backward, optimizer step and one `loss.item()` (the history needs
every step's loss, docs/experiments.md §5.2). A non-finite loss marks the run diverged and stops it with its
history kept. Logs are written in FastEstimator's text format (core.felog).
"""
from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from core.artifacts import atomic_write
from core.errors import CheckpointError
from core.felog import FELogWriter, open_log
from core.history import RunHistory
from core.optim import OptimizerFactory, get_lr, optimizer_factory, set_lr
from core.schedules import Schedule
from core.tasks import Task


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Run:
    """One training run of `task` under `schedule`; call `train(epochs)` repeatedly to extend it.

    `optimizer` is a factory `(params, lr) -> torch.optim.Optimizer` (core.optim.optimizer_factory; a name
    such as "adam" is shorthand for `optimizer_factory("adam")`). A factory may also define
    `wrap_task(task, optimizer) -> Task` for methods that must see the task (SLS re-evaluates a batch,
    Schedule-Free evaluates at its averaged weights). The model lives on `task.device`.
    """

    def __init__(self, task: Task, optimizer: str | OptimizerFactory, lr: float, schedule: Schedule | None = None,
                 seed: int = 0, max_steps_per_epoch: int | None = None, log_steps: int = 100):
        seed_everything(seed)
        self.seed = seed
        self.model = task.build_model().to(task.device)
        factory = optimizer_factory(optimizer) if isinstance(optimizer, str) else optimizer
        self.optimizer = factory(self.model.parameters(), lr)
        wrap_task = getattr(factory, "wrap_task", None)
        self.task = wrap_task(task, self.optimizer) if wrap_task else task
        self.lr0 = lr
        self.schedule = schedule or Schedule()
        self.history = RunHistory()
        self.data_generator = torch.Generator().manual_seed(seed)
        self.global_step = 0
        self.max_steps_per_epoch = max_steps_per_epoch
        self.log_steps = log_steps
        self.log: FELogWriter | None = None
        self._log_offset: int | None = None  # log size at the last restored checkpoint

    def reseed(self, seed: int) -> None:
        """Reseed every RNG the run draws from (datagen: each trial from a checkpoint gets its own data
        order and dropout, docs/experiments.md §2.1)."""
        seed_everything(seed)
        self.data_generator.manual_seed(seed)

    @property
    def steps_per_epoch(self) -> int | None:
        """Training steps per epoch when known before the first epoch (per-step schedules need it)."""
        known = [n for n in (self.max_steps_per_epoch, self.task.steps_per_epoch) if n]
        return min(known) if known else None

    def open_log(self, path: str | Path) -> None:
        """Write the FE-format log to `path`; after a restore, cut it back to the checkpoint and append."""
        self.log = open_log(path, self._log_offset, self.log_steps)

    @property
    def epoch(self) -> int:
        return self.history.epochs

    @property
    def stopped(self) -> bool:
        """A diverged run trains no further."""
        return self.history.diverged

    @property
    def lr(self) -> float:
        return get_lr(self.optimizer)

    def train(self, epochs: int, total_epochs: int | None = None) -> RunHistory:
        """Train `epochs` more epochs (fewer if the run diverges). `total_epochs` is told to schedules."""
        self.schedule.on_train_begin(self.lr0, self.steps_per_epoch or 0, total_epochs or self.epoch + epochs)
        for _ in range(epochs):
            if self.history.diverged:
                break
            self._train_epoch()
        return self.history

    def _train_epoch(self) -> None:
        epoch = self.epoch + 1
        history, model, optimizer, schedule, log = self.history, self.model, self.optimizer, self.schedule, self.log
        new_lr = schedule.on_epoch_begin(epoch, history, self.lr)
        if log:
            for line in schedule.log_lines():
                log.comment(line)
        if new_lr != self.lr:
            set_lr(optimizer, new_lr)
        model.train()
        start, steps, tick = time.perf_counter(), 0, time.perf_counter()
        per_step = schedule.per_step
        for batch in self.task.train_batches(self.data_generator):
            if self.max_steps_per_epoch and steps >= self.max_steps_per_epoch:
                break
            self.global_step += 1
            steps += 1
            if per_step:
                set_lr(optimizer, schedule.on_step_begin(self.global_step, epoch, self.lr))
            optimizer.zero_grad(set_to_none=True)
            loss, recorded = self.task.train_objective(model, batch)
            loss.backward()
            optimizer.step()
            value = recorded.item()
            history.step_loss.append(value)
            if not math.isfinite(value):
                history.diverged = True
                break
            if log and (self.global_step == 1 or self.global_step % self.log_steps == 0):
                now = time.perf_counter()
                extra = {} if self.global_step == 1 else {"steps/sec": round(self.log_steps / max(now - tick, 1e-9), 2)}
                log.write("Train", self.global_step, **{self.task.loss_name: value, "model_lr": self.lr}, **extra)
                tick = now
        history.epoch_steps.append(steps)
        history.epoch_lr.append(self.lr)
        if log:
            log.write("Train", self.global_step, epoch=epoch, epoch_time=f"{time.perf_counter() - start:.2f} sec")
        if history.diverged:
            eval_loss, metric = math.nan, math.nan
        else:
            model.eval()
            eval_loss, metric = self.task.evaluate(model)
            history.diverged = not math.isfinite(eval_loss)
        history.eval_loss.append(float(eval_loss))
        history.eval_metric.append(float(metric))
        history.epoch_seconds.append(time.perf_counter() - start)
        if log:
            log.write("Eval", self.global_step, epoch=epoch,
                      **{self.task.loss_name: eval_loss, self.task.metric_name: metric})

    def finish_log(self, total_time: float) -> None:
        if self.log:
            self.log.write("Finish", self.global_step, model_lr=self.lr, total_time=f"{total_time:.2f} sec")
            self.log.close()

    # ---- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "history": self.history.state_dict(),
            "global_step": self.global_step,
            "lr0": self.lr0,
            "log_offset": self.log.tell() if self.log else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "data": self.data_generator.get_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.history = RunHistory.from_state_dict(state["history"])
        self.global_step = state["global_step"]
        self.lr0 = state["lr0"]
        self._log_offset = state.get("log_offset")
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        self.data_generator.set_state(rng["data"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])

    def save(self, path: str | Path) -> Path:
        state = self.state_dict()
        return atomic_write(path, lambda tmp: torch.save(state, tmp))

    def restore(self, path: str | Path) -> "Run":
        self.load_state_dict(load_checkpoint(path))
        return self


def load_checkpoint(path: str | Path, required=("model", "optimizer", "history", "rng"),
                    kind: str = "training-run") -> dict:
    """Read a checkpoint (by default one written by Run.save); a missing, unreadable or foreign file is a
    CheckpointError naming it. Stages with their own checkpoint layout pass `required` and `kind`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many types for corrupt files
        raise CheckpointError(f"cannot read checkpoint {path}: {type(err).__name__}: {err}") from None
    if not isinstance(state, dict) or not set(required) <= state.keys():
        raise CheckpointError(f"checkpoint {path} is not a {kind} checkpoint (needs {', '.join(required)}; "
                              "delete it to start over)")
    return state
