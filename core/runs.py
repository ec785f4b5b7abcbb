"""One resumable training run in its own directory — the unit every stage's grid is made of — and the one
reader of finished runs that tables, figures, candidates and selection share.

`resume_into(out, cfg, make_trainer, epochs, finish)` writes config.yaml, an FE-format log.txt and
checkpoint.pt while training, then `finish(trainer)`'s files, and last the DONE marker holding the result
row. A directory with DONE is skipped; one without is resumed from its checkpoint (the log is cut back to
the checkpoint), so rerunning a grid redoes only what a crash or kill interrupted. A trainer is anything
with the `Resumable` methods: core.training.Run (`train_into`), arc_model's CandidateTrainer.

`finished_runs(root, pattern)` is one row per finished run directory: its DONE row plus `run_dir`.

Reliability:
  * a run's own damaged files are redone, with one `warning:` line: an unreadable checkpoint restarts the run
    from its first epoch, an unreadable DONE marker or a finished run whose files (`verify`) are missing or
    damaged is trained again (runs are deterministic, so the result is the same);
  * `finished_runs`, the reader of later stages, refuses a damaged DONE or a row without its files, naming them;
  * a run directory is trained by one process at a time: `run_lock` takes an exclusive flock on `<run>/.lock`;
    a second process (a SLURM requeue beside the live job, two `make benchmark`) prints
    `busy: <run> (another process trains it); waiting` and waits, then finds the run done (or resumes it if
    the other process died). It waits rather than skips because a stage's exit means its runs are done: the
    next step of `make` (the tables) reads them, and both processes then print the same rows;
  * `unfinished_runs(root)` names the run directories a killed worker left behind (stage entry points report
    them when a joblib worker dies, core.cli).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from core.artifacts import (DONE_MARKER, atomic_write_parquet, atomic_write_text, check_parquet, is_done, mark_done,
                            read_done)
from core.errors import CheckpointError, CorruptArtifact

if TYPE_CHECKING:  # torch and pandas load in the job that trains or reads runs, not in a sweep's main process
    import pandas as pd

    from core.training import Run

LOCK_FILE = ".lock"


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def run_lock(run_dir: Path, label: str | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `run_dir` (flock on `run_dir/.lock`, released when the process dies). A second
    process prints one `busy:` line and waits for the first to let go."""
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            print(f"busy: {label or run_dir} (another process trains it); waiting", flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def done_row(out: Path, verify: Callable[[Path], None] | None = None) -> dict | None:
    """The DONE row of a finished run `out`, or None when it has none or when the marker or the run's files
    (`verify(out)` raises CorruptArtifact) are damaged: then one warning line, the marker is removed and the
    caller trains the run again."""
    if not is_done(out):
        return None
    try:
        row = read_done(out)
        if verify is not None:
            verify(out)
        return row
    except CorruptArtifact as err:
        warn(f"{err}; redoing the run {out}")
        (out / DONE_MARKER).unlink(missing_ok=True)
        return None


class Resumable(Protocol):
    epoch: int  # completed epochs
    stopped: bool  # True when training cannot go on (a diverged run)

    def train(self, epochs: int, total_epochs: int | None = None): ...

    def save(self, path: Path): ...

    def restore(self, path: Path): ...

    def open_log(self, path: Path) -> None: ...


def resume_into(out: Path, cfg: DictConfig, make_trainer: Callable[[], Resumable], epochs: int,
                finish: Callable[[Resumable], dict], checkpoint_every: int = 1, keep_checkpoint: bool = False,
                checkpoint_seconds: float = 0.0, verify: Callable[[Path], None] | None = None) -> dict:
    """Train `make_trainer()` to `epochs` in `out` (resuming if possible); `finish(trainer)` writes the stage's
    files and returns the result row, which becomes the DONE marker. Returns that row.

    A checkpoint is written every `checkpoint_every` epochs, but not sooner than `checkpoint_seconds` after the
    previous one (or the start): a run of seconds then writes none, and a kill costs at most that much work.

    The run directory is locked while it is trained (`run_lock`); `verify(out)` checks a finished run's files
    (raising CorruptArtifact), and a damaged marker, file or checkpoint makes the run train again (one warning)."""
    row = done_row(out, verify)  # unlocked fast path: a finished run is skipped without waiting for a lock
    if row is not None:
        print(f"done already: {out}")
        return row
    with run_lock(out):
        return _train_locked(out, cfg, make_trainer, epochs, finish, checkpoint_every, keep_checkpoint,
                             checkpoint_seconds, verify)


def _train_locked(out: Path, cfg: DictConfig, make_trainer: Callable[[], Resumable], epochs: int,
                  finish: Callable[[Resumable], dict], checkpoint_every: int, keep_checkpoint: bool,
                  checkpoint_seconds: float, verify: Callable[[Path], None] | None) -> dict:
    row = done_row(out, verify)  # another process may have finished it while this one waited
    if row is not None:
        print(f"done already: {out}")
        return row
    atomic_write_text(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    trainer = make_trainer()
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        try:
            trainer.restore(checkpoint)
            print(f"resuming {out} at epoch {trainer.epoch}")
        except CheckpointError as err:  # the run's own file: train the run again from its first epoch
            warn(f"{err}; restarting the run {out} from its first epoch")
            checkpoint.unlink(missing_ok=True)
            trainer = make_trainer()
    trainer.open_log(out / "log.txt")
    saved_at, unsaved = time.monotonic(), 0
    bar = tqdm(total=epochs, initial=trainer.epoch, desc=out.name, unit="epoch", leave=False,
               disable=not sys.stderr.isatty())  # a terminal only: logs get the one line per finished run
    while trainer.epoch < epochs and not trainer.stopped:
        trainer.train(1, total_epochs=epochs)
        bar.update(1)
        bar.set_postfix(getattr(trainer, "progress", dict)(), refresh=False)
        unsaved += 1
        if unsaved >= checkpoint_every and time.monotonic() - saved_at >= checkpoint_seconds:
            trainer.save(checkpoint)
            saved_at, unsaved = time.monotonic(), 0
    bar.close()
    if keep_checkpoint and unsaved:
        trainer.save(checkpoint)
    row = finish(trainer)
    mark_done(out, row)
    if not keep_checkpoint:
        checkpoint.unlink(missing_ok=True)
    return row


def train_into(out: Path, cfg: DictConfig, make_run: Callable[[], Run], epochs: int, checkpoint_every: int = 1,
               row: dict | None = None, summarize: Callable[[Run], dict] | None = None,
               keep_checkpoint: bool = False, checkpoint_seconds: float = 0.0) -> dict:
    """`resume_into` for a core.training.Run: also writes epochs.parquet and steps.parquet, and the row holds
    the best and final metric. `summarize(run)` adds stage-specific fields; `keep_checkpoint` keeps the final
    checkpoint (e.g. to continue or branch from it later)."""

    def finish(run: Run) -> dict:
        history = run.history
        wall = float(sum(history.epoch_seconds))  # kept in the checkpoint, so it adds up across resumes
        run.finish_log(wall)
        atomic_write_parquet(out / "epochs.parquet", history.epoch_frame())
        atomic_write_parquet(out / "steps.parquet", history.step_frame())
        best, best_epoch = history.best_metric(run.task.metric_mode)
        final = history.eval_metric[-1] if history.eval_metric else math.nan
        print(f"{out}: {run.task.metric_name} best {best:.4f} at epoch {best_epoch}, diverged={history.diverged}")
        return {**(row or {}), "metric": run.task.metric_name, "metric_mode": run.task.metric_mode,
                "best_metric": best, "best_epoch": best_epoch, "final_metric": final, "diverged": history.diverged,
                "epochs": history.epochs, "wall_seconds": round(wall, 3), **(summarize(run) if summarize else {})}

    return resume_into(out, cfg, make_run, epochs, finish, checkpoint_every, keep_checkpoint, checkpoint_seconds,
                       verify=verify_run_files)


RUN_FILES = ("epochs.parquet", "steps.parquet")  # what train_into writes beside DONE


def verify_run_files(run_dir: Path, files: tuple[str, ...] = RUN_FILES) -> None:
    """CorruptArtifact naming the first of a finished training run's Parquet files that is missing or damaged."""
    for name in files:
        check_parquet(Path(run_dir) / name)


def finished_runs(root: str | Path, pattern: str = "*", columns: list[str] | None = None,
                  require: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per finished run directory `root/<pattern>/` (those holding DONE): the DONE row's fields and
    `run_dir`, in path order. `columns` fixes the columns (and those of an empty result).

    A damaged DONE marker, or a finished run without one of the files named in `require` (a result row without
    its run's files), is a CorruptArtifact naming it: rerunning the stage that wrote the run redoes it."""
    import pandas as pd

    run_dirs = sorted(done.parent for done in Path(root).glob(f"{pattern}/{DONE_MARKER}"))
    rows = []
    for run_dir in run_dirs:
        try:
            row = read_done(run_dir)
            for name in require:
                if not (run_dir / name).is_file():
                    raise CorruptArtifact(f"{run_dir}: finished (DONE) but its {name} is missing")
        except CorruptArtifact as err:
            raise CorruptArtifact(f"{err} (rerun the stage that wrote {run_dir.name}: it redoes that run)") from None
        rows.append({**row, "run_dir": run_dir})
    frame = pd.DataFrame(rows)
    if columns is not None:
        frame = frame.reindex(columns=[*columns, "run_dir"])
    return frame


def unfinished_runs(root: str | Path) -> list[Path]:
    """Run directories under `root` that a stage started and did not finish: those with a lock file or config.yaml
    and no DONE (resume_into), and datagen's `<run>.work/` directories. Sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    started = [*root.rglob("config.yaml"), *root.rglob(LOCK_FILE)]
    found = {path.parent for path in started if not (path.parent / DONE_MARKER).exists()}
    found = {path for path in found if path.suffix != ".work"}  # datagen's, added below
    found |= {work for work in root.rglob("*.work") if work.is_dir()}
    return sorted(found)


def describe_runs(runs: list[Path], root: Path, limit: int = 6) -> str:
    names = [str(r.relative_to(root)) if r.is_relative_to(root) else str(r) for r in runs]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


# the key of the paths group under which each stage (by its primary config's name) trains its run directories
STAGE_OUTPUTS = {"datagen": "datagen", "train_arc": "candidates", "selection": "selection", "range_test": "benchmark",
                 "benchmark": "benchmark", "train": "single_runs"}


def _lost_worker(err: BaseException | None) -> BaseException | None:
    """The loky TerminatedWorkerError (a joblib worker killed by a signal or the OS) in `err`'s chain, if any."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if type(err).__name__ in ("TerminatedWorkerError", "BrokenProcessPool"):
            return err
        err = err.__cause__ or err.__context__
    return None


def lost_worker_line(err: BaseException, config_name: str, cfg) -> str:
    """The one `error:` line of a stage whose joblib worker died: which runs were left unfinished, and what to do."""
    from core.errors import one_line

    key = STAGE_OUTPUTS.get(config_name)
    root = None
    try:
        root = Path(str(cfg.paths[key])) if cfg is not None and key else None
    except Exception:  # noqa: BLE001 (a config without that key)
        pass
    what = one_line(err).split(". ")[0]
    if root is None:
        return f"a worker process died while the stage ran ({what}); rerun the same command to resume"
    runs = unfinished_runs(root)
    named = f"unfinished runs under {root}: {describe_runs(runs, root)}" if runs else f"no unfinished run under {root}"
    return f"a worker process died while the stage ran ({what}); {named}; rerun the same command to resume them"


@contextlib.contextmanager
def report_lost_workers(config_name: str) -> Iterator[None]:
    """Around a stage's Hydra entry point: when a joblib (loky) worker dies, the launching process gets a
    TerminatedWorkerError, which Hydra would print as a traceback. This turns it into one `error:` line naming
    the unfinished runs, and exit status 1. Everything else goes through Hydra's own reporting unchanged."""
    import hydra._internal.utils as hydra_utils

    from core.stage_timer import LAUNCHED

    original = hydra_utils.run_and_report

    def run_and_report(func):
        def guarded():
            try:
                return func()
            except Exception as err:  # noqa: BLE001
                lost = _lost_worker(err)
                if lost is None:
                    raise
                print(f"error: {lost_worker_line(lost, config_name, LAUNCHED.get('config'))}", file=sys.stderr,
                      flush=True)
                sys.exit(1)

        return original(guarded)

    hydra_utils.run_and_report = run_and_report
    try:
        yield
    finally:
        hydra_utils.run_and_report = original
