"""Task 9 of Table 1: one-shot learning with a siamese network, binary CE on same/different pairs.

Offline stand-in: pairs of scikit-learn digits, training on classes 0-6 and validating on pairs of the unseen
classes 7-9 (Omniglot's train/eval alphabets are disjoint too). Paper data: FastEstimator's omniglot loader
(105x105 greyscale, SiameseDirDataset pairs, half matching); the validation pairs are drawn once, seeded, so
every epoch is scored on the same pairs. The paper size follows FE's apphub example of this task
(one_shot_learning/siamese_network) [I: the datagen code is not public]: its network and init
(paper_models.KochSiamese), its L2 penalty in the training loss, and its pipeline: each training image
shifted/scaled/rotated with probability 0.89, every image Minmax-scaled.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from core.tasks.digits import digits_tensors
from datagen.tasks import paper_models
from datagen.tasks.base import DatagenTask


def make_pairs(labels: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n (left, right, same) index pairs, half of them of the same class."""
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    left = rng.integers(0, len(labels), n)
    same = (np.arange(n) % 2 == 0)
    right = np.empty(n, np.int64)
    for i in range(n):
        pool = by_class[labels[left[i]]] if same[i] else np.flatnonzero(labels != labels[left[i]])
        right[i] = rng.choice(pool)
    return left, right, same.astype(np.float32)


class OmniglotPairs(Dataset):
    """Decoded FE SiameseDirDataset items through FE apphub's ops (`train`: with its augmentation); `fixed` > 0 draws
    that many pairs once with a seeded RNG."""

    def __init__(self, fe_dataset, fixed: int = 0, seed: int = 0, train: bool = False):
        from fastestimator.op.numpyop.meta import Sometimes
        from fastestimator.op.numpyop.multivariate import ShiftScaleRotate
        from fastestimator.op.numpyop.univariate import Minmax

        self.fe_dataset, self.train = fe_dataset, train
        augment = [Sometimes(ShiftScaleRotate(image_in=k, image_out=k, shift_limit=0.05, scale_limit=0.2,
                                              rotate_limit=10), prob=0.89) for k in ("x_a", "x_b")]
        self.ops = (augment if train else []) + [Minmax(inputs=k, outputs=k) for k in ("x_a", "x_b")]
        if fixed:
            state = np.random.get_state()
            np.random.seed(seed)
            self.items = [fe_dataset[i % len(fe_dataset)] for i in range(fixed)]
            np.random.set_state(state)
        else:
            self.items = None

    def __len__(self):
        return len(self.items) if self.items else len(self.fe_dataset)

    def __getitem__(self, index):
        from fastestimator.op.numpyop import forward_numpyop

        item = self.items[index] if self.items else self.fe_dataset[index]
        sample = {k: cv2.imread(item[k], cv2.IMREAD_GRAYSCALE) for k in ("x_a", "x_b")}
        for k, image in sample.items():
            if image is None:
                raise FileNotFoundError(f"cannot read image {item[k]}")
        forward_numpyop(self.ops, sample, {"mode": "train" if self.train else "eval"})
        return (*(torch.tensor(sample[k])[None] for k in ("x_a", "x_b")), torch.tensor(float(item["y"])))


class OmniglotSiamese(DatagenTask):
    name, number, loss_name = "omniglot_siamese", 9, "bce"
    dataset = "omniglot"
    image_size = 105

    def offline_data(self, n_train, n_eval, seed):
        (x_a, y_a), (x_b, y_b) = digits_tensors(split_seed=seed)
        x, y = torch.cat([x_a, x_b]), torch.cat([y_a, y_b]).numpy()
        rng = np.random.default_rng(seed + 9)
        sets = []
        for classes, n in (((0, 1, 2, 3, 4, 5, 6), n_train or 800), ((7, 8, 9), n_eval or 200)):
            idx = np.flatnonzero(np.isin(y, classes))
            left, right, same = make_pairs(y[idx], n, rng)
            sets.append((x[idx[left]], x[idx[right]], torch.tensor(same)))
        return tuple(sets)

    def fe_data(self, root_dir):
        from fastestimator.dataset.data import omniglot
        train, test = omniglot.load_data(root_dir=root_dir)
        return OmniglotPairs(train, train=True), OmniglotPairs(test, fixed=2000)

    def standin(self, n, generator):
        shape = (n, 1, self.image_size, self.image_size)
        return (torch.rand(shape, generator=generator), torch.rand(shape, generator=generator),
                torch.randint(0, 2, (n,), generator=generator).float())

    def small_model(self):  # Keras' layer defaults (paper_models.Siamese applies core.keras_init)
        w = self.width
        encoder = nn.Sequential(nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                nn.Linear(2 * w * 16, 4 * w), nn.Sigmoid())
        return paper_models.Siamese(encoder, 4 * w)

    def paper_model(self):
        return paper_models.KochSiamese()

    def train_loss(self, model, batch):
        penalty = getattr(model, "train_penalty", None)  # the paper net's L2 (FE apphub: in training only)
        loss = self.step(model, batch)[0]
        return loss + penalty() if penalty else loss

    def step(self, model, batch):
        a, b, same = batch
        logit = model(a, b)
        return (nn.functional.binary_cross_entropy_with_logits(logit, same),
                ((logit > 0).float() == same).float().mean().item())
