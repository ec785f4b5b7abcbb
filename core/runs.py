"""One resumable training run in its own directory — the unit every stage's grid is made of — and the one
reader of finished runs that tables, figures, candidates and selection share.

`resume_into(out, cfg, make_trainer, epochs, finish)` writes config.yaml, an FE-format log.txt and
checkpoint.pt while training, then `finish(trainer)`'s files, and last the DONE marker holding the result
row. A directory with DONE is skipped; one without is resumed from its checkpoint (the log is cut back to
the checkpoint), so rerunning a grid redoes only what a crash or kill interrupted. A trainer is anything
with the `Resumable` methods: core.training.Run (`train_into`), arc_model's CandidateTrainer.

`finished_runs(root, pattern)` is one row per finished run directory: its DONE row plus `run_dir`.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Protocol

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from core.artifacts import DONE_MARKER, atomic_write, atomic_write_text, is_done, mark_done, read_done
from core.training import Run


class Resumable(Protocol):
    epoch: int  # completed epochs
    stopped: bool  # True when training cannot go on (a diverged run)

    def train(self, epochs: int, total_epochs: int | None = None): ...

    def save(self, path: Path): ...

    def restore(self, path: Path): ...

    def open_log(self, path: Path) -> None: ...


def resume_into(out: Path, cfg: DictConfig, make_trainer: Callable[[], Resumable], epochs: int,
                finish: Callable[[Resumable], dict], checkpoint_every: int = 1, keep_checkpoint: bool = False,
                checkpoint_seconds: float = 0.0) -> dict:
    """Train `make_trainer()` to `epochs` in `out` (resuming if possible); `finish(trainer)` writes the stage's
    files and returns the result row, which becomes the DONE marker. Returns that row.

    A checkpoint is written every `checkpoint_every` epochs, but not sooner than `checkpoint_seconds` after the
    previous one (or the start): a run of seconds then writes none, and a kill costs at most that much work."""
    if is_done(out):
        print(f"done already: {out}")
        return read_done(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    trainer = make_trainer()
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        trainer.restore(checkpoint)
        print(f"resuming {out} at epoch {trainer.epoch}")
    trainer.open_log(out / "log.txt")
    saved_at, unsaved = time.monotonic(), 0
    while trainer.epoch < epochs and not trainer.stopped:
        trainer.train(1, total_epochs=epochs)
        unsaved += 1
        if unsaved >= checkpoint_every and time.monotonic() - saved_at >= checkpoint_seconds:
            trainer.save(checkpoint)
            saved_at, unsaved = time.monotonic(), 0
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
        atomic_write(out / "epochs.parquet", lambda tmp: history.epoch_frame().to_parquet(tmp, index=False))
        atomic_write(out / "steps.parquet", lambda tmp: history.step_frame().to_parquet(tmp, index=False))
        best, best_epoch = history.best_metric(run.task.metric_mode)
        final = history.eval_metric[-1] if history.eval_metric else math.nan
        print(f"{out}: {run.task.metric_name} best {best:.4f} at epoch {best_epoch}, diverged={history.diverged}")
        return {**(row or {}), "metric": run.task.metric_name, "metric_mode": run.task.metric_mode,
                "best_metric": best, "best_epoch": best_epoch, "final_metric": final, "diverged": history.diverged,
                "epochs": history.epochs, "wall_seconds": round(wall, 3), **(summarize(run) if summarize else {})}

    return resume_into(out, cfg, make_run, epochs, finish, checkpoint_every, keep_checkpoint, checkpoint_seconds)


def finished_runs(root: str | Path, pattern: str = "*", columns: list[str] | None = None) -> pd.DataFrame:
    """One row per finished run directory `root/<pattern>/` (those holding DONE): the DONE row's fields and
    `run_dir`, in path order. `columns` fixes the columns (and those of an empty result)."""
    run_dirs = sorted(done.parent for done in Path(root).glob(f"{pattern}/{DONE_MARKER}"))
    rows = [{**read_done(run_dir), "run_dir": run_dir} for run_dir in run_dirs]
    frame = pd.DataFrame(rows)
    if columns is not None:
        frame = frame.reindex(columns=[*columns, "run_dir"])
    return frame
