"""Candidate metrics on held-out points (paper A.1, docs/experiments.md §10.1): accuracy, MCC, validation loss,
calibration error and weighted accuracy (Table 5); and an ARC model's decisions there: its confusion matrix and
the share of each action it predicts (`decision_columns`, the columns of candidates.csv).

Calibration error is FastEstimator's `CalibrationError` default: the `uncertainty-calibration`
package's marginal, debiased L2 estimator (Kumar et al. 2019, the paper's ref [21]).
"""
from __future__ import annotations

import math

import calibration
import numpy as np
import torch
from sklearn.metrics import confusion_matrix, matthews_corrcoef

from arc_model.loss import hybrid_loss

# Table 5 reward-penalty matrix `rpm_abs` (rows true, cols predicted; raise, keep, decrease)
REWARD_PENALTY = np.array([[3, 1, 3], [1, 1, 1], [3, 1, 3]])
ACTIONS = ("raise", "keep", "decrease")  # classes 0, 1, 2: x1.618, x1.0, x0.618 (docs/experiments.md §1)
# cm_true_<a>_pred_<b>: held-out points of true label a that the model predicts as b (rows true, columns predicted,
# the layout of docs/experiments.md §10.1); pred_<b>: the share of held-out points it predicts as b
CONFUSION_COLUMNS = [f"cm_true_{t}_pred_{p}" for t in ACTIONS for p in ACTIONS]
SHARE_COLUMNS = [f"pred_{a}" for a in ACTIONS]


def confusion(labels, predicted) -> np.ndarray:
    """3x3 counts, rows the true label, columns the predicted one, both in the order raise, keep, decrease."""
    return confusion_matrix(np.asarray(labels), np.asarray(predicted), labels=[0, 1, 2])


def weighted_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """w_acc = sum_i R_ii CM_ii / sum_ij R_ij CM_ij."""
    cm = confusion(labels, predicted)
    return float(np.trace(REWARD_PENALTY * cm) / np.sum(REWARD_PENALTY * cm))


def decision_columns(labels, predicted) -> dict[str, float]:
    """The confusion cells (CONFUSION_COLUMNS, counts) and predicted shares (SHARE_COLUMNS) of one model's
    held-out predictions. At least one point: no points means no held-out split, which callers say instead."""
    cm = confusion(labels, predicted)
    if cm.sum() == 0:
        raise ValueError("no held-out points")
    cells = {name: int(v) for name, v in zip(CONFUSION_COLUMNS, cm.ravel())}
    return cells | {name: float(v) for name, v in zip(SHARE_COLUMNS, cm.sum(axis=0) / cm.sum())}


def matrix_of(row) -> np.ndarray:
    """The 3x3 confusion matrix back from a row holding CONFUSION_COLUMNS (a dict or a pandas row)."""
    return np.array([row[name] for name in CONFUSION_COLUMNS], dtype=float).reshape(3, 3)


def recall_precision(cm: np.ndarray, action: str) -> tuple[float, float]:
    """(recall, precision) of one action: of its true points, the share predicted as it; of the points predicted
    as it, the share truly it. NaN where the denominator is 0 (no such true point / never predicted)."""
    k = ACTIONS.index(action)
    true, predicted = cm[k].sum(), cm[:, k].sum()
    return (cm[k, k] / true if true else math.nan), (cm[k, k] / predicted if predicted else math.nan)


def candidate_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """All five metrics (plus the loss parts) for one set of held-out predictions."""
    with torch.no_grad():
        losses = {k: float(v) for k, v in hybrid_loss(logits, labels).items()}
        probs = torch.softmax(logits, dim=1).double().numpy()
    y, pred = labels.numpy(), probs.argmax(1)
    return {
        "accuracy": float(np.mean(pred == y)),
        "mcc": float(matthews_corrcoef(y, pred)),
        "val_loss": losses["total_loss"],
        "val_ce": losses["ce"],
        "calibration_error": float(calibration.get_calibration_error(probs, y, mode="marginal")),
        "weighted_accuracy": weighted_accuracy(y, pred),
    }


# direction in which each metric improves (for best-by-metric checkpoints, docs/experiments.md §10.1)
MODES = {"accuracy": "max", "mcc": "max", "val_loss": "min", "calibration_error": "min", "weighted_accuracy": "max"}
