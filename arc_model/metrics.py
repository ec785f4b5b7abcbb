"""Candidate metrics on held-out points (paper A.1, docs/experiments.md §10.1): accuracy, MCC, validation loss,
calibration error and weighted accuracy (Table 5).

Calibration error is FastEstimator's `CalibrationError` default: the `uncertainty-calibration`
package's marginal, debiased L2 estimator (Kumar et al. 2019, the paper's ref [21]).
"""
from __future__ import annotations

import calibration
import numpy as np
import torch
from sklearn.metrics import confusion_matrix, matthews_corrcoef

from arc_model.loss import hybrid_loss

# Table 5 reward-penalty matrix `rpm_abs` (rows true, cols predicted; raise, keep, decrease)
REWARD_PENALTY = np.array([[3, 1, 3], [1, 1, 1], [3, 1, 3]])


def weighted_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """w_acc = sum_i R_ii CM_ii / sum_ij R_ij CM_ij."""
    cm = confusion_matrix(labels, predicted, labels=[0, 1, 2])
    return float(np.trace(REWARD_PENALTY * cm) / np.sum(REWARD_PENALTY * cm))


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
