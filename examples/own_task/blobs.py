"""A user's own task for ARC's training set: a tiny MLP classifying Gaussian blobs (synthetic, seeded, offline).

What datagen needs is core.tasks.Task's protocol (core/tasks/__init__.py): `train_batches(generator)`, `build_model()`,
`train_loss(model, batch)` and `evaluate(model) -> (eval loss, metric)`; the eval loss is what labels a point
(docs/experiments.md §2 step 5). ClassificationTask brings all four for (inputs, class) tensors with cross-entropy,
so this class only makes the data and the model. Its constructor takes `device` (datagen passes the profile's) and
whatever the config's `sizes.<profile>.args` give.
"""
from __future__ import annotations

import torch
from torch import nn

from core.tasks import ClassificationTask


class Blobs(ClassificationTask):
    def __init__(self, classes: int = 4, features: int = 8, width: int = 16, n_train: int = 256, n_eval: int = 128,
                 batch_size: int = 32, data_seed: int = 0, device: str = "cpu"):
        generator = torch.Generator().manual_seed(data_seed)
        centres = 2 * torch.randn(classes, features, generator=generator)

        def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
            y = torch.randint(classes, (n,), generator=generator)
            return centres[y] + torch.randn(n, features, generator=generator), y

        super().__init__(draw(n_train), draw(n_eval), batch_size, device=device)
        self.classes, self.features, self.width = classes, features, width

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(self.features, self.width), nn.ReLU(), nn.Linear(self.width, self.classes))
