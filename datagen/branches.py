"""Training jobs of data generation, run concurrently in a pool of single-threaded worker processes.

Every training of docs/experiments.md §2 is one `Job`: restore checkpoint C (or start fresh), reseed every RNG with the job's
own seed, set the LR, train n epochs with core.training.Run, optionally save the end state as the next C.
The three branches of a point are independent jobs, so they run at the same time.

Why reseed: Run checkpoints hold every RNG, so re-running a branch from C with C's RNG would repeat it bit for
bit and the replicate l* of docs/experiments.md §2.1 would always equal l_x. The authors reloaded Keras checkpoints, which do
not hold RNG state, so each trial saw its own data order and dropout [I]; a distinct seed per trial does the
same, reproducibly. Each worker uses one intra-op thread, so a job's numbers do not depend on which process
or how many jobs run beside it: a killed and resumed stage reproduces an uninterrupted one exactly.

A worker that dies (SIGKILL, the OS's out-of-memory killer) would leave its job unanswered forever, since
multiprocessing.Pool replaces the process but not the job. So nothing waits on a result without a timeout: every
`poll_seconds` the pool checks its processes, and a dead one is a WorkerLost error naming the runs in flight
(the caller's labels) within about a second; the pool is then closed, and a rerun resumes from the runs' last
saved point.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import multiprocessing.pool
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult

import torch

from core.errors import WorkerLost
from core.instantiate import build_task
from core.optim import OptimizerFactory, optimizer_factory, set_lr
from core.training import Run


@dataclass(frozen=True, kw_only=True)
class Job:
    task: str  # JSON of the task's instantiate node ({_target_, args...}); workers cache the built task
    optimizer: str
    lr0: float
    sgd_momentum: float  # SGD's momentum (Adam and RMSprop take none, as Keras' defaults)
    run_seed: int
    lr: float  # LR of this trial (r times the branch multiplier)
    epochs: int
    seed: int  # the trial's own seed for data order, dropout and every other RNG
    start: str | None = None  # checkpoint C to restore; None = a fresh model
    save_to: str | None = None  # write the end state here (the trunk / replicate run)
    max_steps_per_epoch: int | None = None
    device: str = "cpu"


@dataclass
class JobResult:
    loss: float  # validation loss after the last epoch; +inf when the trial diverged
    history: dict | None  # the run's full RunHistory state (only for jobs that save their state)


def task_of(spec: str, device: str):
    """The task of `spec`, built once per worker process (building loads its data)."""
    return build_task(json.loads(spec), "datagen_task", device=device)


def trial_optimizer(name: str, sgd_momentum: float) -> OptimizerFactory:
    """The optimizer of a datagen run as the paper names it, with the Keras updates of the authors' TF code
    (core.optim, docs/experiments.md §2.3): SGD with momentum in TF's form, RMSprop and Adam with Keras' defaults
    and no momentum."""
    return optimizer_factory(name, momentum=sgd_momentum if name == "sgd" else 0.0, momentum_form="tf")


def run_job(job: Job) -> JobResult:
    run = Run(task_of(job.task, job.device), trial_optimizer(job.optimizer, job.sgd_momentum), job.lr0,
              seed=job.run_seed, max_steps_per_epoch=job.max_steps_per_epoch)
    if job.start:
        run.restore(job.start)
    run.reseed(job.seed)
    set_lr(run.optimizer, job.lr)
    history = run.train(job.epochs)
    if job.save_to:
        run.save(job.save_to)
    loss = history.eval_loss[-1] if history.eval_loss else math.nan
    loss = loss if math.isfinite(loss) and not history.diverged else math.inf
    return JobResult(loss, history.state_dict() if job.save_to else None)


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


class BranchPool:
    """Worker processes (spawned: safe with CUDA and threads) that run Jobs; one per concurrent branch.

    multiprocessing.Pool starts all its workers up front; concurrent.futures' ProcessPoolExecutor spawns them
    on demand and, counting finished jobs as idle workers, can leave all jobs on one process (measured)."""

    poll_seconds = 0.2  # how often a wait checks that every worker is alive

    def __init__(self, workers: int = 3, threads_per_worker: int = 1):
        self.workers = workers
        if multiprocessing.get_start_method(allow_none=True) not in (None, "spawn", "fork", "forkserver"):
            # in a joblib (loky) worker of a Hydra multirun: a spawned child re-applies its parent's default
            # start method, and 'loky' is unknown to multiprocessing (the children would die at start-up)
            multiprocessing.set_start_method("spawn", force=True)
        self.pool = multiprocessing.get_context("spawn").Pool(workers, _init_worker, (threads_per_worker,))
        self.processes = list(self.pool._pool)  # the workers; Pool replaces a dead one, but not its job
        self.lost: str | None = None  # set once a worker died: every wait then fails
        self.in_flight: dict[int, str] = {}  # wait id -> label of the run waiting (threads share the pool)
        self._lock = threading.Lock()

    def submit(self, job: Job) -> AsyncResult:
        return self.pool.apply_async(run_job, (job,))

    def run_all(self, jobs: list[Job], label: str = "") -> list[JobResult]:
        """Run `jobs` and return their results in order; WorkerLost (naming `label` and every other run waiting
        on this pool) if a worker process dies meanwhile."""
        return self.wait([self.submit(job) for job in jobs], label)

    def wait(self, pending: list[AsyncResult], label: str = "") -> list:
        key = object()
        with self._lock:
            self.in_flight[id(key)] = label or "a datagen run"
        try:
            self._check()
            for result in pending:
                while not result.ready():
                    result.wait(self.poll_seconds)
                    self._check()
            return [result.get() for result in pending]
        finally:
            with self._lock:
                self.in_flight.pop(id(key), None)

    def _check(self) -> None:
        if self.lost is None:
            with self._lock:
                dead = [p for p in self.processes + list(self.pool._pool) if p.exitcode is not None]
                if dead and self.lost is None:
                    runs = sorted(set(self.in_flight.values()))
                    how = ", ".join(f"pid {p.pid} {_exit_reason(p.exitcode)}" for p in dead)
                    self.lost = (f"datagen: a branch worker died ({how}) while running "
                                 f"{', '.join(runs) if runs else 'no job'}; rerun the same command to resume "
                                 "(each run restarts from its last finished point)")
        if self.lost is not None:
            raise WorkerLost(self.lost)

    def warm_up(self, task: str, seconds: float = 0.5, device: str = "cpu") -> None:
        """Build `task` in every worker (imports and data loading out of any timing): each worker takes one
        of `workers` probes, since a probe holds its worker for `seconds`."""
        self.wait([self.pool.starmap_async(_probe, [(task, device, seconds)] * self.workers, chunksize=1)],
                  "warm-up")

    def close(self) -> None:
        if self.lost is None:
            self.pool.terminate()
            self.pool.join()
            return
        # A worker died. An idle worker waits for a task holding the task queue's lock, and one killed there never
        # releases it: Pool.terminate (and its exit-time finalizer) would wait for that lock forever. So stop the
        # pool's threads from replacing workers and kill the workers directly.
        pool = self.pool
        pool._terminate.cancel()
        pool._state = multiprocessing.pool.TERMINATE
        for handler in (pool._worker_handler, pool._task_handler, pool._result_handler):
            handler._state = multiprocessing.pool.TERMINATE
        workers = [p for p in {*self.processes, *pool._pool} if p.exitcode is None]
        for process in workers:
            process.kill()
        for process in workers:
            process.join(5)


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _probe(task: str, device: str, seconds: float) -> None:
    task_of(task, device)
    time.sleep(seconds)
