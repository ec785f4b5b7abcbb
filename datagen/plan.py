"""`python -m datagen.plan profile=paper`: what generating the dataset costs, before running it (the datagen part of
`make plan`, pipeline.plan, which plans every stage).

Per task: runs, points (runs x points_per_run, fewer if runs diverge), training epochs and estimated GPU-hours.
A run with n epochs per cycle (its `frequency`) trains n (first step 1) + 3n per point (branches) + n per point
but the last (replicates) = 4 * points_per_run * n epochs. n is the run's actual draw (draws are deterministic, datagen.procedure),
and GPU-hours use each task's `epoch_minutes` estimate from configs/datagen_task/ [I].
"""
from __future__ import annotations

from pathlib import Path

import hydra
import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import datagen.config  # noqa: F401  (registers the schemas)
from core.cli import stage
from datagen.generate import lr_range, validate
from datagen.procedure import draw_run

TASK_DIR = Path(__file__).resolve().parents[1] / "configs" / "datagen_task"


def task_plan(cfg: DictConfig) -> dict:
    validate(cfg, will_train=False)  # planning needs no data and no GPU
    task = cfg.datagen_task
    ns = [draw_run(task.name, task.number, i, cfg.seed, list(cfg.optimizers), lr_range(cfg),
                   (cfg.frequency_min, cfg.frequency_max), cfg.lr0_distribution).frequency for i in range(cfg.runs)]
    epochs = sum(4 * cfg.points_per_run * n for n in ns)
    minutes = task.epoch_minutes
    return {"task": task.name, "number": task.number, "runs": cfg.runs, "points": cfg.runs * cfg.points_per_run,
            "mean_n": sum(ns) / len(ns),
            "epochs": epochs, "gpu_hours": epochs * minutes / 60 if minutes else float("nan")}


def plan(cfg: DictConfig) -> None:
    names = sorted(p.stem for p in TASK_DIR.glob("*.yaml"))
    overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith("datagen_task=")]
    rows = [task_plan(hydra.compose("datagen", overrides=overrides + [f"datagen_task={name}"])) for name in names]
    table = pd.DataFrame(rows).sort_values("number").set_index("task").drop(columns="number")
    table.loc["ALL"] = table.sum()
    table.loc["ALL", "mean_n"] = (table.epochs.iloc[:-1].sum() / (4 * cfg.points_per_run)) / table.runs.iloc[:-1].sum()
    print(f"profile={cfg.profile.name}: {len(rows)} tasks, 3 branches + 1 replicate per point")
    print(table.to_string(float_format=lambda v: f"{v:,.1f}"))
    print(f"plan_runs={int(table.loc['ALL', 'runs'])} plan_points={int(table.loc['ALL', 'points'])} "
          f"plan_epochs={int(table.loc['ALL', 'epochs'])} plan_gpu_hours={table.loc['ALL', 'gpu_hours']:.0f}")


main = stage("datagen")(plan)

if __name__ == "__main__":
    main()
