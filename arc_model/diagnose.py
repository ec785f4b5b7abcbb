"""`python -m arc_model.diagnose profile=mini`: what the candidates see where the labels say 'decrease'.

Two tables, printed and written to ${paths.candidates}/diagnosis.txt:
  1. features of held-out points, by group: every true label, and for 'decrease' the points the candidates call
     'decrease' (pooled over the finished candidates, each on its own held-out points, arc_model.candidates):
       val_change    v[-1] / v[0] - 1 over the point's per-epoch validation losses (its k cycles)
       train_change  mean of the last tenth of its step losses / mean of the first tenth - 1
       lr_vs_lr0     the LR of its last cycle / the run's LR0 (how far earlier decisions moved it)
       point         its index in the run (0 = the first ARC call)
       margin        (second-best - best) / best branch loss: how decisive the label's branch was
     medians per group, and the group's size;
  2. the hybrid loss per true class over training (the candidates' epochs.parquet, `train_hybrid_<class>` and
     `held_hybrid_<class>`, arc_model.candidate_trainer), mean over candidates at a few epochs.
A reader sees whether 'decrease' points look different from the others in what ARC reads, and whether the
candidates learn that class at all (its loss falling like the others', or not).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

import arc_model.config  # noqa: F401  (registers the schema)
from arc_model.loss import CLASS_NAMES
from core.artifacts import atomic_write_text, read_parquet
from core.cli import stage
from core.errors import DataError
from core.runs import finished_runs

FEATURES = ("val_change", "train_change", "lr_vs_lr0", "point", "margin")


def point_features(points: pd.DataFrame) -> pd.DataFrame:
    """FEATURES of each point (one row per point, same index)."""
    def tenth_change(losses) -> float:
        losses = np.asarray(losses, dtype=float)
        k = max(1, len(losses) // 10)
        return float(losses[-k:].mean() / losses[:k].mean() - 1) if len(losses) else math.nan

    def margin(branch) -> float:
        finite = sorted(v for v in branch if math.isfinite(v))
        return (finite[1] - finite[0]) / finite[0] if len(finite) >= 2 and finite[0] > 0 else math.nan

    return pd.DataFrame({
        "val_change": [v[-1] / v[0] - 1 if len(v) and v[0] else math.nan for v in points.val_loss],
        "train_change": [tenth_change(t) for t in points.train_loss],
        "lr_vs_lr0": [lrs[-1] / lr0 for lrs, lr0 in zip(points.train_lr, points.lr0)],
        "point": points.point.astype(float),
        "margin": [margin(b) for b in points.branch_loss]}, index=points.index)


def feature_table(features: pd.DataFrame, labels: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Median FEATURES and size of each group: true raise / keep / decrease, predicted decrease, both."""
    decrease = CLASS_NAMES.index("decrease")
    groups = {f"true {name}": labels == c for c, name in enumerate(CLASS_NAMES)}
    groups["predicted decrease"] = predicted == decrease
    groups["true and predicted decrease"] = (labels == decrease) & (predicted == decrease)
    rows = [{"group": name, "points": int(mask.sum()),
             **{f: float(features[f][mask].median()) if mask.any() else math.nan for f in FEATURES}}
            for name, mask in groups.items()]
    return pd.DataFrame(rows)


def loss_by_class_table(epoch_frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Mean over candidates of the per-class hybrid loss at the first, 10%, 50% and last epoch."""
    columns = [f"{side}_hybrid_{c}" for side in ("train", "held") for c in CLASS_NAMES]
    frames = [f for f in epoch_frames if set(columns) <= set(f.columns)]
    if not frames:
        return pd.DataFrame()
    last = min(len(f) for f in frames)
    epochs = sorted({1, max(1, last // 10), max(1, last // 2), last})
    rows = [{"epoch": e, **{c: float(np.nanmean([f[c].iloc[e - 1] for f in frames])) for c in columns}}
            for e in epochs]
    return pd.DataFrame(rows)


def diagnose(cfg: DictConfig) -> None:
    from arc_model.candidates import heldout_set, predict

    candidates_dir = Path(cfg.paths.candidates)
    runs = finished_runs(candidates_dir)
    if runs.empty:
        raise DataError(f"no finished ARC candidates under {candidates_dir} (run `make train_arc` first)")
    features, labels, predicted, epoch_frames, cache, skipped = [], [], [], [], {}, set()
    for run_dir in runs.run_dir:
        epoch_frames.append(read_parquet(Path(run_dir) / "epochs.parquet"))
        try:
            held = heldout_set(run_dir, cfg.data.path, cfg.data.trust_pickle, cache)
        except DataError as err:  # e.g. paper: data.holdout=0
            skipped.add(str(err))
            continue
        features.append(point_features(held.points))
        labels.append(held.labels)
        predicted.append(predict(Path(run_dir) / "arc.h5", held.inputs))
    table = (feature_table(pd.concat(features, ignore_index=True), np.concatenate(labels),
                           np.concatenate(predicted)).round(4).to_string(index=False) if features
             else "no held-out points: " + "; ".join(sorted(skipped)))
    losses = loss_by_class_table(epoch_frames)
    no_losses = "no per-class columns in epochs.parquet (candidates trained before they were logged)"
    text = (f"What the candidates see ({len(runs)} candidates, held-out points pooled)\n\n"
            f"Features of held-out points (medians)\n{table}\n\n"
            f"Hybrid loss per true class over training (mean over candidates)\n"
            f"{losses.round(4).to_string(index=False) if len(losses) else no_losses}\n")
    atomic_write_text(candidates_dir / "diagnosis.txt", text)
    print(text + f"written: {candidates_dir / 'diagnosis.txt'}")


main = stage("train_arc")(diagnose)

if __name__ == "__main__":
    main()
