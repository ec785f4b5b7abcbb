"""Score ARC candidates on the proxy task and keep the best (paper §3.5, docs/experiments.md §6).

For each candidate (a finished run under ${paths.candidates} with arc.h5), LR0 and repeat, one resumable
proxy run goes to ${paths.selection}/runs/<candidate>/lr<lr0>-r<repeat>/ (core.runs).
Score = mean over the candidate's runs of the best eval accuracy (docs/experiments.md §6: the authors sum them,
which ranks identically). Ties go to the candidate whose directory name sorts first. scores.csv lists
every candidate; ${paths.selected_arc} is the winner's weights; DONE names the winner. Repeat r uses seed r, so candidates are compared on the same initialisations.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig

from arc_model.controller import ARCSchedule
from core.config import check_profile
from core.artifacts import atomic_write, is_done, mark_done, read_done
from core.errors import ConfigError, DataError
from core.instantiate import build
from core.runs import finished_runs, train_into
from core.training import Run

def find_candidates(cfg: DictConfig) -> list[Path]:
    """Finished candidate directories, in name order; every one must hold arc.h5."""
    root = Path(cfg.paths.candidates)
    found = [Path(p) for p in finished_runs(root).get("run_dir", [])]
    if cfg.candidates is not None:
        by_name = {p.name: p for p in found}
        missing = [c for c in cfg.candidates if c not in by_name]
        if missing:
            raise DataError(f"candidates: not finished under {root}: {', '.join(missing)}")
        found = [by_name[c] for c in cfg.candidates]
    if not found:
        raise DataError(f"paths.candidates: no finished ARC candidates under {root} (run `make train_arc` first)")
    for path in found:
        if not (path / "arc.h5").is_file():
            raise DataError(f"candidate {path} has no arc.h5")
    return found


def validate(cfg: DictConfig) -> list[Path]:
    check_profile(cfg)
    if cfg.epochs < 1 or cfg.repeats < 1:
        raise ConfigError(f"sizes.{cfg.profile.name}: epochs and repeats must be >= 1")
    if not cfg.lr0s or any(lr <= 0 for lr in cfg.lr0s):
        raise ConfigError(f"lr0s must be a non-empty list of positive LRs, got {list(cfg.lr0s)}")
    return find_candidates(cfg)


def score_candidate(cfg: DictConfig, candidate: Path, task) -> dict:
    rows = []
    for lr0 in cfg.lr0s:
        for repeat in range(cfg.repeats):
            out = Path(cfg.paths.selection) / "runs" / candidate.name / f"lr{lr0:g}-r{repeat}"

            def make_run(lr0=lr0, repeat=repeat) -> Run:
                schedule = ARCSchedule(str(candidate / "arc.h5"), frequency=cfg.frequency)
                return Run(task, "adam", lr0, schedule, seed=repeat, log_steps=100)

            rows.append(train_into(out, cfg, make_run, cfg.epochs, row={"lr0": lr0, "repeat": repeat}))
    best = [r["best_metric"] for r in rows]
    return {"candidate": candidate.name, "score": float(sum(best) / len(best)), "runs": len(rows),
            **{f"best_lr{r['lr0']:g}_r{r['repeat']}": r["best_metric"] for r in rows}}


def select(cfg: DictConfig) -> dict:
    candidates = validate(cfg)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.paths.selection)
    if is_done(out) and read_done(out).get("candidates") == [c.name for c in candidates]:
        print(f"done already: {out} (winner {read_done(out)['winner']})")
        return read_done(out)
    task = build(cfg.task, "task", device=cfg.profile.device)
    table = pd.DataFrame([score_candidate(cfg, c, task) for c in candidates])
    table = table.sort_values(["score", "candidate"], ascending=[False, True], ignore_index=True)
    winner = candidates[[c.name for c in candidates].index(table.candidate[0])]
    atomic_write(out / "scores.csv", lambda tmp: table.to_csv(tmp, index=False))
    atomic_write(cfg.paths.selected_arc, lambda tmp: shutil.copyfile(winner / "arc.h5", tmp))
    summary = {"winner": winner.name, "score": float(table.score[0]), "candidates": [c.name for c in candidates]}
    mark_done(out, summary)
    print(table[["candidate", "score", "runs"]].round(4).to_string(index=False))
    print(f"selected {winner.name} (mean best accuracy {table.score[0]:.4f}) -> {cfg.paths.selected_arc}")
    return summary
