"""core.tasks: the Task interface the training loop calls."""
from __future__ import annotations

import pytest
import torch
from torch import nn


def test_train_objective_defaults_to_train_loss_twice():
    """core.tasks.Task.train_objective: a task without a separate recorded loss minimises and records one loss."""
    from core.tasks import ClassificationTask

    class Linear(ClassificationTask):
        def build_model(self):
            return nn.Linear(3, 2)

    data = (torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
    task = Linear(data, data, batch_size=4)
    model = task.build_model()
    batch = next(iter(task.train_batches(torch.Generator().manual_seed(0))))
    minimised, recorded = task.train_objective(model, batch)
    assert minimised is recorded
    assert minimised.item() == pytest.approx(task.train_loss(model, batch).item())
