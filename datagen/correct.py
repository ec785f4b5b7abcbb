"""`python -m datagen.correct`: ground-truth correction (docs/experiments.md §2.1, paper §3.3) of every generated point.

For a point whose run continued with action x, l*_x (the replicate: the next step 1 re-ran x from C) replaces
l_x. If the ranking of (l+, l1, l-) changes, noise rather than the LR decided it, and the label becomes 1
(keep the LR). `rule=full` (default) compares the whole ranking, as the paper's example implies: with
(l+, l1, l-) = (0.113, 0.112, 0.111) and x = decrease, l*- = 0.109 keeps the label and l*- = 0.115 makes it
'keep'; `rule=argmin` only compares the best action. A run's last point has no replicate: `last_point=keep` (default) keeps its raw label, `drop` drops it
(docs/experiments.md §2.1 leaves this UNSPECIFIED). A diverged replicate (non-finite l*) ranks last, so it always counts as
a changed order.
A tie for the best loss (two actions equal, e.g. a network no LR moves) is labelled keep (`ties=keep`, default
[I], core.points.corrected_label); `ties=index` leaves the raw label, which breaks ties towards 'raise'.

Output: ${paths.dataset}/dataset.parquet (core.points columns, `label` corrected, `label_raw`
kept), report.csv and report.txt (label distributions before/after and fraction changed per task; with
paths.published_arc set, how often FastEstimator's published ARC picks our label; what the mix depends on: the
corrected shares by optimizer, by third of the task's log LR0 range and by the point's place in its run), DONE.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

import datagen.config  # noqa: F401  (registers the schemas)
from core.artifacts import atomic_write, atomic_write_parquet, atomic_write_text, mark_done, read_parquet
from core.cli import stage
from core.errors import ConfigError, CorruptArtifact, DataError, one_line
from core.points import RULES, TIES, corrected_label, validate_points

LAST_POINT = ("keep", "drop")


def correct_points(points: pd.DataFrame, rule: str = "full", last_point: str = "keep",
                   ties: str = "keep") -> pd.DataFrame:
    if rule not in RULES:
        raise ConfigError(f"rule must be one of {RULES}, got '{rule}'")
    if ties not in TIES:
        raise ConfigError(f"ties must be one of {TIES}, got '{ties}'")
    if last_point not in LAST_POINT:
        raise ConfigError(f"last_point must be one of {LAST_POINT}, got '{last_point}'")
    points = points[points.chosen >= 0] if last_point == "drop" else points
    points = points.reset_index(drop=True).copy()
    points["label"] = [corrected_label(list(r.branch_loss), r.chosen, r.replicate_loss, r.label_raw, rule, ties)
                       for r in points.itertuples()]
    return points


def label_report(points: pd.DataFrame) -> pd.DataFrame:
    """Per task and in total: points, label counts before (raw) and after correction, fraction changed."""
    def summary(frame: pd.DataFrame) -> dict:
        row = {"points": len(frame), "runs": frame.run_id.nunique()}
        for column, tag in (("label_raw", "raw"), ("label", "corrected")):
            counts = frame[column].value_counts()
            row.update({f"{tag}_{c}": int(counts.get(c, 0)) for c in (0, 1, 2)})
        row["changed"] = float((frame.label != frame.label_raw).mean())
        return row
    rows = {task: summary(frame) for task, frame in points.groupby("task", sort=False)}
    rows["ALL"] = summary(points)
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("task")


def mix_drivers(points: pd.DataFrame, lr_ranges: dict) -> pd.DataFrame:
    """The corrected labels' shares (raise, keep, decrease) grouped by what drives them: the run's optimizer, the
    third of its task's log LR0 range that its LR0 fell in (lr_ranges: task -> [min, max], the range the task was
    generated with; tasks without one are left out of those rows), and the point's place in its run (an ARC call
    early in a run mostly finds an under-trained model)."""
    labels = points.label.to_numpy()
    place = np.where(points.point == 0, "first call", np.where(points.point == 1, "second call", "later calls"))
    third = np.full(len(points), "", dtype=object)
    for i, (task, lr0) in enumerate(zip(points.task, points.lr0)):
        if task in lr_ranges:
            low, high = (math.log(v) for v in lr_ranges[task])
            index = min(int(3 * (math.log(lr0) - low) / (high - low)), 2)
            third[i] = f"LR0 {('lowest', 'middle', 'highest')[index]} third"
    groups = [*(f"optimizer {o}" for o in points.optimizer), *place, *third]
    frame = pd.DataFrame({"group": groups, "label": np.tile(labels, 3)})
    frame = frame[frame.group != ""]
    table = pd.crosstab(frame.group, frame.label, normalize="index").reindex(columns=[0, 1, 2], fill_value=0.0)
    table.columns = ["raise", "keep", "decrease"]
    table.insert(0, "points", frame.group.value_counts())
    places = [g for g in ("first call", "second call", "later calls") if g in table.index]
    thirds = [f"LR0 {t} third" for t in ("lowest", "middle", "highest") if f"LR0 {t} third" in table.index]
    return table.loc[sorted(g for g in table.index if g.startswith("optimizer")) + places + thirds].rename_axis(
        "points grouped by")


def equal_thirds_raise(drivers: pd.DataFrame) -> float | None:
    """The raise share with the three LR0 thirds weighted equally: what log-uniform LR0 draws give on average,
    where a few runs per task may fall unevenly over the range; None without all three thirds."""
    thirds = [f"LR0 {t} third" for t in ("lowest", "middle", "highest")]
    return float(drivers.loc[thirds, "raise"].mean()) if set(thirds) <= set(drivers.index) else None


def generated_lr_ranges(input_dir: Path) -> dict:
    """task -> the [min, max] LR0 range its runs were drawn from, from the task's config.json (datagen writes
    it); a task whose file is missing or unreadable is left out."""
    ranges = {}
    for config_file in sorted(input_dir.glob("*/config.json")):
        try:
            ranges[config_file.parent.name] = [float(v) for v in json.loads(config_file.read_text())["lr_range"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return ranges


def published_agreement(points: pd.DataFrame, weights: str) -> pd.Series:
    """Per task and overall: the fraction of points whose corrected label FastEstimator's published ARC picks
    (its argmax on the point's offline input, arc_model's preprocessing). A diagnostic of how close our labels
    are to the data the published model learned from."""
    import torch

    from arc_model.data import build_inputs
    from arc_model.weights import load_keras_h5

    inputs, labels = build_inputs(points)
    with torch.no_grad():
        picks = load_keras_h5(weights).eval().probabilities(inputs).argmax(1).numpy()
    agree = pd.Series(picks == labels, index=points.index)
    by_task = agree.groupby(points.task, sort=False).mean()
    by_task["ALL"] = agree.mean()
    return by_task


def read_runs(input_dir: Path) -> pd.DataFrame:
    files = sorted(input_dir.glob("*/run-*.parquet"))
    if not files:
        raise DataError(f"no generated runs under {input_dir} (run `make datagen` first)")
    frames = []
    for file in files:
        try:
            frame = read_parquet(file)
        except Exception as err:  # noqa: BLE001 (the engine raises several types for damaged files)
            raise CorruptArtifact(f"cannot read run file {file}: {one_line(err)} (rerun `make datagen`: it generates "
                                  "a damaged run again)") from None
        if len(frame):  # a run that diverged in its first cycle has no points
            frames.append(validate_points(frame, file))
    if not frames:
        raise DataError(f"every run under {input_dir} is empty")
    return pd.concat(frames, ignore_index=True)


def run_correction(cfg: DictConfig) -> Path:
    if cfg.rule not in RULES or cfg.last_point not in LAST_POINT or cfg.ties not in TIES:
        raise ConfigError(f"rule must be one of {RULES}, last_point one of {LAST_POINT} and ties one of {TIES}, "
                          f"got rule={cfg.rule} last_point={cfg.last_point} ties={cfg.ties}")
    points = correct_points(read_runs(Path(cfg.paths.datagen)), cfg.rule, cfg.last_point, cfg.ties)
    report = label_report(points)
    drivers = mix_drivers(points, generated_lr_ranges(Path(cfg.paths.datagen)))
    if cfg.paths.published_arc is not None:
        report["published_arc_agrees"] = published_agreement(points, cfg.paths.published_arc)
    out = Path(cfg.paths.dataset)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    atomic_write_parquet(out / "dataset.parquet", points)
    atomic_write(out / "report.csv", lambda tmp: report.to_csv(tmp))
    text = (f"label 0 raise, 1 keep, 2 decrease; rule={cfg.rule}, last_point={cfg.last_point}, ties={cfg.ties}\n"
            f"{report.to_string(float_format=lambda v: f'{v:.3f}')}\n\n"
            f"what the mix depends on (corrected labels, shares of each group's points)\n"
            f"{drivers.to_string(float_format=lambda v: f'{v:.3f}')}\n")
    if (equal_thirds := equal_thirds_raise(drivers)) is not None:
        text += f"raise share with the LR0 thirds weighted equally (log-uniform draws on average): {equal_thirds:.3f}\n"
    atomic_write_text(out / "report.txt", text)
    mark_done(out, {"points": len(points), "tasks": int(points.task.nunique()), "rule": cfg.rule,
                    "changed": float(report.loc["ALL", "changed"])})
    print(text + f"{len(points)} points from {points.task.nunique()} tasks -> {out / 'dataset.parquet'}", flush=True)
    return out


main = stage("correct")(run_correction)

if __name__ == "__main__":
    main()
