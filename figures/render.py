"""Tables 2-4 and the median-run curves of Figs 3-5, rendered from the benchmark's result rows.

Table cells follow the authors' analyze_txt.py (docs/experiments.md §8.1) through core.results: per (schedule, LR0) the median
over seeds of each run's best eval value; accuracy is printed x100 with 2 decimals, perplexity with 1, mAP with 4.
`*` marks the best median in a column; `#` marks a schedule whose runs differ from ARC's in that column
by Student's t-test (scipy.stats.ttest_ind, equal variances, two-sided) at p < 0.05. LR-free methods
(SLS, Prodigy) are repeated across columns and SC sits in the column of its own LR0, as in the paper.
The curves show, per LR0, the run whose best equals the median (docs/experiments.md §8.1 `median_logs`).
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import ttest_ind  # noqa: E402

from core.results import cell_runs, lr0_columns  # noqa: E402
from figures.paper import FORMATS, task_label  # noqa: E402


def paper_table(rows: pd.DataFrame, task: str, reference: str = "arc", alpha: float = 0.05) -> pd.DataFrame:
    """Formatted cells with `*` (best median of the column) and `#` (t-test vs `reference`, p < alpha)."""
    rows = rows[rows.task == task]
    metric, mode = rows.metric.iloc[0], rows.metric_mode.iloc[0]
    scale, decimals = FORMATS.get(metric, (1.0, 4))
    columns = lr0_columns(rows)
    schedules = sorted(rows.schedule.unique(), key=lambda s: (s != reference, s))
    medians = pd.DataFrame({lr0: {s: cell_runs(rows, s, lr0).median() for s in schedules} for lr0 in columns})
    table = pd.DataFrame(index=schedules, columns=[f"{lr0:g}" for lr0 in columns], dtype=object)
    for lr0 in columns:
        column = medians[lr0].dropna()
        best = column.max() if mode == "max" else column.min()
        ref = cell_runs(rows, reference, lr0)
        for schedule in schedules:
            value = medians.at[schedule, lr0]
            if pd.isna(value):
                table.at[schedule, f"{lr0:g}"] = ""
                continue
            text = f"{value * scale:.{decimals}f}" + ("*" if value == best else "")
            runs = cell_runs(rows, schedule, lr0)
            if schedule != reference and len(ref) > 1 and len(runs) > 1:
                p = ttest_ind(ref, runs).pvalue
                text += "#" if (not math.isnan(p) and p < alpha) else ""
            table.at[schedule, f"{lr0:g}"] = text
    return table


def to_markdown(table: pd.DataFrame, title: str) -> str:
    header = "| schedule | " + " | ".join(f"LR0 {c}" for c in table.columns) + " |"
    lines = [f"### {title}", "", header, "|" + "---|" * (len(table.columns) + 1)]
    lines += [f"| {s} | " + " | ".join(table.loc[s]) + " |" for s in table.index]
    return "\n".join(lines) + "\n"


def median_run(group: pd.DataFrame, mode: str) -> pd.Series:
    """The run whose best value is the median (the lower middle one for an even count)."""
    ordered = group.sort_values("best_metric", ascending=(mode == "min"), ignore_index=True)
    return ordered.iloc[(len(ordered) - 1) // 2]


def plot_curves(rows: pd.DataFrame, task: str, path: Path) -> Path:
    """Eval metric per epoch of each schedule's median run, one panel per LR0."""
    rows = rows[(rows.task == task) & rows.lr0.notna()]
    metric, mode = rows.metric.iloc[0], rows.metric_mode.iloc[0]
    columns = lr0_columns(rows)
    colors = {s: plt.cm.tab20(i % 20) for i, s in enumerate(sorted(rows.schedule.unique()))}
    fig, axes = plt.subplots(1, len(columns), figsize=(4.5 * len(columns), 3.6), squeeze=False)
    for ax, lr0 in zip(axes[0], columns):
        for schedule, group in rows[rows.lr0 == lr0].groupby("schedule"):
            run = median_run(group, mode)
            curve = pd.read_parquet(Path(run.run_dir) / "epochs.parquet")
            ax.plot(curve.epoch, curve.eval_metric, label=schedule, color=colors[schedule],
                    lw=2.2 if schedule == "arc" else 1.0)
        ax.set(title=f"{task_label(task)}, LR0 {lr0:g}", xlabel="epoch", ylabel=metric)
        if mode == "min":
            ax.set_yscale("log")
    handles = {label: h for ax in axes[0] for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="center right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
