"""`python -m arc_model.candidates profile=mini`: the finished candidates' held-out metrics as one table.

Reads every finished candidate under ${paths.candidates}/ (core.runs.finished_runs), writes
${paths.candidates}/candidates.csv and prints it. Metrics are those of the final model.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

import arc_model.config  # noqa: F401  (registers the schema)
from core.artifacts import atomic_write
from core.cli import stage
from core.errors import DataError
from core.runs import finished_runs


def candidate_table(candidates_dir: Path) -> pd.DataFrame:
    runs = finished_runs(candidates_dir)
    if runs.empty:
        raise DataError(f"no finished ARC candidates under {candidates_dir} (run `make train_arc` first)")
    table = pd.DataFrame([{"run": Path(r.run_dir).name, "data": r.data, "preprocessing": r.preprocessing,
                           "candidate": r.candidate, "epochs": r.epochs, **r.final, "seconds": r.seconds}
                          for r in runs.itertuples()])
    return table.sort_values(["data", "preprocessing", "candidate"], ignore_index=True)


def write_table(cfg: DictConfig) -> None:
    candidates_dir = Path(cfg.paths.candidates)
    table = candidate_table(candidates_dir)
    atomic_write(candidates_dir / "candidates.csv", lambda tmp: table.to_csv(tmp, index=False))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.drop(columns=["run"]).round(4).to_string(index=False))
    print(f"written: {candidates_dir / 'candidates.csv'}")


main = stage("train_arc")(write_table)

if __name__ == "__main__":
    main()
