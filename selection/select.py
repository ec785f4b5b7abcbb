"""Score ARC candidates on the proxy task and keep the best (paper §3.5, App. A.2; docs/experiments.md §6).

Two steps, so that scoring spreads over workers or SLURM jobs and only one step writes the winner:
  * scoring, `python -m selection -m`: one resumable proxy run per candidate x LR0 x repeat (the sweep of
    configs/experiment/proxy_selection.yaml), into ${paths.selection}/runs/<candidate>/lr<lr0>-r<repeat>/.
    Repeat r uses seed r, so candidates are compared on the same initialisations. `candidate=published` scores
    FastEstimator's published arc.h5 (paths.published_arc) as an extra, labelled row; it cannot win.
  * picking, `python -m selection.pick`: score = mean over a candidate's runs of the best eval accuracy
    (docs §6: the authors sum them, which ranks identically). Every finished candidate must have all its
    runs. Ties: the higher mean best accuracy at the smallest LR0 (where ARC has to raise the LR), then the
    lower candidate id. Writes scores.csv, copies the winner's weights to ${paths.selected_arc}, DONE names it.
"""
from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig

from arc_model.controller import ARCSchedule
from arc_model.weights import load_keras_h5
from core.artifacts import atomic_write, mark_done
from core.config import check_profile
from core.errors import ConfigError, CorruptArtifact, DataError
from core.instantiate import build_task
from core.runs import finished_runs, train_into
from core.training import Run, run_options

PUBLISHED = "published"


def finished_candidates(candidates_dir: str | Path) -> pd.DataFrame:
    """The finished ARC candidates (core.runs.finished_runs), one per id; each must hold arc.h5."""
    runs = finished_runs(candidates_dir)
    if runs.empty:
        raise DataError(f"paths.candidates: no finished ARC candidates under {candidates_dir} "
                        "(run `make train_arc` first)")
    duplicated = runs.candidate[runs.candidate.duplicated()].tolist()
    if duplicated:
        raise DataError(f"paths.candidates: several finished candidates with id {duplicated} under "
                        f"{candidates_dir} (remove the stale ones)")
    for run_dir in runs.run_dir:
        if not (Path(run_dir) / "arc.h5").is_file():
            raise CorruptArtifact(f"candidate {run_dir} has no arc.h5 (rerun `make train_arc`: it trains a damaged "
                                  "candidate again)")
        try:  # an earlier stage's file: refused here, redone by train_arc
            load_keras_h5(Path(run_dir) / "arc.h5")
        except DataError as err:
            raise CorruptArtifact(f"{err} (rerun `make train_arc`: it trains a damaged candidate again)") from None
    return runs.sort_values("candidate", ignore_index=True)


def candidate_weights(cfg: DictConfig) -> tuple[str, Path] | None:
    """(name of the candidate's run directory under runs/, its arc.h5), or None: published ARC not configured."""
    if str(cfg.candidate) == PUBLISHED:
        if cfg.paths.published_arc is None:
            return None
        weights = Path(cfg.paths.published_arc)
        if not weights.is_file():
            raise DataError(f"paths.published_arc: ARC weights not found: {weights}")
        load_keras_h5(weights)  # a file of another network is refused before anything is written
        return f"{PUBLISHED}-{hashlib.sha256(weights.read_bytes()).hexdigest()[:8]}", weights
    try:
        candidate = int(cfg.candidate)
    except ValueError:
        raise ConfigError(f"candidate must be a candidate id or '{PUBLISHED}', got {cfg.candidate!r}") from None
    runs = finished_candidates(cfg.paths.candidates)
    mine = runs[runs.candidate == candidate]
    if mine.empty:
        raise DataError(f"candidate={candidate}: not finished under {cfg.paths.candidates} "
                        f"(finished: {runs.candidate.tolist()})")
    run_dir = Path(mine.run_dir.iloc[0])
    return run_dir.name, run_dir / "arc.h5"


def validate(cfg: DictConfig) -> None:
    check_profile(cfg)
    if cfg.epochs < 1 or cfg.repeats < 1:
        raise ConfigError(f"sizes.{cfg.profile.name}: epochs and repeats must be >= 1")
    if not cfg.lr0s or any(lr <= 0 for lr in cfg.lr0s):
        raise ConfigError(f"lr0s must be a non-empty list of positive LRs, got {list(cfg.lr0s)}")
    if cfg.lr0 is None or cfg.lr0 not in list(cfg.lr0s):
        raise ConfigError(f"lr0 must be one of the study's lr0s {list(cfg.lr0s)}, got {cfg.lr0}")
    if cfg.repeat < 0:
        raise ConfigError(f"repeat must be >= 0, got {cfg.repeat}")
    if cfg.frequency < 1:
        raise ConfigError(f"frequency (epochs between two ARC calls) must be >= 1, got {cfg.frequency}")


def score_run(cfg: DictConfig) -> dict | None:
    """One proxy run: candidate x LR0 x repeat (a job of the scoring multirun)."""
    validate(cfg)
    if cfg.repeat >= cfg.repeats:
        print(f"skip: repeat {cfg.repeat} (profile {cfg.profile.name} runs {cfg.repeats} repeats)")
        return None
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    found = candidate_weights(cfg)
    if found is None:
        print("skip: candidate=published needs paths.published_arc (or the env variable ARC_PUBLISHED_WEIGHTS)")
        return None
    name, weights = found
    task = build_task(cfg.task, "task", device=cfg.profile.device)
    out = Path(cfg.paths.selection) / "runs" / name / f"lr{cfg.lr0:g}-r{cfg.repeat}"

    def make_run() -> Run:
        schedule = ARCSchedule(str(weights), frequency=cfg.frequency)
        return Run(task, "adam", cfg.lr0, schedule, seed=cfg.repeat, log_steps=100, **run_options(cfg.profile))

    row = {"candidate": str(cfg.candidate), "run": name, "lr0": cfg.lr0, "repeat": cfg.repeat}
    summarize = lambda run: {"decisions": len(run.schedule.decisions)}  # noqa: E731
    return train_into(out, cfg, make_run, cfg.epochs, row=row, summarize=summarize)


def score_table(runs: pd.DataFrame, lr0s: list[float], repeats: int) -> pd.DataFrame:
    """One row per candidate: score (mean best accuracy), the tie-break value (mean best at the smallest
    LR0), run count; sorted best first by the stated rule. Published ARC rows are labelled, not ranked."""
    smallest = min(lr0s)
    rows = []
    for candidate, group in runs.groupby("candidate"):
        at_smallest = group[group.lr0.round(12) == round(smallest, 12)].best_metric
        rows.append({"candidate": candidate, "run": group.run.iloc[0], "score": float(group.best_metric.mean()),
                     "score_at_smallest_lr0": float(at_smallest.mean()) if len(at_smallest) else math.nan,
                     "runs": len(group), "decisions_per_run": float(group.decisions.mean()),
                     **{f"best_lr{r.lr0:g}_r{int(r.repeat)}": r.best_metric for r in group.itertuples()}})
    table = pd.DataFrame(rows)
    table["published"] = table.candidate == PUBLISHED
    table["order_id"] = [math.inf if c == PUBLISHED else int(c) for c in table.candidate]
    table = table.sort_values(["published", "score", "score_at_smallest_lr0", "order_id"],
                              ascending=[True, False, False, True], ignore_index=True)
    return table.drop(columns="order_id")


def pick(cfg: DictConfig) -> dict:
    """Score every finished candidate from its proxy runs and copy the winner's weights."""
    check_profile(cfg, needs_data=False)
    candidates = finished_candidates(cfg.paths.candidates)
    runs = finished_runs(Path(cfg.paths.selection) / "runs", "*/*")
    expected = len(cfg.lr0s) * cfg.repeats
    have = runs.groupby("run").size() if not runs.empty else pd.Series(dtype=int)
    incomplete = [f"{Path(d).name} ({int(have.get(Path(d).name, 0))} of {expected} runs)"
                  for d in candidates.run_dir if have.get(Path(d).name, 0) < expected]
    if incomplete:
        raise DataError(f"selection: proxy runs missing for {', '.join(incomplete)} (run `python -m selection -m "
                        f"profile={cfg.profile.name}` first)")
    names = {Path(d).name for d in candidates.run_dir}
    runs = runs[runs.run.isin(names) | (runs.candidate == PUBLISHED)]
    table = score_table(runs, list(cfg.lr0s), cfg.repeats)
    out = Path(cfg.paths.selection)
    winner = table.iloc[0]
    winner_dir = Path(candidates.run_dir[candidates.candidate == int(winner.candidate)].iloc[0])
    atomic_write(out / "scores.csv", lambda tmp: table.to_csv(tmp, index=False))
    atomic_write(cfg.paths.selected_arc, lambda tmp: shutil.copyfile(winner_dir / "arc.h5", tmp))
    summary = {"winner": winner_dir.name, "candidate": int(winner.candidate), "score": float(winner.score),
               "candidates": sorted(names)}
    mark_done(out, summary)
    print(table[["candidate", "score", "score_at_smallest_lr0", "runs", "decisions_per_run"]].round(4)
          .to_string(index=False))
    print(f"selected candidate {winner.candidate} (mean best accuracy {winner.score:.4f}) -> {cfg.paths.selected_arc}")
    return summary
