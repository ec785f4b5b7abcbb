"""The lean PyTorch training loop shared by every stage.

A `Run` owns model, optimizer, schedule, RunHistory and every RNG the loop draws from (torch's
global RNG for init/dropout and, on a GPU, every CUDA generator; a dedicated generator for data order; numpy and
python `random` for tasks that use them). `save()` captures all of it, so that train k epochs -> save -> restore ->
train m epochs is bit-for-bit the same as k + m epochs in one go (tested on CPU; on a GPU as far as its kernels
are deterministic).

Per step the loop does forward, backward and optimizer step. The history needs every step's loss
(docs/experiments.md §5.2):
  * on CPU each step's loss is read at once (`loss.item()`); a non-finite loss marks the run diverged and stops
    it at that step;
  * on a GPU the step losses stay on the device and are read in one transfer at each log step (step 1 and every
    `log_steps`) and at the end of the epoch, so the device never waits for the host between steps. The
    divergence check happens there too: a non-finite loss is noticed up to `log_steps` steps (at most the rest of
    the epoch) after it occurred; the steps trained meanwhile stay in the history and the run stops at that
    point, before the epoch's evaluation.
In-memory datasets are moved to the GPU once when the run is built (`data_to_device`). Speed options, off by
default (the authors trained in fp32): `precision="bf16"` (autocast to bfloat16 in forward passes),
`channels_last` (model and 4-D batches), `compile` (torch.compile; checkpoints keep the plain module's weights) with
`compile_mode` (torch.compile's mode; `reduce-overhead` replays CUDA graphs, which is what helped on an H200: the
small paper models leave the GPU waiting for Python's kernel launches, bench/bench_gpu.py).
Logs are written in FastEstimator's text format (core.felog).
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from core.artifacts import atomic_write
from core.errors import CheckpointError, ConfigError
from core.felog import FELogWriter, open_log
from core.history import RunHistory
from core.optim import OptimizerFactory, build_optimizer, get_lr, optimizer_factory, set_lr
from core.safe_load import load_torch, numpy_rng_from_plain, numpy_rng_to_plain
from core.schedules import Schedule
from core.tasks import Task


PRECISIONS = ("fp32", "bf16")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
DEVICE_DATA = ("train_data", "eval_data", "train_chunks", "eval_chunks", "train_set", "eval_set")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def run_options(profile) -> dict:
    """Run's speed options from a profile config (core.config.ProfileConfig): precision, channels_last, compile and
    compile_mode. A stage passes them on as `Run(..., **run_options(cfg.profile))`."""
    return {"precision": str(profile.get("precision", "fp32")), "channels_last": bool(profile.get("channels_last", False)),
            "compile": bool(profile.get("compile", False)), "compile_mode": str(profile.get("compile_mode", "default"))}


def data_to_device(task: Task) -> None:
    """In-memory datasets live on the task's device (a GPU): the task's tensors and tuples of tensors named in
    DEVICE_DATA (or the task's own `device_data`) are moved there once. Tasks index them with CPU-drawn permutations,
    which torch accepts for GPU tensors, so data order is unchanged. Nothing happens on CPU."""
    if task.device.type == "cpu":
        return
    for name in getattr(task, "device_data", DEVICE_DATA):
        value = getattr(task, name, None)
        if isinstance(value, torch.Tensor):
            setattr(task, name, value.to(task.device))
        elif isinstance(value, (tuple, list)) and value and all(isinstance(v, torch.Tensor) for v in value):
            setattr(task, name, type(value)(v.to(task.device) for v in value))


def _channels_last(batch):
    if isinstance(batch, torch.Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 and batch.is_floating_point() \
            else batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(_channels_last(b) for b in batch)
    return batch


class Run:
    """One training run of `task` under `schedule`; call `train(epochs)` repeatedly to extend it.

    `optimizer` is a factory `(params, lr) -> torch.optim.Optimizer` (core.optim.optimizer_factory; a name
    such as "adam" is shorthand for `optimizer_factory("adam")`). A factory may also define
    `wrap_task(task, optimizer) -> Task` for methods that must see the task (SLS re-evaluates a batch,
    Schedule-Free evaluates at its averaged weights). The model lives on `task.device`.

    `precision` (fp32 | bf16), `channels_last` and `compile` are speed options for GPUs (see the module doc);
    their defaults leave the computation exactly as the authors' fp32 runs.
    """

    def __init__(self, task: Task, optimizer: str | OptimizerFactory, lr: float, schedule: Schedule | None = None,
                 seed: int = 0, max_steps_per_epoch: int | None = None, log_steps: int = 100,
                 precision: str = "fp32", channels_last: bool = False, compile: bool = False,
                 compile_mode: str = "default"):
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if compile_mode not in COMPILE_MODES:
            raise ConfigError(f"compile_mode must be one of {', '.join(COMPILE_MODES)}, got {compile_mode!r}")
        seed_everything(seed)
        self.seed = seed
        self.model = task.build_model().to(task.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        data_to_device(task)
        factory = optimizer_factory(optimizer) if isinstance(optimizer, str) else optimizer
        self.optimizer = build_optimizer(factory, self.model, lr)  # + a model's fixed-LR parameters (core.optim)
        wrap_task = getattr(factory, "wrap_task", None)
        self.task = wrap_task(task, self.optimizer) if wrap_task else task
        self.precision, self.channels_last = precision, channels_last
        # the module the steps run; self.model (saved in checkpoints) keeps the weights either way
        mode = {} if compile_mode == "default" else {"mode": compile_mode}
        self.forward_model = torch.compile(self.model, **mode) if compile else self.model
        self.sync_each_step = task.device.type != "cuda"  # CPU: read each loss at once (no device to wait for)
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

    def progress(self) -> dict:
        """The last epoch in a few numbers (core.runs' progress bar)."""
        h = self.history
        return {"eval_loss": f"{h.eval_loss[-1]:.4g}", self.task.metric_name: f"{h.eval_metric[-1]:.4g}",
                "lr": f"{h.epoch_lr[-1]:.3g}"} if h.epochs else {}

    def train(self, epochs: int, total_epochs: int | None = None) -> RunHistory:
        """Train `epochs` more epochs (fewer if the run diverges). `total_epochs` is told to schedules."""
        self.schedule.on_train_begin(self.lr0, self.steps_per_epoch or 0, total_epochs or self.epoch + epochs)
        for _ in range(epochs):
            if self.history.diverged:
                break
            self._train_epoch()
        return self.history

    def autocast(self):
        """bf16: autocast the forward pass (and the loss) to bfloat16; fp32: nothing."""
        if self.precision == "bf16":
            return torch.autocast(device_type=self.task.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _flush(self, pending: list[torch.Tensor]) -> None:
        """Move the step losses still on the device into the history (one transfer) and check them."""
        if not pending:
            return
        values = torch.stack([v.to(torch.float64) for v in pending]).tolist()  # float32 -> float64 is exact
        pending.clear()
        self.history.step_loss.extend(values)
        if not all(math.isfinite(v) for v in values):
            self.history.diverged = True

    def _train_epoch(self) -> None:
        epoch = self.epoch + 1
        history, optimizer, schedule, log = self.history, self.optimizer, self.schedule, self.log
        model = self.forward_model
        new_lr = schedule.on_epoch_begin(epoch, history, self.lr)
        if log:
            for line in schedule.log_lines():
                log.comment(line)
        if new_lr != self.lr:
            set_lr(optimizer, new_lr)
        model.train()
        start, steps, tick = time.perf_counter(), 0, time.perf_counter()
        per_step, sync_each_step, pending = schedule.per_step, self.sync_each_step, []
        for batch in self.task.train_batches(self.data_generator):
            if self.max_steps_per_epoch and steps >= self.max_steps_per_epoch:
                break
            self.global_step += 1
            steps += 1
            if per_step:
                set_lr(optimizer, schedule.on_step_begin(self.global_step, epoch, self.lr))
            if self.channels_last:
                batch = _channels_last(batch)
            optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                loss, recorded = self.task.train_objective(model, batch)
            loss.backward()
            optimizer.step()
            log_step = self.global_step == 1 or self.global_step % self.log_steps == 0
            if sync_each_step:
                history.step_loss.append(recorded.item())
                if not math.isfinite(history.step_loss[-1]):
                    history.diverged = True
            else:
                pending.append(recorded.detach())
                if log_step:
                    self._flush(pending)
            if history.diverged:
                break
            if log and log_step:
                now = time.perf_counter()
                extra = {} if self.global_step == 1 else {"steps/sec": round(self.log_steps / max(now - tick, 1e-9), 2)}
                log.write("Train", self.global_step, **{self.task.loss_name: history.step_loss[-1], "model_lr": self.lr},
                          **extra)
                tick = now
        self._flush(pending)
        history.epoch_steps.append(steps)
        history.epoch_lr.append(self.lr)
        if log:
            log.write("Train", self.global_step, epoch=epoch, epoch_time=f"{time.perf_counter() - start:.2f} sec")
        if history.diverged:
            eval_loss, metric = math.nan, math.nan
        else:
            model.eval()
            with self.autocast():
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
                "numpy": numpy_rng_to_plain(np.random.get_state()),  # plain values: weights_only loads them
                "python": random.getstate(),
                **({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {}),
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
        np.random.set_state(numpy_rng_from_plain(rng["numpy"]))
        random.setstate(rng["python"])
        if "cuda" in rng and torch.cuda.is_available():  # dropout masks etc. drawn on the GPU resume exactly
            states = rng["cuda"][: torch.cuda.device_count()]
            torch.cuda.set_rng_state_all(states)

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
    state = load_torch(path)  # weights_only=True: a file that would run code is refused; one line on any problem
    if not isinstance(state, dict) or not set(required) <= state.keys():
        raise CheckpointError(f"checkpoint {path} is not a {kind} checkpoint (needs {', '.join(required)}; "
                              "delete it to start over)")
    return state
