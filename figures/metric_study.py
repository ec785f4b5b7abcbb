"""App. A.1 (docs/experiments.md §10.1): does a held-out metric of an ARC model predict how well it drives training?

For every model of the metric study (candidate x model file: a best_<metric>.h5 or the final arc.h5) this joins
its held-out metrics at the epoch it was kept (the candidate's epochs.parquet, stage 3) with its downstream
result (median over runs of each run's best accuracy, per LR0 and pooled over LR0s), and gives each held-out
metric's Spearman rank correlation with the downstream result. A metric whose direction is "min" (validation loss,
calibration error) is negated first, so a positive correlation always means "better by this metric, better
downstream".
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from core.artifacts import read_parquet
from core.runs import finished_runs

MODES = {"accuracy": "max", "mcc": "max", "val_loss": "min", "calibration_error": "min", "weighted_accuracy": "max"}


def model_metrics(candidates_dir: str | Path) -> pd.DataFrame:
    """One row per (candidate, model file) with the held-out metrics of that model."""
    rows = []
    for r in finished_runs(candidates_dir).itertuples():
        epochs = read_parquet(Path(r.run_dir) / "epochs.parquet").set_index("epoch")
        kept = {f"best_{m}": int(e) for m, e in (r.best_epoch or {}).items()} | {"arc": int(epochs.index.max())}
        for model_file, epoch in kept.items():
            values = epochs.loc[epoch]
            rows.append({"arc_candidate": int(r.candidate), "arc_model_file": model_file, "kept_epoch": epoch,
                         **{m: float(values[m]) for m in MODES if m in values}})
    return pd.DataFrame(rows)


def rank_correlations(study: pd.DataFrame, candidates_dir: str | Path) -> pd.DataFrame:
    """Per LR0 (and 'all'): Spearman rho and p of each held-out metric with the downstream median best value."""
    metrics = model_metrics(candidates_dir)
    if study.empty or metrics.empty:
        return pd.DataFrame()
    mode = study.metric_mode.iloc[0]
    rows = []
    for lr0, runs in [*study.groupby("lr0"), ("all", study)]:
        downstream = (runs.groupby(["arc_candidate", "arc_model_file"]).best_metric.median()
                      .rename("downstream").reset_index())
        downstream["arc_candidate"] = downstream.arc_candidate.astype(int)
        joined = downstream.merge(metrics, on=["arc_candidate", "arc_model_file"])
        sign = 1.0 if mode == "max" else -1.0
        for metric, metric_mode in MODES.items():
            if metric not in joined or joined[metric].nunique() < 2 or joined.downstream.nunique() < 2:
                rho, p = math.nan, math.nan
            else:
                rho, p = spearmanr(joined[metric] * (1.0 if metric_mode == "max" else -1.0), joined.downstream * sign)
            rows.append({"lr0": lr0 if lr0 == "all" else f"{lr0:g}", "metric": metric, "spearman_rho": float(rho), "p_value": float(p),
                         "models": len(joined)})
    return pd.DataFrame(rows)


def markdown_frame(frame: pd.DataFrame) -> str:
    """A plain Markdown table (floats to 3 decimals)."""
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells]) + "\n"
