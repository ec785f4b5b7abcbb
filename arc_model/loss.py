"""ARC's hybrid loss (docs/experiments.md §4.2, authors' train_arc.py): 0.5 * CE + 0.5 * BCE(raise vs decrease).

CE: sparse categorical cross-entropy of the softmax. Keras' from_logits=False path reads the logits
behind a Softmax op in graph mode, so log-softmax of the logits is what the authors computed.
BCE: `MultipleClsBinaryCELoss(pos_labels=[0], neg_labels=[2])` — 'keep' samples (label 1) are left
out; p = clip(P(raise), 1e-4, 1 - 1e-4) of the un-renormalised 3-class softmax; target 1 for raise,
0 for decrease; mean over the included samples. A batch with no raise/decrease sample would divide
by zero in the authors' code (docs/experiments.md §4.2 [I]); here its BCE term is 0 instead.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

RAISE, KEEP, DECREASE = 0, 1, 2


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels)


def raise_vs_decrease_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    included = labels != KEEP
    if not included.any():
        return logits.sum() * 0.0  # keeps the graph; see module docstring
    p_raise = torch.softmax(logits[included], dim=1)[:, RAISE].clamp(1e-4, 1 - 1e-4)
    target = (labels[included] == RAISE).to(p_raise.dtype)
    return -(target * torch.log(p_raise) + (1 - target) * torch.log(1 - p_raise)).mean()


def hybrid_loss(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """{'ce', 'bnce_0vs2', 'total_loss'} with the authors' key names (train_arc.py)."""
    ce, bce = cross_entropy(logits, labels), raise_vs_decrease_bce(logits, labels)
    return {"ce": ce, "bnce_0vs2": bce, "total_loss": 0.5 * ce + 0.5 * bce}


CLASS_NAMES = ("raise", "keep", "decrease")


def per_sample_hybrid(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each sample's share of the hybrid loss: 0.5 * CE_i + 0.5 * BCE_i, BCE_i = 0 for 'keep' (left out of the BCE).
    A diagnostic: the batch loss divides the BCE by the batch's raise/decrease count, not by its size."""
    ce = F.cross_entropy(logits, labels, reduction="none")
    p_raise = torch.softmax(logits, dim=1)[:, RAISE].clamp(1e-4, 1 - 1e-4)
    bce = torch.where(labels == RAISE, -torch.log(p_raise),
                      torch.where(labels == DECREASE, -torch.log(1 - p_raise), torch.zeros_like(p_raise)))
    return 0.5 * ce + 0.5 * bce


def hybrid_sums_by_class(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, tuple[float, int]]:
    """{class name: (sum of per_sample_hybrid over its samples, count)}: per-class means over batches add up."""
    losses = per_sample_hybrid(logits.detach(), labels)
    return {name: (float(losses[labels == c].sum()), int((labels == c).sum())) for c, name in enumerate(CLASS_NAMES)}
