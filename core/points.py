"""The ARC training-set format shared by datagen (writer) and arc_model (reader): one Parquet row per point.

A point is one checkpoint C of one training run (paper §3.2, docs/experiments.md §2). Its features are the signals of
the last k <= 3 cycles that ended at C; its label is the branch (x1.618, x1.0, x0.618) with the lowest
validation loss after n more epochs. Actions are indexed as ARC's classes: 0 raise, 1 keep, 2 decrease.

Columns (lists are oldest-first):
  task, run_id (str); point (0-based index in its run); seed; optimizer (adam|sgd|rmsprop); frequency (n, the
  epochs of one cycle, i.e. between two ARC calls); lr0; cycles (k, 1..3: cycles in the feature window);
  train_loss  list<float>  raw per-step training losses of the k cycles (NOT resized; the authors'
                           pickle stores them resized to 100k, which a resize to 100k leaves unchanged)
  val_loss    list<float>  per-epoch validation losses of the k cycles (k*n values)
  train_lr    list<float>  the LR in force in each of the k cycles (k values)
  branch_loss list<float>  [l_raise, l_keep, l_decrease]; non-finite = diverged (ranks worst)
  chosen      int          action continued at random among the two best (-1 for a run's last point)
  replicate_loss float     l* of the chosen branch when re-run from C (NaN for a run's last point)
  label_raw   int          argmin of branch_loss
  label       int          label after ground-truth correction (= label_raw before correction)
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from core.artifacts import read_parquet
from core.errors import DataError, one_line

if TYPE_CHECKING:  # read_points imports pandas: ARC inference (arc_model.ARCScheduler) needs only ACTIONS from here
    import pandas as pd

COLUMNS = ("task", "run_id", "point", "seed", "optimizer", "frequency", "lr0", "cycles", "train_loss", "val_loss",
           "train_lr", "branch_loss", "chosen", "replicate_loss", "label_raw", "label")
ACTIONS = (1.618, 1.0, 0.618)  # class index -> LR multiplier (docs/experiments.md §1)
KEEP = 1  # the label of a point whose ranking noise decided (docs/experiments.md §2.1)
RULES = ("full", "argmin")  # what must survive the ground-truth correction
TIES = ("keep", "index")  # the label of a point whose best loss is tied: KEEP, or the lower action index (raise)


def order(losses) -> tuple[int, ...]:
    """Action indices from best to worst. Non-finite (diverged or NaN) losses rank last; among those the smaller
    LR ranks better [I]; equal finite losses keep index order. The one ordering of labels and corrections."""
    keyed = [(loss, a) if math.isfinite(loss) else (math.inf, -a) for a, loss in enumerate(losses)]
    return tuple(sorted(range(len(keyed)), key=keyed.__getitem__))


def tied_best(losses) -> bool:
    """Whether the best finite loss is shared by two actions (no LR did better than another)."""
    finite = sorted(loss for loss in losses if math.isfinite(loss))
    return len(finite) >= 2 and finite[0] == finite[1]


def corrected_label(branch_loss, chosen: int, replicate: float, label_raw: int, rule: str = "full",
                    ties: str = "keep") -> int:
    """Ground-truth correction (docs/experiments.md §2.1, paper §3.3): l*_x (the chosen branch re-run from C) replaces l_x; if
    the ranking of (l+, l1, l-) changes, noise rather than the LR decided it and the label becomes KEEP.
    `rule="full"` compares the whole ranking (the paper's example), `"argmin"` only the best action. A point
    without a replicate (`chosen` < 0, a run's last point) keeps `label_raw`.
    A tie for the best (`ties="keep"`, default [I]): the LR decided nothing, so the label is KEEP, the paper's
    conservative label where noise decided; the paper does not treat exact ties. `order` breaks them by index,
    which made them 'raise' (`ties="index"`): mini seed 0, 13 of 720 points, 12 of them 'raise', e.g. a UNet whose
    sigmoid died (soft-Dice loss exactly 1 in all three branches) or a tagger at loss 0 on its stand-in data."""
    if ties == "keep" and tied_best(branch_loss):
        return KEEP
    if chosen < 0:
        return label_raw
    replaced = list(branch_loss)
    replaced[chosen] = replicate
    before, after = order(branch_loss), order(replaced)
    unchanged = before == after if rule == "full" else before[0] == after[0]
    return label_raw if unchanged else KEEP


def validate_points(frame: pd.DataFrame, source: str | Path) -> pd.DataFrame:
    """Raise DataError naming `source` if the frame lacks columns or holds impossible values."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: not an ARC points file, missing columns {missing}")
    if len(frame) == 0:
        raise DataError(f"{source}: holds no points")
    bad_label = ~frame["label"].isin([0, 1, 2]) | ~frame["label_raw"].isin([0, 1, 2])
    if bad_label.any():
        raise DataError(f"{source}: labels must be 0, 1 or 2 (row {int(bad_label.idxmax())})")
    lengths_ok = frame.apply(lambda r: len(r.train_lr) == r.cycles and len(r.val_loss) >= r.cycles
                             and len(r.train_loss) >= r.cycles and len(r.branch_loss) == 3, axis=1)
    if not lengths_ok.all():
        raise DataError(f"{source}: inconsistent list lengths at row {int((~lengths_ok).idxmax())}")
    return frame


def read_points(path: str | Path) -> pd.DataFrame:
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"ARC points file not found: {path}")
    try:
        frame = read_parquet(path)
    except Exception as err:  # noqa: BLE001 (the engine raises several types for truncated or foreign files)
        raise DataError(f"cannot read ARC points file {path}: {one_line(err)}") from None
    return validate_points(frame, path)
