"""`python -m arc_model.candidates profile=mini`: the finished candidates' held-out metrics and decisions as one table.

Reads every finished candidate under ${paths.candidates}/ (core.runs.finished_runs), writes
${paths.candidates}/candidates.csv and prints it. Metrics are those of the final model (its DONE row); beside
them, the same model's (arc.h5) decisions on the same held-out points: `held_out_points`, the confusion matrix
`cm_true_<a>_pred_<b>` (rows true label, columns predicted, docs/experiments.md §10.1) and the predicted shares
`pred_<a>` (arc_model.metrics.decision_columns).

`heldout_set` rebuilds a candidate's held-out points exactly as its training did (its config.yaml: data,
holdout split, preprocessing; arc_model.stage), and `heldout_decisions` scores any ARC weights file on them:
a candidate, the published arc.h5 or the selected one (the figures stage, figures.decisions).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

import arc_model.config  # noqa: F401  (registers the schema)
from arc_model.data import build_inputs, holdout_split
from arc_model.metrics import CONFUSION_COLUMNS, SHARE_COLUMNS, decision_columns
from arc_model.stage import load_data, run_dir
from arc_model.weights import load_keras_h5
from core.artifacts import atomic_write
from core.cli import stage
from core.errors import DataError, UserError, one_line
from core.runs import finished_runs

DECISION_COLUMNS = ["held_out_points", *CONFUSION_COLUMNS, *SHARE_COLUMNS]


@dataclass(frozen=True)
class HeldOut:
    """A candidate's held-out points: raw (to preprocess another way), labels, and inputs under `preprocessing`."""

    points: pd.DataFrame
    labels: np.ndarray
    inputs: np.ndarray
    preprocessing: str
    source: str  # what they are, for the report: file, fraction, split

    def preprocessed(self, preprocessing: str) -> "HeldOut":
        """The same points under another preprocessing (the published ARC reads FE's, `repo`)."""
        if preprocessing == self.preprocessing:
            return self
        return replace(self, inputs=build_inputs(self.points, preprocessing)[0], preprocessing=preprocessing)


def candidate_config(candidate_dir: Path) -> DictConfig:
    path = Path(candidate_dir) / "config.yaml"
    try:
        return OmegaConf.load(path)
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read the config of candidate {path.parent.name}: {one_line(err)}") from None


def heldout_set(candidate_dir: Path, fallback_data: str | None = None, trust_pickle: bool = False,
                cache: dict | None = None) -> HeldOut:
    """The held-out points of a finished candidate, rebuilt from its config.yaml as arc_model.stage built them.

    The data file is the config's data.path, else `fallback_data` (the artifacts moved); either must be the file
    the candidate trained on: the run directory's name holds a digest of its content (arc_model.stage.run_dir).
    A .pkl is unpickled only with `trust_pickle` from the command line, never because a config.yaml on disk says
    so. `cache` ({}) shares the loaded points between candidates. DataError says why there are no points."""
    cfg = candidate_config(candidate_dir)
    name = Path(candidate_dir).name
    if cfg.data.holdout <= 0:
        raise DataError("there are no held-out points: data.holdout=0, the candidates trained on every point "
                        "(docs/experiments.md §4.3)")
    cfg.data.trust_pickle = trust_pickle
    cache = {} if cache is None else cache
    tried = []
    for path in dict.fromkeys(p for p in (cfg.data.path, fallback_data) if p is not None):
        cfg.data.path = path
        key = ("points", path, cfg.data.synthetic_points, cfg.data.split_seed)
        if key not in cache:
            try:
                cache[key] = load_data(cfg)
            except UserError as err:
                tried.append(str(err))
                continue
        points, tag, digest = cache[key]
        try:
            same = run_dir(cfg, tag, digest).name == name
        except (KeyError, AttributeError):  # a config.yaml of an older layout
            same = False
        if not same:
            tried.append(f"{path} is not the data it trained on (its content or the candidate's config changed)")
            continue
        return _split(cfg, points, digest, cache)
    raise DataError("; ".join(tried))


def _split(cfg: DictConfig, points: pd.DataFrame, digest: str, cache: dict) -> HeldOut:
    data = cfg.data
    key = ("split", digest, data.holdout, data.split_seed, data.holdout_by_run, cfg.preprocessing)
    if key not in cache:
        _, held_idx = holdout_split(points, data.holdout, data.split_seed, data.holdout_by_run)
        held = points.iloc[held_idx].reset_index(drop=True)
        inputs, labels = build_inputs(held, cfg.preprocessing)  # per point, so the subset's inputs are the same
        where = f"{data.synthetic_points} SYNTHETIC points" if data.synthetic_points > 0 else Path(data.path).name
        source = (f"{len(held)} of {len(points)} points of {where} (data.holdout {data.holdout:g}, split seed "
                  f"{data.split_seed}, {'whole runs' if data.holdout_by_run else 'random points'})")
        cache[key] = HeldOut(held, labels, inputs, cfg.preprocessing, source)
    return cache[key]


@torch.no_grad()
def predict(weights: str | Path, inputs: np.ndarray) -> np.ndarray:
    """The action (0 raise, 1 keep, 2 decrease) an ARC weights file picks for each input: argmax, in batches of
    1024 as the candidates' own held-out scoring (arc_model.candidate_trainer.evaluate)."""
    model = load_keras_h5(weights).eval()
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    return torch.cat([model(x[i:i + 1024]) for i in range(0, len(x), 1024)]).argmax(1).numpy()


def heldout_decisions(weights: str | Path, held: HeldOut) -> dict:
    """DECISION_COLUMNS of one ARC weights file on held-out points."""
    return {"held_out_points": len(held.labels), **decision_columns(held.labels, predict(weights, held.inputs))}


def candidate_table(candidates_dir: Path, data_path: str | None = None, trust_pickle: bool = False) -> pd.DataFrame:
    """One row per finished candidate: its DONE row's metrics, then its decisions on its held-out points (empty,
    with one `skip:` line per reason, where there are none)."""
    runs = finished_runs(candidates_dir)
    if runs.empty:
        raise DataError(f"no finished ARC candidates under {candidates_dir} (run `make train_arc` first)")
    cache, skipped, rows = {}, {}, []
    for r in runs.itertuples():
        try:
            decisions = heldout_decisions(Path(r.run_dir) / "arc.h5",
                                          heldout_set(r.run_dir, data_path, trust_pickle, cache))
        except DataError as err:
            skipped.setdefault(str(err), []).append(Path(r.run_dir).name)
            decisions = {}
        rows.append({"run": Path(r.run_dir).name, "data": r.data, "preprocessing": r.preprocessing,
                     "candidate": r.candidate, "epochs": r.epochs, **r.final, "seconds": r.seconds, **decisions})
    for why, names in skipped.items():
        print(f"skip: held-out decisions of {len(names)} candidate(s) ({', '.join(names)}): {why}")
    table = pd.DataFrame(rows)
    table = table.reindex(columns=[*table.columns.drop(DECISION_COLUMNS, errors="ignore"), *DECISION_COLUMNS])
    return table.sort_values(["data", "preprocessing", "candidate"], ignore_index=True)


def write_table(cfg: DictConfig) -> None:
    candidates_dir = Path(cfg.paths.candidates)
    table = candidate_table(candidates_dir, cfg.data.path, cfg.data.trust_pickle)
    atomic_write(candidates_dir / "candidates.csv", lambda tmp: table.to_csv(tmp, index=False))
    shown = table.drop(columns=["run", *CONFUSION_COLUMNS])  # the matrices are in the file
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(shown.round(4).to_string(index=False))
    print(f"written: {candidates_dir / 'candidates.csv'}")


main = stage("train_arc")(write_table)

if __name__ == "__main__":
    main()
