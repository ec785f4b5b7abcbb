"""The paper's figures, from run directories (epochs.parquet, log.txt, DONE) and the pipeline's other outputs.

Every function saves one figure as PNG and PDF (`formats`) and returns the paths, or returns [] when its data
hold nothing to plot. Each figure carries a title, axis labels with units and a legend, so it reads without the
paper. Metric values are shown as the tables print them (accuracy in %).

  Figs 3-5    curves(): per LR0 the median run's LR (top) and metric (bottom); SC and SLS in their own panel
  Fig 6       failures(): ARC runs where a raise of the LR was followed by a worse metric, decisions marked
  Fig 7       metric_study(): downstream best accuracy of the best-by-metric ARC models (App. A.1)
  Fig 8       proxy_scores(): proxy-task score per ARC candidate, the winner and the published model marked
  Fig 9       range_tests(): the LR range tests and the LRmax each picked (App. A.3)
  Figs 10-12  boxes(): the best value of every run per cell (App. A.4)
  Fig 13      arc_runs(): every ARC run of one cell (PTB at LR0 1.0, App. A.4)
  Fig 14      n_study(): best accuracy per ARC invocation frequency n (App. A.5)
  labels      label_mix(): the ARC training set's raise/keep/decrease mix per task, before and after correction
  decisions   arc_decisions(): each ARC model's predicted actions on held-out points beside their true labels, and
              the benchmark ARC rows' raise/keep/decrease calls per task and LR0 (decision_counts())
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from core.artifacts import read_parquet  # noqa: E402
from core.results import cell_runs  # noqa: E402
from figures.cells import base, ordered  # noqa: E402
from figures.paper import FORMATS, display, metric_unit, task_label, task_title  # noqa: E402

COLORS = {"constant": "#404040", "cd": "#1f77b4", "ccd": "#ff7f0e", "ed": "#2ca02c", "sc": "#9467bd",
          "sls": "#8c564b", "arc": "#d62728", "arc_published": "#e377c2", "plateau": "#17becf",
          "greedy": "#bcbd22", "schedulefree": "#7f7f7f", "prodigy": "#aec7e8"}
ACTIONS = {"raise": ("#d62728", "raise x1.618"), "keep": ("#9e9e9e", "keep x1"), "decrease": ("#1f77b4",
                                                                                             "decrease x0.618")}
CURVE_COLUMNS = ["epoch", "steps", "train_loss_mean", "eval_loss", "eval_metric", "lr", "seconds"]
EVAL = re.compile(r"^FastEstimator-Eval:.*?\bepoch:\s*(\d+)")


def color(schedule: str) -> str:
    if schedule in COLORS:
        return COLORS[schedule]
    if base(schedule) in COLORS and base(schedule) != schedule:
        return plt.cm.tab10(sum(map(ord, schedule)) % 10)
    return plt.cm.tab20(sum(map(ord, schedule)) % 20)


def scale_of(metric: str) -> float:
    return FORMATS.get(metric, (1.0, 4))[0]


def save(fig, stem: Path, formats, dpi: int = 110) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        path = stem.with_name(f"{stem.name}.{ext}")
        fig.savefig(path, dpi=dpi)
        paths.append(path)
    plt.close(fig)
    return paths


def load_curve(run_dir) -> pd.DataFrame:
    """A run's epochs.parquet with every column (NaN where the run did not record one)."""
    path = Path(run_dir) / "epochs.parquet"
    if not path.is_file():
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return read_parquet(path).reindex(columns=CURVE_COLUMNS)


def decisions(run_dir, curve: pd.DataFrame | None = None) -> list[tuple[int, float]]:
    """ARC's decisions as (epoch after whose eval it acted, factor): the `multiplying lr by` lines of log.txt,
    else the epoch-to-epoch LR ratios of 1.618 / 0.618 in epochs.parquet (keeps are then invisible)."""
    log = Path(run_dir) / "log.txt"
    found, epoch = [], 0
    if log.is_file():
        for line in log.read_text(errors="replace").splitlines():
            match = EVAL.match(line)
            if match:
                epoch = int(match.group(1))
            elif line.startswith("multiplying lr by"):
                try:
                    found.append((epoch, float(line.split()[-1])))
                except ValueError:
                    pass
        if found:
            return found
    curve = load_curve(run_dir) if curve is None else curve
    lr = curve.lr.to_numpy(dtype=float)
    for i in range(1, len(lr)):
        if lr[i - 1] > 0 and math.isfinite(lr[i]) and math.isfinite(lr[i - 1]):
            ratio = lr[i] / lr[i - 1]
            if abs(ratio - 1.618) < 0.01 or abs(ratio - 0.618) < 0.01:
                found.append((int(curve.epoch.iloc[i - 1]), round(ratio, 3)))
    return found


def action(factor: float) -> str:
    return "raise" if factor > 1.0001 else "decrease" if factor < 0.9999 else "keep"


def decision_counts(rows: pd.DataFrame, schedules=("arc", "arc_published")) -> pd.DataFrame:
    """One row per task, LR0 and ARC row (schedule): runs, and how many of their calls raised, kept and decreased
    the LR, summed over the cell's runs (decisions(): without `multiplying lr by` lines keeps are invisible)."""
    out = []
    for (task, lr0, schedule), cell in rows[rows.schedule.isin(schedules)].groupby(["task", "lr0", "schedule"]):
        counts = dict.fromkeys(ACTIONS, 0)
        for run_dir in cell.run_dir:
            for _, factor in decisions(run_dir):
                counts[action(factor)] += 1
        out.append({"task": task, "lr0": lr0, "schedule": schedule, "runs": len(cell), **counts})
    frame = pd.DataFrame(out, columns=["task", "lr0", "schedule", "runs", *ACTIONS])
    return frame.sort_values(["task", "lr0", "schedule"], ascending=[True, False, True], ignore_index=True)


def _mark_decisions(ax, made, legend: bool = False):
    seen = set()
    for epoch, factor in made:
        kind = action(factor)
        colour, label = ACTIONS[kind]
        ax.axvline(epoch + 0.5, color=colour, lw=0.9, ls=":", alpha=0.9,
                   label=label if legend and kind not in seen else None)
        seen.add(kind)


def _metric_axis(ax, metric: str, mode: str):
    ax.set_ylabel(metric_unit(metric))
    if mode == "min":
        ax.set_yscale("log")


def _lr_axis(ax, curve_lrs):
    ax.set_ylabel("learning rate")
    values = [v for lrs in curve_lrs for v in lrs if v is not None and math.isfinite(v) and v > 0]
    if values:
        ax.set_yscale("log")


def _legend(fig, axes, **kwargs):
    handles = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        fig.legend(handles.values(), handles.keys(), fontsize=8, **kwargs)


def median_run(group: pd.DataFrame, mode: str) -> pd.Series:
    """The run whose best value is the median of the cell, the better of the two middle runs for an even count:
    the run a curve of Figs 3-5 shows (docs/experiments.md §8.1 `median_logs`)."""
    ordered_runs = group.sort_values("best_metric", ascending=(mode == "min"), ignore_index=True)
    return ordered_runs.iloc[(len(ordered_runs) - 1) // 2]


def curves(rows: pd.DataFrame, task: str, grid: list[float], stem: Path, paper_rows, single_column,
           formats=("png", "pdf"), dpi: int = 110) -> list[Path]:
    """Figs 3-5: per LR0 column the median run of each of the paper's schedules (LR top, metric bottom); SC and
    SLS (one column each) in a last panel beside ARC at SC's LR0."""
    rows = rows[rows.task == task]
    if rows.empty:
        return []
    metric, mode = rows.metric.iloc[0], rows.metric_mode.iloc[0]
    scale = scale_of(metric)
    fixed = [s for s in ordered(rows.schedule.unique(), paper_rows) if s in paper_rows and s not in single_column]
    single = [s for s in ordered(rows.schedule.unique(), paper_rows) if s in paper_rows and s in single_column]
    panels = [(f"LR0 = {lr0:g}", [(s, lr0) for s in fixed]) for lr0 in grid]
    if single:
        sc_lr0 = rows[rows.schedule.isin(single)].lr0.dropna()
        ref_lr0 = sc_lr0.iloc[0] if len(sc_lr0) else (grid[0] if grid else None)
        extra = [(s, None) for s in single] + ([("arc", ref_lr0)] if "arc" in fixed and ref_lr0 is not None else [])
        panels.append((" and ".join(display(s) for s in single) + " (own LR0)", extra))
    fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 6.4), squeeze=False, sharex="col",
                             layout="constrained")
    for col, (name, members) in enumerate(panels):
        top, bottom = axes[0][col], axes[1][col]
        lrs = []
        for schedule, lr0 in members:
            group = rows[rows.schedule == schedule]
            if lr0 is not None:
                group = group[(group.lr0 - lr0).abs() <= 1e-9 * lr0]
            if group.empty:
                continue
            run = median_run(group, mode)
            curve = load_curve(run.run_dir)
            label = display(schedule) + ("" if lr0 is None or col < len(grid) else f" (LR0 {lr0:g})")
            style = dict(color=color(schedule), lw=2.2 if schedule == "arc" else 1.2, label=label,
                         ls=":" if (col >= len(grid) and schedule == "arc") else "-")
            if curve.lr.notna().any():
                top.plot(curve.epoch, curve.lr, drawstyle="steps-mid", **style)
                lrs.append(curve.lr.tolist())
            bottom.plot(curve.epoch, curve.eval_metric * scale, **style)
        top.set_title(name)
        _lr_axis(top, lrs)
        if not lrs:
            top.text(0.5, 0.5, "no LR recorded", ha="center", va="center", transform=top.transAxes)
        _metric_axis(bottom, metric, mode)
        bottom.set_xlabel("epoch")
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
        top.grid(alpha=0.3)
        bottom.grid(alpha=0.3)
    fig.suptitle(f"{task_title(task)}: the median run of each schedule (LR above, eval {metric} below)")
    _legend(fig, axes, loc="outside right center")
    return save(fig, stem, formats, dpi)


def boxes(rows: pd.DataFrame, task: str, grid: list[float], stem: Path, paper_rows, formats=("png", "pdf"),
          dpi: int = 110) -> list[Path]:
    """Figs 10-12: per LR0 column, the best value of every run of each schedule (box: quartiles; line: median)."""
    rows = rows[rows.task == task]
    if rows.empty or not grid:
        return []
    metric, mode = rows.metric.iloc[0], rows.metric_mode.iloc[0]
    scale = scale_of(metric)
    schedules = ordered(rows.schedule.unique(), paper_rows)
    fig, axes = plt.subplots(1, len(grid), figsize=(max(4.5, 0.55 * len(schedules)) * len(grid), 4.6),
                             squeeze=False, layout="constrained")
    rng = np.random.default_rng(0)
    for ax, lr0 in zip(axes[0], grid):
        data, labels, colours = [], [], []
        for schedule in schedules:
            runs = cell_runs(rows, schedule, lr0)
            values = [v * scale for v in runs if math.isfinite(v)]
            if values:
                data.append(values)
                labels.append(display(schedule))
                colours.append(color(schedule))
        if not data:
            continue
        parts = ax.boxplot(data, patch_artist=True, widths=0.6, showfliers=False, medianprops={"color": "black"})
        for patch, colour in zip(parts["boxes"], colours):
            patch.set_facecolor(colour)
            patch.set_alpha(0.45)
        for i, values in enumerate(data, 1):
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=10, color="black", zorder=3)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=60, ha="right", fontsize=8)
        ax.set_title(f"LR0 = {lr0:g}")
        _metric_axis(ax, metric, mode)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{task_title(task)}: best eval {metric} of every run (box: quartiles, line: median, "
                 "dots: runs)")
    return save(fig, stem, formats, dpi)


def failure_runs(rows: pd.DataFrame, reference: str = "arc") -> pd.DataFrame:
    """ARC runs in which a raise was followed by a worse metric: the best eval of the epochs up to the next
    decision (or the end) is worse than the eval at the raise. `drop` = the largest such relative loss."""
    found = []
    for row in rows[rows.schedule == reference].itertuples():
        curve = load_curve(row.run_dir)
        if curve.empty:
            continue
        made = decisions(row.run_dir, curve)
        values = dict(zip(curve.epoch.astype(int), curve.eval_metric.astype(float)))
        worst, at = 0.0, None
        for i, (epoch, factor) in enumerate(made):
            if action(factor) != "raise" or epoch not in values or not math.isfinite(values[epoch]):
                continue
            end = made[i + 1][0] if i + 1 < len(made) else max(values)
            after = [values[e] for e in range(epoch + 1, end + 1) if e in values]
            after = [v for v in after if not math.isnan(v)]
            if not after:
                continue
            before = values[epoch]
            best_after = max(after) if row.metric_mode == "max" else min(after)
            loss = (before - best_after) if row.metric_mode == "max" else (best_after - before)
            relative = loss / abs(before) if before else loss
            if relative > worst:
                worst, at = relative, epoch
        if at is not None:
            found.append({"run_dir": row.run_dir, "task": row.task, "lr0": row.lr0, "seed": row.seed,
                          "metric": row.metric, "metric_mode": row.metric_mode, "best_metric": row.best_metric,
                          "drop": worst, "raise_epoch": at, "decisions": made})
    return pd.DataFrame(found).sort_values("drop", ascending=False) if found else pd.DataFrame()


def _run_panel(ax, run, curve, made, scale, title: str):
    ax.plot(curve.epoch, curve.eval_metric * scale, color="black", lw=1.6, label=f"eval {run.metric}")
    _metric_axis(ax, run.metric, run.metric_mode)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _mark_decisions(ax, made, legend=True)
    if curve.lr.notna().any():
        twin = ax.twinx()
        twin.plot(curve.epoch, curve.lr, color="#d62728", lw=1.0, ls="--", drawstyle="steps-mid",
                  label="learning rate (per epoch)")
        twin.set_yscale("log")
        twin.set_ylabel("learning rate", color="#d62728")
        handles = ax.get_legend_handles_labels()
        extra = twin.get_legend_handles_labels()
        ax.legend(handles[0] + extra[0], handles[1] + extra[1], fontsize=7, loc="best")
    else:
        ax.legend(fontsize=7, loc="best")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


def failures(rows: pd.DataFrame, stem: Path, limit: int = 6, reference: str = "arc", formats=("png", "pdf"),
             dpi: int = 110) -> list[Path]:
    """Fig 6: the ARC runs whose raise of the LR was followed by a worse metric (largest relative loss first),
    with every decision marked."""
    runs = failure_runs(rows, reference)
    if runs.empty:
        return _no_failures(rows, stem, limit, reference, formats, dpi)
    runs = runs.head(limit)
    cols = min(3, len(runs))
    nrows = math.ceil(len(runs) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(6.0 * cols, 4.0 * nrows), squeeze=False, layout="constrained")
    for ax, run in zip(np.ravel(axes), runs.itertuples()):
        curve = load_curve(run.run_dir)
        scale = scale_of(run.metric)
        _run_panel(ax, run, curve, run.decisions, scale,
                   f"{task_label(run.task)}, LR0 {run.lr0:g}, seed {run.seed}:\nraise after epoch {run.raise_epoch}, "
                   f"{100 * run.drop:.3g}% worse before the next decision")
    for ax in np.ravel(axes)[len(runs):]:
        ax.axis("off")
    fig.suptitle("ARC failure modes: runs where raising the LR was followed by a worse eval metric "
                 "(dotted lines: ARC's decisions)")
    return save(fig, stem, formats, dpi)


def _no_failures(rows: pd.DataFrame, stem: Path, limit: int, reference: str, formats, dpi: int) -> list[Path]:
    """Fig 6 when no ARC run raised and then got worse: says so, with the counts, and shows the ARC runs with the
    most raises (every raise followed by an equal or better metric). Nothing when there are no ARC runs."""
    mine = rows[rows.schedule == reference]
    if mine.empty:
        return []
    made = {row.run_dir: decisions(row.run_dir, load_curve(row.run_dir)) for row in mine.itertuples()}
    raises = {run: sum(action(f) == "raise" for _, f in found) for run, found in made.items()}
    summary = (f"No {reference} run raised the LR and then got worse.\n{len(mine)} {reference} run(s), "
               f"{sum(raises.values())} raise(s) in all, each followed by an equal or better eval metric "
               f"before the next decision.")
    shown = [row for row in mine.itertuples() if raises[row.run_dir]]
    shown = sorted(shown, key=lambda row: (-raises[row.run_dir], row.task, row.lr0, row.seed))[:limit]
    cols = max(1, min(3, len(shown)))
    nrows = 1 + math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(max(8.0, 5.2 * cols), 1.4 + 3.8 * (nrows - 1)), squeeze=False,
                             layout="constrained", height_ratios=[0.35] + [1] * (nrows - 1))
    for ax in axes[0]:
        ax.axis("off")
    axes[0][0].text(0, 0.5, summary, fontsize=10, va="center", wrap=True)
    for ax, run in zip(np.ravel(axes[1:]), shown):
        _run_panel(ax, run, load_curve(run.run_dir), made[run.run_dir], scale_of(run.metric),
                   f"{task_label(run.task)}, LR0 {run.lr0:g}, seed {run.seed}:\n{raises[run.run_dir]} raise(s), none "
                   f"followed by a worse metric")
    for ax in np.ravel(axes[1:])[len(shown):]:
        ax.axis("off")
    fig.suptitle("ARC failure modes: none in these runs" + ("\n(the runs with the most raises)" if shown else ""))
    return save(fig, stem, formats, dpi)


def arc_runs(rows: pd.DataFrame, task: str, lr0: float, stem: Path, reference: str = "arc",
             formats=("png", "pdf"), dpi: int = 110) -> list[Path]:
    """Fig 13: every ARC run of one cell, metric (top) and LR (bottom), with ARC's decisions."""
    mine = rows[(rows.task == task) & (rows.schedule == reference)]
    mine = mine[(mine.lr0 - lr0).abs() <= 1e-9 * lr0]
    if mine.empty:
        return []
    metric, mode = mine.metric.iloc[0], mine.metric_mode.iloc[0]
    scale = scale_of(metric)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.4), sharex=True, layout="constrained")
    for i, run in enumerate(mine.sort_values("seed").itertuples()):
        curve = load_curve(run.run_dir)
        colour = plt.cm.tab10(i % 10)
        label = f"seed {run.seed} (best {run.best_metric * scale:.{FORMATS.get(metric, (1, 4))[1]}f})"
        top.plot(curve.epoch, curve.eval_metric * scale, color=colour, lw=1.3, label=label)
        if curve.lr.notna().any():
            bottom.plot(curve.epoch, curve.lr, color=colour, lw=1.3, drawstyle="steps-mid")
        for epoch, factor in decisions(run.run_dir, curve):
            if action(factor) != "keep" and epoch in set(curve.epoch):
                y = curve.lr[curve.epoch == epoch].iloc[0]
                bottom.scatter([epoch + 0.5], [y], marker="^" if factor > 1 else "v", color=colour, s=22)
    _metric_axis(top, metric, mode)
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    bottom.set_yscale("log")
    bottom.set_ylabel("learning rate (markers: ARC raises ^ / decreases v)")
    bottom.set_xlabel("epoch")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.grid(alpha=0.3)
    fig.suptitle(f"{task_title(task)}, ARC at LR0 = {lr0:g}: every run")
    return save(fig, stem, formats, dpi)


def range_tests(range_dir: Path, stem: Path, sc_lr0: dict | None = None, formats=("png", "pdf"),
                dpi: int = 110) -> list[Path]:
    """Fig 9: each task's LR range test (eval value against the LR of the ramp) and the LRmax it picked."""
    from core.artifacts import read_done
    from core.runs import finished_runs

    tests = finished_runs(range_dir, "*")
    if tests.empty:
        return []
    fig, axes = plt.subplots(1, len(tests), figsize=(4.6 * len(tests), 4.0), squeeze=False, layout="constrained")
    for ax, test in zip(axes[0], tests.itertuples()):
        done = read_done(test.run_dir)
        curve = load_curve(test.run_dir)
        criterion = done.get("criterion", "metric")
        metric = done.get("metric", "metric")
        if criterion == "loss":
            ax.plot(curve.lr, curve.eval_loss, marker=".", color="black", label="eval loss (minimised)")
            ax.set_ylabel("eval loss")
        else:
            ax.plot(curve.lr, curve.eval_metric * scale_of(metric), marker=".", color="black",
                    label=f"eval {metric} ({'max' if done.get('metric_mode') == 'max' else 'min'}imised)")
            ax.set_ylabel(metric_unit(metric))
            if done.get("metric_mode") == "min":
                ax.set_yscale("log")
        lr_max = done.get("lr_max")
        if lr_max is not None:
            ax.axvline(lr_max, color="#9467bd", ls="--", label=f"LRmax = {lr_max:.4g}")
        own = (sc_lr0 or {}).get(done.get("task"))
        if own is not None and lr_max:
            ax.axvline(own, color="#2ca02c", ls=":", label=f"SC's LR0 = LRmax / f = {own:.4g}")
        ax.set_xlabel("learning rate (linear ramp from 0)")
        ax.set_title(task_label(str(done.get('task', Path(test.run_dir).name))))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("LR range tests: the LR at the best eval is SC's LRmax")
    return save(fig, stem, formats, dpi)


def selection_roles(scores: pd.DataFrame, done: dict | None) -> tuple[list[str], list[bool], list[bool]]:
    """(label, is the selected one, is the published model) per row of scores.csv, whichever of its layouts:
    `candidate` a directory name, or a candidate id beside `run` (the directory) and `published`."""
    done = done or {}
    labels, selected, published = [], [], []
    for row in scores.to_dict("records"):
        name, run = str(row.get("candidate")), row.get("run")
        labels.append(f"c{name} {run}" if isinstance(run, str) and run != name and name.isdigit() else
                      str(run) if isinstance(run, str) else name)
        pub = bool(row.get("published")) if not pd.isna(row.get("published", math.nan)) else False
        published.append(pub or "published" in name.lower())
        winner = done.get("winner")
        selected.append(winner is not None and winner in (name, run)
                        or ("candidate" in done and str(done["candidate"]) == name and winner is None))
    return labels, selected, published


def proxy_scores(scores: pd.DataFrame, done: dict | None, stem: Path, formats=("png", "pdf"),
                 dpi: int = 110) -> list[Path]:
    """Fig 8: each ARC candidate's proxy score (mean best eval accuracy), its per-LR0 means, the selected
    candidate and the published model's row."""
    if scores.empty or "score" not in scores:
        return []
    scores = scores.sort_values("score", ascending=True, ignore_index=True)
    labels, selected, published = selection_roles(scores, done)
    per_lr = {}
    for column in scores.columns:
        match = re.match(r"best_lr(.+)_r\d+$", column)
        if match:
            per_lr.setdefault(match.group(1), []).append(column)
    fig, ax = plt.subplots(figsize=(8.5, 0.42 * len(scores) + 2.4), layout="constrained")
    y = np.arange(len(scores))
    colours = ["#e377c2" if p else "#d62728" if s else "#9ecae1" for s, p in zip(selected, published)]
    ax.barh(y, scores.score * 100, color=colours, label="score: mean over LR0s and repeats")
    markers = iter("osD^v<>")
    for lr, columns in per_lr.items():
        ax.scatter(scores[columns].mean(axis=1) * 100, y, marker=next(markers, "o"), facecolor="white",
                   edgecolor="black", s=24, zorder=3, label=f"mean at LR0 {lr}")
    labels = [f"{n}  (selected)" if s else f"{n}  (published)" if p else n
              for n, s, p in zip(labels, selected, published)]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("best eval accuracy on the proxy task (%)")
    ax.set_title("Proxy-task score of each ARC candidate\n(red: the selected one; pink: the published model)")
    fig.legend(fontsize=8, loc="outside lower center", ncol=2)
    ax.grid(axis="x", alpha=0.3)
    return save(fig, stem, formats, dpi)


def _grouped_boxes(ax, groups: list[tuple[str, list[float]]], colours):
    data = [g[1] for g in groups]
    parts = ax.boxplot(data, patch_artist=True, widths=0.6, showfliers=False, medianprops={"color": "black"})
    for patch, colour in zip(parts["boxes"], colours):
        patch.set_facecolor(colour)
        patch.set_alpha(0.5)
    rng = np.random.default_rng(0)
    for i, values in enumerate(data, 1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=8, color="black", zorder=3)
    ax.set_xticks(range(1, len(groups) + 1), [g[0] for g in groups], rotation=45, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def metric_study(rows: pd.DataFrame, bench: pd.DataFrame | None, stem: Path, formats=("png", "pdf"),
                 dpi: int = 110) -> list[Path]:
    """Fig 7: per LR0, downstream best accuracy of the ARC models kept by each held-out metric (all candidates
    pooled), beside the proxy-selected ARC of the benchmark."""
    if rows.empty or "arc_model_file" not in rows:
        return []
    task = rows.task.iloc[0]
    metric, mode = rows.metric.iloc[0], rows.metric_mode.iloc[0]
    scale = scale_of(metric)
    grid = sorted(rows.lr0.dropna().unique(), reverse=True)
    files = list(dict.fromkeys(rows.arc_model_file.dropna()))
    fig, axes = plt.subplots(1, len(grid), figsize=(4.8 * len(grid), 4.4), squeeze=False, layout="constrained")
    for ax, lr0 in zip(axes[0], grid):
        groups, colours = [], []
        for i, name in enumerate(files):
            values = rows[(rows.arc_model_file == name) & (rows.lr0 == lr0)].best_metric
            values = [v * scale for v in values if math.isfinite(v)]
            if values:
                groups.append(("final model" if name == "arc" else name.replace("best_", "best "), values))
                colours.append(plt.cm.tab10(i % 10))
        if bench is not None and not bench.empty:
            sel = bench[(bench.task == task) & (bench.schedule == "arc") & ((bench.lr0 - lr0).abs() <= 1e-9 * lr0)]
            values = [v * scale for v in sel.best_metric if math.isfinite(v)]
            if values:
                groups.append(("proxy-selected (benchmark)", values))
                colours.append("#d62728")
        if groups:
            _grouped_boxes(ax, groups, colours)
        ax.set_title(f"LR0 = {lr0:g}")
        _metric_axis(ax, metric, mode)
    fig.suptitle(f"Metric study on {task_label(task)}: which held-out metric picks a good ARC model (box: runs of all "
                 "candidates)")
    return save(fig, stem, formats, dpi)


def n_study(rows: pd.DataFrame, stem: Path, formats=("png", "pdf"), dpi: int = 110) -> list[Path]:
    """Fig 14: per LR0, best accuracy of ARC invoked every n epochs."""
    if rows.empty or rows.frequency.isna().all():
        return []
    task = rows.task.iloc[0]
    metric, mode = rows.metric.iloc[0], rows.metric_mode.iloc[0]
    scale = scale_of(metric)
    grid = sorted(rows.lr0.dropna().unique(), reverse=True)
    ns = sorted(int(n) for n in rows.frequency.dropna().unique())
    fig, axes = plt.subplots(1, len(grid), figsize=(4.6 * len(grid), 4.2), squeeze=False, layout="constrained")
    for ax, lr0 in zip(axes[0], grid):
        groups, colours = [], []
        for n in ns:
            values = rows[(rows.frequency == n) & (rows.lr0 == lr0)].best_metric
            values = [v * scale for v in values if math.isfinite(v)]
            if values:
                groups.append((f"n = {n}", values))
                colours.append("#d62728" if n == 3 else "#9ecae1")
        if groups:
            _grouped_boxes(ax, groups, colours)
        ax.set_title(f"LR0 = {lr0:g}")
        ax.set_xlabel("ARC invoked every n epochs (paper: n = 3)")
        _metric_axis(ax, metric, mode)
    fig.suptitle(f"Invocation frequency on {task_label(task)}: best eval {metric} per run")
    return save(fig, stem, formats, dpi)


def label_mix(report: pd.DataFrame, stem: Path, formats=("png", "pdf"), dpi: int = 110) -> list[Path]:
    """The ARC training set's label mix per source task, before (raw) and after ground-truth correction."""
    needed = [f"{kind}_{i}" for kind in ("raw", "corrected") for i in range(3)]
    if report.empty or any(c not in report for c in needed):
        return []
    report = report.set_index("task").rename(index={"ALL": "all tasks"})
    tasks = list(report.index)
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(tasks) + 1.8), layout="constrained")
    names = [("raise (x1.618)", "#d62728"), ("keep (x1)", "#9e9e9e"), ("decrease (x0.618)", "#1f77b4")]
    y = np.arange(len(tasks))
    for offset, kind, hatch in ((-0.2, "raw", ""), (0.2, "corrected", "//")):
        counts = report[[f"{kind}_{i}" for i in range(3)]].to_numpy(dtype=float)
        fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        left = np.zeros(len(tasks))
        for i, (name, colour) in enumerate(names):
            ax.barh(y + offset, fractions[:, i], left=left, height=0.38, color=colour, hatch=hatch,
                    edgecolor="white", label=f"{name}, {'before' if kind == 'raw' else 'after'} correction")
            left += fractions[:, i]
    ax.set_yticks(y, [f"{t} ({int(report.loc[t, 'points'])} points)" if "points" in report else t for t in tasks],
                  fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("fraction of the task's ARC training points")
    ax.set_xlim(0, 1)
    ax.set_title("ARC training set: label mix per source task\n(plain bar: before, hatched bar: after the "
                 "ground-truth correction)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    return save(fig, stem, formats, dpi)


def _share_bars(ax, labels: list[str], shares: np.ndarray, hatches: list[str], notes: list[str]):
    """Horizontal bars of raise / keep / decrease shares (rows of `shares`), top to bottom, with a note at the right
    of each (the decrease count, so that a model that never lowers the LR reads at a glance)."""
    y = np.arange(len(labels))
    left = np.zeros(len(labels))
    for k, (colour, name) in enumerate(ACTIONS.values()):
        ax.barh(y, shares[:, k], left=left, color=colour, edgecolor="white", label=name)
        for i, hatch in enumerate(hatches):
            if hatch:
                ax.barh(y[i], shares[i, k], left=left[i], color="none", hatch=hatch, edgecolor="white", lw=0)
        left += shares[:, k]
    for i, note in enumerate(notes):
        ax.text(1.01, y[i], note, va="center", fontsize=7, transform=ax.get_yaxis_transform())
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()


def arc_decisions(heldout: pd.DataFrame, counts: pd.DataFrame, stem: Path, formats=("png", "pdf"),
                  dpi: int = 110) -> list[Path]:
    """Left: per ARC model, the share of held-out points it predicts as raise / keep / decrease (plain bars) and the
    true label mix of those points (hatched; one bar when all share one mix, as models scored on the same points
    do), from figures.decisions' table (CONFUSION_COLUMNS). Right: the benchmark ARC rows' calls per task and LR0
    (decision_counts()). Either panel is left out without its data."""
    from arc_model.metrics import matrix_of

    panels = [p for p, frame in (("heldout", heldout), ("bench", counts)) if frame is not None and not frame.empty]
    if not panels:
        return []
    height = max(len(heldout) * 2 if "heldout" in panels else 0, len(counts) if "bench" in panels else 0, 3)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 0.28 * height + 2.2), layout="constrained",
                             squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "heldout":
            matrices = [(row["model"], matrix_of(row)) for row in heldout.to_dict("records")]
            one_set = len({tuple(cm.sum(axis=1)) for _, cm in matrices}) == 1  # one true label mix
            labels, shares, hatches, notes = [], [], [], []
            for i, (model, cm) in enumerate(matrices):
                if i == 0 or not one_set:
                    labels.append("true labels" if one_set else f"{model}: true labels")
                    shares.append(cm.sum(axis=1) / cm.sum())
                    hatches.append("//")
                    notes.append(f"{int(cm[2].sum())} decrease of {int(cm.sum())}")
                labels.append(f"{model}: predicted" if not one_set else model)
                shares.append(cm.sum(axis=0) / cm.sum())
                hatches.append("")
                notes.append(f"{int(cm[:, 2].sum())} decrease of {int(cm.sum())}")
            _share_bars(ax, labels, np.array(shares), hatches, notes)
            ax.set_xlabel("share of the held-out points")
            ax.set_title("ARC on held-out points of its training data\n(plain: predicted, hatched: true label)")
        else:
            labels = [f"{task_label(r['task'])}, LR0 {r['lr0']:g}, {display(r['schedule'])} ({r['runs']} runs)"
                      for r in counts.to_dict("records")]
            calls = counts[list(ACTIONS)].to_numpy(dtype=float)
            shares = calls / np.maximum(calls.sum(axis=1, keepdims=True), 1)
            notes = [f"{int(c[2])} decrease of {int(c.sum())} calls" for c in calls]
            _share_bars(ax, labels, shares, [""] * len(labels), notes)
            ax.set_xlabel("share of ARC's calls in the benchmark runs")
            ax.set_title("ARC's calls in the benchmark runs, per task and LR0")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles[:3], names[:3], fontsize=8, loc="outside lower center", ncol=3)
    fig.suptitle("Does ARC ever lower the LR? raise x1.618 / keep x1 / decrease x0.618")
    return save(fig, stem, formats, dpi)
