"""A Hydra callback (configs/hydra/default.yaml) that ends every stage with one line of wall time.

In the launching process it times the whole stage (a single run, or a multirun however its jobs are launched)
and appends {"stage", "seconds", "jobs", "finished"} to ${paths.artifacts}/logs/stage_times.jsonl, which the
report reads (figures). Nothing is written when the stage fails before its first job (bad input).
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

LAUNCHED: dict[str, Any] = {}  # {"config": the launching process's config}, for core.runs.report_lost_workers


class StageTimer(Callback):
    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.jobs = 0

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.start = time.perf_counter()
        LAUNCHED["config"] = config

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.start = time.perf_counter()
        LAUNCHED["config"] = config

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        self.jobs += 1  # jobs of the basic launcher run in this process; joblib's are counted at the end

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._record(config, jobs=1)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._record(config, jobs=None)

    def _record(self, config: DictConfig, jobs: int | None) -> None:
        seconds = time.perf_counter() - self.start
        stage = config.hydra.job.config_name
        print(f"{stage}: stage finished in {seconds:.1f} s", flush=True)
        try:
            artifacts = Path(config.paths.artifacts)
        except Exception:  # a primary config without the paths group
            return
        if not artifacts.is_dir():  # the stage wrote nothing (e.g. every job skipped or failed on bad input)
            return
        logs = artifacts / "logs"
        logs.mkdir(exist_ok=True)
        entry = {"stage": stage, "seconds": round(seconds, 2), "jobs": jobs or self.jobs or None,
                 "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with open(logs / "stage_times.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")
