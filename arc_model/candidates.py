"""`python -m arc_model.candidates profile=mini`: the finished candidates' held-out metrics as one table.

Reads every DONE candidate under ${paths.artifacts}/train_arc/ (the multirun's outputs), writes
${paths.artifacts}/train_arc/candidates.csv and prints it. Metrics are those of the final model.
"""
from __future__ import annotations

from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig

import arc_model.config  # noqa: F401  (registers the schema)
from arc_model.train import STAGE
from core.artifacts import atomic_write, is_done, read_done
from core.errors import DataError, exit_on_user_error


def collect(stage_dir: Path) -> pd.DataFrame:
    rows = []
    for run in sorted(p for p in stage_dir.glob("*") if p.is_dir() and is_done(p)):
        summary = read_done(run)
        rows.append({"candidate": run.name, "data": summary["data"], "preprocessing": summary["preprocessing"],
                     "seed": summary["seed"], "epochs": summary["epochs"], **summary["final"],
                     "seconds": summary["seconds"]})
    if not rows:
        raise DataError(f"no finished ARC candidates under {stage_dir} (run `make train_arc` first)")
    return pd.DataFrame(rows).sort_values(["data", "preprocessing", "seed"], ignore_index=True)


@hydra.main(version_base="1.3", config_path="../configs", config_name="train_arc")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    stage_dir = Path(cfg.paths.artifacts) / STAGE
    table = collect(stage_dir)
    atomic_write(stage_dir / "candidates.csv", lambda tmp: table.to_csv(tmp, index=False))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.drop(columns=["candidate"]).round(4).to_string(index=False))
    print(f"written: {stage_dir / 'candidates.csv'}")


if __name__ == "__main__":
    main()
