"""Schema of configs/figures.yaml (registered in Hydra's ConfigStore as `figures_schema`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from core.config import PathsConfig, ProfileConfig


@dataclass
class FELogsConfig:
    """How the authors' FastEstimator text logs map onto this code's tasks, schedules and LR0s
    (docs/experiments.md §7, §9; figures.fe_logs)."""

    tasks: Dict[str, str] = field(default_factory=dict)  # authors' task directory -> task name
    schedules: Dict[str, str] = field(default_factory=dict)  # authors' schedule in a file name -> schedule
    metrics: Dict[str, str] = field(default_factory=dict)  # task -> eval metric key (accuracy, mAP, perplexity)
    modes: Dict[str, str] = field(default_factory=dict)  # task -> max | min
    losses: Dict[str, str] = field(default_factory=dict)  # task -> train loss key (ce, total_loss)
    evals: Dict[str, int] = field(default_factory=dict)  # task -> Eval lines of a complete run
    lr0s: Dict[str, List[float]] = field(default_factory=dict)  # task -> the LR0 grid of its table
    meta_lr0: Dict[str, float] = field(default_factory=dict)  # task -> LR0 of meta_comparison SC/ARC runs
    runs: int = 5  # runs per cell (files <prefix>_<schedule>_0..runs-1.txt)


@dataclass
class FiguresConfig:
    profile: ProfileConfig = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    source: str = "runs"  # runs: ${paths.benchmark}/<study>/; fe_logs: the FastEstimator logs under logs_dir
    logs_dir: Optional[str] = None  # source=fe_logs: a directory holding normal_comparison/ and meta_comparison/
    study: str = "benchmark"  # ${paths.benchmark}/<study>/ to render (benchmark, n_study, metric_study)
    out_dir: Optional[str] = None  # default ${paths.figures}/<study> (source=runs) or ${paths.figures}/fe_logs
    reference: str = "arc"  # the schedule others are tested against
    alpha: float = 0.05
    paper_rows: List[str] = field(default_factory=list)  # the paper's seven rows, in its order
    optional: Dict[str, str] = field(default_factory=dict)  # schedule -> when it runs; none of its runs: a note
    paper_tasks: Optional[bool] = None  # fill paper_value: null = on the paper profile and for FE logs
    expected_seeds: Optional[List[int]] = None  # override the seeds the study's configs sweep
    experiment_configs: Optional[str] = None  # default: the repository's configs/experiment/
    ci_level: float = 0.95
    ci_resamples: int = 9999
    ci_seed: int = 0
    plots: bool = True  # false: tables, CSVs and REPORT.md only (the figures are the slow part)
    formats: List[str] = field(default_factory=lambda: ["png", "pdf"])
    dpi: int = 110
    supplementary: bool = True  # with study=benchmark: also Figs 7, 8, 9, 14, the label mix and REPORT.md
    failure_runs: int = 6  # Fig. 6: at most this many ARC runs
    fig13_task: str = "ptb"
    fig13_lr0: float = 1.0
    fe_logs: FELogsConfig = field(default_factory=FELogsConfig)


ConfigStore.instance().store(name="figures_schema", node=FiguresConfig)
