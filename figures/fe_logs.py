"""The authors' FastEstimator text logs as run directories, so that every table and figure is rendered from them
exactly as from our own runs (`python -m figures source=fe_logs logs_dir=DIR`).

Layout (docs/experiments.md §9.1): DIR/normal_comparison/<task>/<LR0 prefix>_<schedule>_<run>.txt and
DIR/meta_comparison/<task>/<schedule>_<run>.txt. The LR0 prefix is LR0 without its decimal point (`0001` = 0.001,
`1` = 1.0); ARC's files are named `lr-controller-weighted-acc` (normal) or `ARC` (meta); the meta ARC logs are
byte-identical copies of normal ones and are skipped as duplicates. Task directories keep the authors' names
(image_classification, instance_detection, language_modeling), mapped to cifar10 / mscoco / ptb (configs/figures.yaml
`fe_logs`), so the paper's printed values fill in.

Parsing (§9): core.felog.parse_log, which mirrors FE's own parser but keeps inf/nan and values with units
(`epoch_time: 8.58 sec`) and skips every other line (the `--- run ---` header, the FE banner, TF and download
noise, `multiplying lr by` decisions, warnings). A run is complete when it has the task's number of Eval lines
(30 / 30 / 98), not when it has a Finish line. Each log becomes <out>/<task>/<file stem>/ with:
  epochs.parquet  epoch, steps, train_loss_mean, eval_loss, eval_metric, lr, seconds (as our runs write it);
  log.txt         a copy of the log (ARC's decisions are read from it);
  DONE            the result row (best = max accuracy/mAP, min perplexity over eval epochs; inf/nan never win),
                  written only for a complete log, so an incomplete one is reported by the completeness gate.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd

from core.artifacts import atomic_write_parquet, atomic_write_text, mark_done
from core.errors import DataError
from core.felog import parse_log

HEADER = re.compile(r"^---\s*run:\s*(?P<model>[^;]+);\s*init_lr:\s*(?P<lr>[^;]+);\s*i:\s*(?P<i>\d+)\s*---")
INCOMPLETE = "incomplete.json"  # beside an incomplete run's files: {why}


def lr0_of_prefix(prefix: str) -> float:
    """`001` -> 0.01, `0005` -> 0.005, `00001` -> 1e-4, `01` -> 0.1, `1` -> 1.0 (the point is dropped)."""
    if not prefix.isdigit():
        raise ValueError(f"not an LR0 prefix: {prefix!r}")
    return float("0." + prefix[1:]) if prefix.startswith("0") else float(prefix)


def parse_name(path: Path, meta: bool, schedules: dict) -> tuple[float | None, str, int] | None:
    """(LR0 or None, schedule, run) from a file name, or None when the schedule is not one we know."""
    parts = path.stem.split("_")
    if len(parts) < (2 if meta else 3) or not parts[-1].isdigit():
        return None
    run = int(parts[-1])
    if meta:
        name, lr0 = "_".join(parts[:-1]), None
    else:
        name = "_".join(parts[1:-1])
        try:
            lr0 = lr0_of_prefix(parts[0])
        except ValueError:
            return None
    if name not in schedules:
        return None
    return lr0, schedules[name], run


def _scalar(value) -> float:
    """FE 1.7's ValWithError (y_min, y, y_max) -> y; numbers as they are."""
    return float(value[1]) if isinstance(value, tuple) else float(value)


def _interval(values: dict, lo: int, hi: int) -> list:
    return [_scalar(v) for s, v in sorted(values.items()) if lo < s <= hi]


def epoch_frame(history: dict, metric: str, loss: str, lr0: float | None) -> pd.DataFrame:
    """One row per Eval line: epochs.parquet of our runs, from a parsed FE log."""
    evals = history["eval"]
    steps = sorted(evals.get(metric, {}))
    epoch_of = evals.get("epoch", {})
    train = history["train"]
    lrs = train.get("model_lr", {})
    rows, previous = [], 0
    for i, step in enumerate(steps, 1):
        in_epoch = _interval(train.get(loss, {}), previous, step)
        lr_steps = [s for s in sorted(lrs) if s <= step]
        if lr_steps:
            lr = _scalar(lrs[lr_steps[-1]])
        elif lrs:  # BLR logs model_lr only on the Finish line: the LR never changed
            lr = _scalar(lrs[min(lrs)])
        else:
            lr = lr0 if lr0 is not None else math.nan
        seconds = _interval(train.get("epoch_time", {}), previous, step)
        rows.append({"epoch": int(epoch_of.get(step, i)), "steps": step - previous,
                     "train_loss_mean": sum(in_epoch) / len(in_epoch) if in_epoch else math.nan,
                     "eval_loss": _scalar(evals.get(loss, {}).get(step, math.nan)),
                     "eval_metric": _scalar(evals[metric][step]),
                     "lr": lr, "seconds": seconds[-1] if seconds else math.nan})
        previous = step
    return pd.DataFrame(rows, columns=["epoch", "steps", "train_loss_mean", "eval_loss", "eval_metric", "lr",
                                       "seconds"])


def best_of(values: list[float], mode: str) -> tuple[float, int]:
    """(best value, 1-based epoch) over evaluated epochs; inf and nan never win (core.history's rule)."""
    finite = [(v, i) for i, v in enumerate(values, 1) if math.isfinite(v)]
    if not finite:
        return math.nan, 0
    return (max if mode == "max" else min)(finite, key=lambda pair: pair[0])


def convert(logs_dir: str | Path, out: str | Path, fe) -> dict:
    """Every log under logs_dir as a run directory under out/<task>/; returns counts and the incomplete runs."""
    logs_dir, out = Path(logs_dir), Path(out)
    groups = [(logs_dir / "normal_comparison", False), (logs_dir / "meta_comparison", True)]
    if not any(d.is_dir() for d, _ in groups):
        raise DataError(f"logs_dir: {logs_dir} holds neither normal_comparison/ nor meta_comparison/ (the authors' "
                        "layout: normal_comparison/<task>/<LR0 prefix>_<schedule>_<run>.txt, "
                        "meta_comparison/<task>/<schedule>_<run>.txt)")
    if out.exists():
        shutil.rmtree(out)  # derived entirely from the logs: rebuilt every time
    seen: dict[str, Path] = {}
    summary = {"runs": 0, "duplicates": [], "ignored": [], "incomplete": []}
    for group, meta in groups:
        for path in sorted(group.glob("*/*.txt")):
            task = fe.tasks.get(path.parent.name)
            parsed = parse_name(path, meta, fe.schedules)
            if task is None or parsed is None:
                summary["ignored"].append(str(path.relative_to(logs_dir)))
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen:
                summary["duplicates"].append(f"{path.relative_to(logs_dir)} = {seen[digest].relative_to(logs_dir)}")
                continue
            seen[digest] = path
            lr0, schedule, run = parsed
            text = path.read_text(errors="replace")
            header = HEADER.match(text.splitlines()[0]) if text else None
            if lr0 is None and schedule != "sls":  # meta ARC / SC: their LR0 (ARC's header says it too)
                lr0 = float(header["lr"]) if header else float(fe.meta_lr0[task])
            metric, mode, loss = fe.metrics[task], fe.modes[task], fe.losses[task]
            history = parse_log(path)
            frame = epoch_frame(history, metric, loss, lr0)
            run_dir = out / task / f"{path.parent.parent.name}-{path.stem}"
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_parquet(run_dir / "epochs.parquet", frame)
            shutil.copyfile(path, run_dir / "log.txt")
            best, best_epoch = best_of(frame.eval_metric.tolist(), mode)
            finish = history["train"].get("total_time", {})
            wall = list(finish.values())[-1] if finish else float(frame.seconds.sum(skipna=True))
            row = {"task": task, "schedule": schedule, "lr0": lr0, "seed": run,
                   "frequency": 3 if schedule == "arc" else None, "metric": metric, "metric_mode": mode,
                   "best_metric": best, "best_epoch": best_epoch,
                   "final_metric": float(frame.eval_metric.iloc[-1]) if len(frame) else math.nan,
                   "diverged": bool(not all(math.isfinite(v) for v in frame.eval_metric)),
                   "epochs": len(frame), "wall_seconds": round(float(wall), 3),
                   "source_log": str(path.relative_to(logs_dir))}
            need = int(fe.evals[task])
            if len(frame) < need:
                why = f"{len(frame)} of {need} Eval lines"
                atomic_write_text(run_dir / INCOMPLETE, json.dumps({**row, "why": why}, default=str) + "\n")
                summary["incomplete"].append({"task": task, "schedule": schedule, "lr0": lr0, "seed": run,
                                              "name": str(path.relative_to(logs_dir)), "why": why})
                continue
            mark_done(run_dir, row)
            summary["runs"] += 1
    return summary


def expected_logs(tasks, fe, single_column) -> dict:
    """The runs a complete set of the authors' logs holds, per task present: 5 runs of each of the seven rows,
    in each LR0 column of its table (SC and SLS in one column)."""
    from figures.expected import Expectation

    seeds = tuple(range(int(fe.runs)))
    out = {}
    for task in tasks:
        grid = tuple(float(v) for v in fe.lr0s[task])
        out[task] = {s: Expectation(seeds, None if s in single_column else grid, "the authors' layout (5 runs a cell)")
                     for s in ("constant", "cd", "ccd", "ed", "sc", "sls", "arc")}
    return out
