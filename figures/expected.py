"""The completeness gate: which runs a study's configs ask for, and which of them are missing or unfinished.

A study's runs are the Hydra sweeps of configs/experiment/*.yaml whose `study` is that study (the benchmark study
is Tables 2-4 plus the extended baselines). Each sweep gives, per task and schedule label (the label
core.results.study_rows gives a variant, e.g. `arc n=2`, `arc c1 best_mcc`), the seeds and LR0 columns it runs.
Schedules that train in one column only (SC, LR-free methods) are expected once, whatever the LR0 sweep.
An unfinished run is a run directory without DONE (interrupted, or still running), or for FastEstimator logs a log
with fewer Eval lines than a complete run has.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from core.artifacts import DONE_MARKER
from core.bench_run import RUN_NAME, study_experiments
from core.results import model_file_label
from core.sweep import as_dict, job_overrides

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class Expectation:
    seeds: tuple[int, ...]
    lr0s: tuple[float, ...] | None  # None: one column only (SC at its own LR0, LR-free methods)
    source: str  # the config that asks for these runs
    candidates: int = 1  # ARC candidates swept within the label: they pool into the cell, one run per seed each


def _override(defaults, group: str) -> list[str]:
    for item in defaults or []:
        if isinstance(item, dict) or OmegaConf.is_dict(item):
            for key, value in dict(item).items():
                if key.replace("override ", "").strip().lstrip("/") == group:
                    return [str(value)]
    return []


def labels_of(schedule: str, frequencies: list, candidates: list, model_files: list) -> list[str]:
    """The schedule labels core.results.study_rows gives the variants of one sweep."""
    labels = []
    for f, c, m in itertools.product(frequencies or [None], candidates or [None], model_files or [None]):
        label = schedule
        if f is not None and len(frequencies) > 1:
            label += f" n={f}"
        if m is not None and len(model_files) > 1:  # the candidate is not named: its runs pool into the cell
            label += f" {model_file_label(m)}"
        labels.append(label)
    return labels


def expected_runs(study: str, single_column: list[str], experiment_dir: str | Path | None = None,
                  seeds: list[int] | None = None) -> dict[str, dict[str, Expectation]]:
    """{task: {schedule label: Expectation}} from the study's sweeps in configs/experiment/, expanded by
    core.sweep as Hydra expands the benchmark's multirun (`seeds` replaces the sweep's seeds, as `seed=` would)."""
    experiment_dir = Path(experiment_dir) if experiment_dir else REPO_CONFIGS / "experiment"
    out: dict[str, dict[str, Expectation]] = {}
    for name in study_experiments(study, experiment_dir):
        node = OmegaConf.load(experiment_dir / f"{name}.yaml")
        params = OmegaConf.to_container(OmegaConf.select(node, "hydra.sweeper.params") or OmegaConf.create({}))
        jobs = [as_dict(j) for j in job_overrides(params, [f"seed={','.join(map(str, seeds))}"] if seeds else [])]

        def swept(key: str) -> list[str]:
            return list(dict.fromkeys(j[key] for j in jobs if key in j))

        tasks = swept("bench_task") or _override(node.get("defaults"), "bench_task")
        schedules = swept("schedule") or _override(node.get("defaults"), "schedule")
        run_seeds = tuple(int(s) for s in swept("seed") or ["0"])
        variants = [swept("schedule.frequency"), swept("arc_candidate"), swept("arc_model_file")]
        for task in tasks:
            lr0s = [float(v) for v in swept("lr0")]
            if not lr0s and swept("lr0_column"):
                grid = OmegaConf.load(experiment_dir.parent / "bench_task" / f"{task}.yaml").lr0s
                lr0s = [float(grid[int(c)]) for c in swept("lr0_column")]
            for schedule in schedules:
                columns = None if schedule in single_column else tuple(lr0s)
                for label in labels_of(schedule, *variants):
                    out.setdefault(task, {})[label] = Expectation(run_seeds, columns, f"configs/experiment/{name}.yaml",
                                                                  max(1, len(variants[1])))
    return out


def _label(schedule: str, config: dict, labels: set[str]) -> str:
    """An unfinished run's label, from its config.yaml, as study_rows would label it once finished."""
    frequency = (config.get("schedule") or {}).get("frequency")
    label = schedule
    if frequency is not None and any(lab.startswith(f"{schedule} n=") for lab in labels):
        label += f" n={frequency}"
    if config.get("arc_model_file") is not None and config.get("arc_candidate") is not None \
            and f"{label} {model_file_label(config['arc_model_file'])}" in labels:
        label += f" {model_file_label(config['arc_model_file'])}"
    return label


def unfinished_runs(study_dir: str | Path, expected: dict[str, dict[str, Expectation]] | None = None,
                    named: list[Path] | None = None) -> list[dict]:
    """Run directories <study>/<task>/<run>/ without DONE (of those in `named`, when given): task, schedule label,
    lr0, seed, name, why."""
    found = []
    wanted = None if named is None else {(Path(p).parent.name, Path(p).name) for p in named}
    for run_dir in sorted(Path(study_dir).glob("*/*")):
        if not run_dir.is_dir() or (run_dir / DONE_MARKER).exists():
            continue
        if wanted is not None and (run_dir.parent.name, run_dir.name) not in wanted:
            continue
        match = RUN_NAME.match(run_dir.name)
        if not match:
            continue
        config = {}
        if (run_dir / "config.yaml").is_file():
            try:
                config = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=False)
            except Exception:  # a half-written config: the name still says enough
                config = {}
        task = run_dir.parent.name
        labels = set((expected or {}).get(task, {}))
        lr = match["lr"]
        found.append({"task": task, "schedule": _label(match["schedule"], config, labels),
                      "lr0": None if lr == "free" else float(lr), "seed": int(match["seed"]), "name": run_dir.name,
                      "why": "no DONE (interrupted or still running)"})
    return found
