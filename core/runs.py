"""One resumable training run in its own directory — the unit every stage's grid is made of.

`train_into(out, ...)` writes config.yaml, an FE-format log.txt, checkpoint.pt while training,
epochs.parquet and steps.parquet, and last the DONE marker holding the result row. A directory with
DONE is skipped; one without is resumed from its checkpoint (the log is cut back to the checkpoint,
core.training.Run.open_log), so rerunning a grid redoes only what a crash or kill interrupted.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from core.artifacts import atomic_write, atomic_write_text, is_done, mark_done, read_done
from core.training import Run


def train_into(out: Path, cfg: DictConfig, make_run: Callable[[], Run], epochs: int, checkpoint_every: int = 1,
               row: dict | None = None, summarize: Callable[[Run], dict] | None = None,
               keep_checkpoint: bool = False) -> dict:
    """Train `make_run()` to `epochs` in `out` (resuming if possible); return the result row (DONE content).

    `summarize(run)` adds stage-specific fields to the row; `keep_checkpoint` keeps the final
    checkpoint (e.g. to continue or branch from it later)."""
    if is_done(out):
        print(f"done already: {out}")
        return read_done(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    run = make_run()
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        run.restore(checkpoint)
        print(f"resuming {out} at epoch {run.epoch}")
    run.open_log(out / "log.txt")
    while run.epoch < epochs and not run.history.diverged:
        run.train(min(checkpoint_every, epochs - run.epoch), total_epochs=epochs)
        run.save(checkpoint)
    history = run.history
    wall = float(sum(history.epoch_seconds))  # kept in the checkpoint, so it adds up across resumes
    run.finish_log(wall)
    atomic_write(out / "epochs.parquet", lambda tmp: history.epoch_frame().to_parquet(tmp, index=False))
    atomic_write(out / "steps.parquet", lambda tmp: history.step_frame().to_parquet(tmp, index=False))
    best, best_epoch = history.best_metric(run.task.metric_mode)
    final = history.eval_metric[-1] if history.eval_metric else math.nan
    row = {**(row or {}), "metric": run.task.metric_name, "metric_mode": run.task.metric_mode,
           "best_metric": best, "best_epoch": best_epoch, "final_metric": final, "diverged": history.diverged,
           "epochs": history.epochs, "wall_seconds": round(wall, 3), **(summarize(run) if summarize else {})}
    mark_done(out, row)
    if not keep_checkpoint:
        checkpoint.unlink()
    print(f"{out}: {run.task.metric_name} best {best:.4f} at epoch {best_epoch}, diverged={history.diverged}")
    return row
