"""ARC's decisions on held-out points, for REPORT.md and arc_decisions.png: every candidate (its row of
candidates.csv, stage 3), the published ARC (paths.published_arc) and the selected one (paths.selected_arc).

All are scored by arc_model.candidates.heldout_decisions (one implementation). A candidate is scored on its own
held-out points (candidates.csv). The published and the selected ARC are scored on the held-out points of the
selected candidate (selection's DONE names it), else of the lowest-numbered finished candidate: the selected one
under that candidate's preprocessing (how it was trained and scored), the published one under FastEstimator's
(`repo`, docs/experiments.md §3), with which it was trained [I]. A model that cannot be scored (not configured,
file missing, no held-out points) is one note, never an error. The table goes to
${paths.figures}/arc_decisions_heldout.csv.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from core.artifacts import atomic_write_text, is_done, read_done
from core.errors import DataError
from core.runs import finished_runs

COLUMNS = ["model", "role", "weights", "preprocessing", "held_out_source"]


def candidate_rows(candidates_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """The decision columns of candidates.csv (stage 3 computed them), one row per scored candidate."""
    from arc_model.candidates import DECISION_COLUMNS

    path = candidates_dir / "candidates.csv"
    if not path.is_file():
        return pd.DataFrame(), [f"candidates: no {path} (`make train_arc` writes it)"]
    table = pd.read_csv(path)
    if any(c not in table for c in DECISION_COLUMNS):
        return pd.DataFrame(), [f"candidates: {path} has no decision columns (written by an older version: rerun "
                                "`python -m arc_model.candidates` with the profile)"]
    scored = table.dropna(subset=DECISION_COLUMNS)
    notes = [f"candidates: {len(table) - len(scored)} of {len(table)} have no held-out decisions (see "
             "logs/train_arc.log for why)"] if len(scored) < len(table) else []
    rows = pd.DataFrame({"model": [f"c{c}" for c in scored.candidate], "role": "candidate",
                         "weights": [str(candidates_dir / r / "arc.h5") for r in scored.run],
                         "preprocessing": scored.preprocessing, "held_out_source": None})
    return pd.concat([rows, scored[DECISION_COLUMNS].reset_index(drop=True)], axis=1), notes


def reference_candidate(candidates_dir: Path, selection_dir: Path) -> tuple[Path | None, dict]:
    """(the candidate whose held-out points the published and selected ARC are scored on, selection's DONE)."""
    runs = finished_runs(candidates_dir) if candidates_dir.is_dir() else pd.DataFrame()
    done = read_done(selection_dir) if is_done(selection_dir) else {}
    if runs.empty:
        return None, done
    winner = runs[[Path(d).name == done.get("winner") for d in runs.run_dir]]
    return Path((winner if len(winner) else runs.sort_values("candidate")).run_dir.iloc[0]), done


def model_rows(cfg: DictConfig) -> tuple[pd.DataFrame, list[str]]:
    """Rows of the published and the selected ARC, and a note for each one that is skipped."""
    from arc_model.candidates import heldout_decisions, heldout_set

    reference, done = reference_candidate(Path(cfg.paths.candidates), Path(cfg.paths.selection))
    selected = (f"selected (c{done['candidate']})" if "candidate" in done else "selected (paths.selected_arc)")
    wanted = [("published", "published", cfg.paths.published_arc, "repo",
               "not configured (set paths.published_arc or the env variable ARC_PUBLISHED_WEIGHTS)"),
              (selected, "selected", cfg.paths.selected_arc, None, "not configured")]
    held, notes = None, [f"no finished ARC candidates under {cfg.paths.candidates}: no held-out points"]
    if reference is not None:
        try:
            held, notes = heldout_set(reference, str(Path(cfg.paths.dataset) / "dataset.parquet")), []
        except DataError as err:
            notes = [f"held-out points of candidate {reference.name}: {err}"]
    rows = []
    for model, role, weights, preprocessing, unset in wanted:
        if weights is None:
            notes.append(f"{model} ARC: {unset}; skipped")
        elif not Path(weights).is_file():
            notes.append(f"{model} ARC: weights file not found: {weights}; skipped")
        elif held is None:
            notes.append(f"{model} ARC: no held-out points to score it on; skipped")
        else:
            mine = held.preprocessed(preprocessing or held.preprocessing)
            try:
                scored = heldout_decisions(weights, mine)
            except DataError as err:  # not an ARC weights file
                notes.append(f"{model} ARC: {err}; skipped")
                continue
            rows.append({"model": model, "role": role, "weights": str(weights), "preprocessing": mine.preprocessing,
                         "held_out_source": f"candidate {reference.name}'s held-out points: {mine.source}", **scored})
    return pd.DataFrame(rows), notes


def heldout_table(cfg: DictConfig) -> tuple[pd.DataFrame, list[str]]:
    """Every ARC model's decisions on held-out points (candidates, then the published and the selected one) and the
    notes on what was skipped; writes ${paths.figures}/arc_decisions_heldout.csv when any model was scored."""
    candidates, notes = candidate_rows(Path(cfg.paths.candidates))
    models, more = model_rows(cfg)
    table = pd.concat([f for f in (candidates, models) if not f.empty], ignore_index=True) \
        if not (candidates.empty and models.empty) else pd.DataFrame(columns=COLUMNS)
    for line in notes + more:
        print(f"skip: ARC decisions on held-out points: {line}")
    if not table.empty:
        path = Path(cfg.paths.figures) / "arc_decisions_heldout.csv"
        atomic_write_text(path, table.to_csv(index=False))
        print(path)
    return table, notes + more
