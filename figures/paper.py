"""The paper's printed Tables 2-4 (figures/paper_values.csv, 57 cells) and how the paper names and numbers things."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

PAPER_VALUES = Path(__file__).with_name("paper_values.csv")
UNIT_SCALE = {"percent": 0.01, "fraction": 1.0, "perplexity": 1.0}  # printed unit -> the runs' unit

NAMES = {"constant": "BLR", "cd": "CD", "ccd": "CCD", "ed": "ED", "sc": "SC", "sls": "SLS", "arc": "ARC",
         "arc_published": "ARC (published)"}
TABLE_NUMBER = {"cifar10": 2, "mscoco": 3, "ptb": 4}  # paper Tables 2-4
CURVE_FIGURE = {"cifar10": 3, "mscoco": 4, "ptb": 5}  # median-run LR and metric, Figs 3-5
BOX_FIGURE = {"cifar10": 10, "mscoco": 11, "ptb": 12}  # every run per cell, Figs 10-12 (App. A.4)
TASK_TITLES = {"cifar10": "CIFAR10 image classification", "mscoco": "MSCOCO object detection",
               "ptb": "PTB language modelling"}
_STAND_INS: dict[str, str] = {}  # task -> its stand-in's name on smoke/mini (use_stand_ins)


def use_stand_ins(names: dict[str, str]) -> None:
    """Name these tasks by their stand-in (configs/bench_task/<task>.yaml sizes.<profile>.stand_in) in every table
    and figure this process renders; an empty dict restores the paper's names (the paper profile, FE logs)."""
    _STAND_INS.clear()
    _STAND_INS.update(names)


def task_label(task: str) -> str:
    """A task's name in tables: the stand-in's, e.g. `digits-resnet9 (CIFAR10 stand-in)`, or the task's own."""
    return _STAND_INS.get(task, task)


def task_title(task: str) -> str:
    """A task's name in figure titles: the stand-in's, or the paper's task, e.g. `CIFAR10 image classification`."""
    return _STAND_INS.get(task) or TASK_TITLES.get(task, task)


FORMATS = {"accuracy": (100.0, 2), "perplexity": (1.0, 1), "mAP": (1.0, 4)}  # metric -> (scale, decimals)
UNITS = {"accuracy": "accuracy (%)", "perplexity": "perplexity (lower is better)", "mAP": "mAP (COCO 0.5:0.95)"}


def display(schedule: str) -> str:
    """The paper's name of a schedule (BLR, CD, ...); other labels as they are."""
    return NAMES.get(schedule, schedule)


def metric_unit(metric: str) -> str:
    return UNITS.get(metric, metric)


def fmt(value: float, metric: str) -> str:
    """A value as the paper prints it: accuracy x100 with 2 decimals, mAP 4, perplexity 1."""
    scale, decimals = FORMATS.get(metric, (1.0, 4))
    return "" if pd.isna(value) else f"{value * scale:.{decimals}f}"


def paper_values() -> pd.DataFrame:
    """The 57 printed cells, with `value` in the runs' unit (accuracy as a fraction) beside the printed one."""
    table = pd.read_csv(PAPER_VALUES, comment="#")
    return table.assign(value=table.paper_value * table.unit.map(UNIT_SCALE))


def paper_value(table: pd.DataFrame, task: str, schedule: str, lr0: float) -> float:
    """The paper's cell in the runs' unit, or NaN."""
    hit = table[(table.task == task) & (table.schedule == schedule) & ((table.lr0 - lr0).abs() <= 1e-9 * lr0)]
    return float(hit.value.iloc[0]) if len(hit) else float("nan")
