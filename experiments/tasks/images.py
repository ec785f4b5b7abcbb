"""Image classification (docs/experiments.md §7.1): the repo's ResNet9 variant with its augmentation, Adam, sparse CE.

`Cifar10Task` (paper) reads CIFAR10 as FE's `cifar10.load_data(root_dir)` does (50k train, the 10k
test set as eval), but with core.safe_load's restricted unpickler: the python batches are pickles, and Keras'
`load_batch` (which FE calls) would run any code a tampered file holds. `DigitsTask` (mini/smoke) runs the same network family and augmentation on
scikit-learn's 8x8 digits, scaled: pad 1 instead of 4, a 2x2 hole instead of 8x8.
Augmentation runs batched in torch and draws from the run's data generator, so resume stays exact.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.keras_init import keras_conventions_
from core.tasks import ClassificationTask, host_to_device, tensor_batches
from core.tasks.digits import digits_tensors
from core.inputs import require, required, verify
from experiments.tasks import check_variant

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)


def conv_bn(c_in: int, c_out: int, pool: bool = False, momentum: float = 0.2, eps: float = 1e-3) -> nn.Sequential:
    """Conv3x3 'same' with bias -> [MaxPool2] -> BN -> LeakyReLU(0.1). BN default: the TF model's Keras momentum 0.8
    (torch 0.2), epsilon 1e-3."""
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1)] + ([nn.MaxPool2d(2)] if pool else [])
    return nn.Sequential(*layers, nn.BatchNorm2d(c_out, eps=eps, momentum=momentum), nn.LeakyReLU(0.1))


class Residual(nn.Module):
    def __init__(self, channels: int, momentum: float = 0.2, eps: float = 1e-3):
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels, momentum=momentum, eps=eps),
                                  conv_bn(channels, channels, momentum=momentum, eps=eps))

    def forward(self, x):
        return x + self.body(x)


class ResNet9(nn.Module):
    """The repo's TF ResNet9 (docs/experiments.md §7.1): residuals after layer1 and layer3 only, global max pool.
    Keras' Conv2D/Dense start (glorot_uniform, zero bias, core.keras_init); its BNs keep the momentum 0.8 the repo
    sets (torch 0.2, eps 1e-3), which the helper leaves alone.

    variant="sls": the authors' PyTorch port the SLS runs trained (`FastCifar` of meta_compare's
    sls_image_classification.py, docs/experiments.md §7.4): a third residual, after layer2; the layer BNs with
    torch momentum 0.8 (= Keras 0.2), the residuals' BNs at torch's defaults (momentum 0.1), epsilon 1e-5; torch's
    default initialisation everywhere (the port sets none)."""

    def __init__(self, in_channels: int = 3, width: int = 64, classes: int = 10, variant: str = "keras"):
        super().__init__()
        w, sls = width, check_variant(variant) == "sls"
        layer = dict(momentum=0.8, eps=1e-5) if sls else {}
        residual = dict(momentum=0.1, eps=1e-5) if sls else {}
        self.features = nn.Sequential(
            conv_bn(in_channels, w, **layer),
            conv_bn(w, 2 * w, pool=True, **layer), Residual(2 * w, **residual),
            conv_bn(2 * w, 4 * w, pool=True, **layer), *([Residual(4 * w, **residual)] if sls else []),
            conv_bn(4 * w, 8 * w, pool=True, **layer), Residual(8 * w, **residual),
            nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(8 * w, classes)
        if not sls:
            keras_conventions_(self)

    def forward(self, x):
        return self.head(self.features(x))


def augment(x: torch.Tensor, pad: int, hole: int, generator: torch.Generator) -> torch.Tensor:
    """PadIfNeeded (reflect-101) + RandomCrop back to size + HorizontalFlip(0.5) + one hole x hole
    CoarseDropout filled with 0 (after Normalize, as in the repo's pipeline order)."""
    b, _, h, w = x.shape
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")  # torch 'reflect' = cv2 REFLECT_101
    draws = torch.stack([torch.randint(0, n, (b,), generator=generator) for n in
                         (2 * pad + 1, 2 * pad + 1, 2, h - hole + 1, w - hole + 1)])  # drawn on the CPU, in this order
    dy, dx, flip, hy, hx = host_to_device(draws, x.device)  # one copy; the host does not wait for the GPU
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    rows, cols = dy[:, None] + ys, dx[:, None] + xs
    cols = torch.where(flip[:, None].bool(), cols.flip(1), cols)
    out = padded[torch.arange(b, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    out = out.permute(0, 3, 1, 2)
    mask = ((ys[None, :, None] >= hy[:, None, None]) & (ys[None, :, None] < hy[:, None, None] + hole)
            & (xs[None, None, :] >= hx[:, None, None]) & (xs[None, None, :] < hx[:, None, None] + hole))
    return out.masked_fill(mask[:, None], 0.0)


class AugmentedImageTask(ClassificationTask):
    """Normalized image tensors + ResNet9 + the repo's train-time augmentation."""

    def __init__(self, train, eval, batch_size: int, width: int, pad: int, hole: int, holdout_fraction: float = 0.0,
                 variant: str = "keras", device: str = "cpu"):
        self.variant = check_variant(variant)  # keras | sls (ResNet9)
        if holdout_fraction:  # LR range test: eval on a split of the training set (docs/experiments.md §7.4, CIFAR)
            order = torch.tensor(np.random.default_rng(0).permutation(len(train[1])))
            n_eval = int(round(len(order) * holdout_fraction))
            eval = tuple(t[order[:n_eval]] for t in train)
            train = tuple(t[order[n_eval:]] for t in train)
        super().__init__(train, eval, batch_size, eval_batch_size=1024, device=device)
        self.width, self.pad, self.hole = width, pad, hole
        self.steps_per_epoch = math.ceil(len(self.train_data[1]) / batch_size)  # last partial batch kept (FE)

    def train_batches(self, generator):
        for x, y in tensor_batches(self.train_data, self.batch_size, generator):
            x = augment(x.to(self.device), self.pad, self.hole, generator)
            yield x, y.to(self.device)

    def build_model(self):
        return ResNet9(self.train_data[0].shape[1], self.width, variant=self.variant)


class DigitsTask(AugmentedImageTask):
    """mini/smoke stand-in for CIFAR10: 8x8 digits (ship with scikit-learn), normalized per channel."""

    name = "cifar10"

    def __init__(self, width: int = 8, n_train: int | None = None, n_eval: int | None = None, batch_size: int = 128,
                 holdout_fraction: float = 0.0, variant: str = "keras", device: str = "cpu"):
        (x_train, y_train), (x_eval, y_eval) = digits_tensors(n_train)
        mean, std = x_train.mean(), x_train.std()
        train = ((x_train - mean) / std, y_train)
        eval_ = ((x_eval[:n_eval] - mean) / std, y_eval[:n_eval])
        super().__init__(train, eval_, batch_size, width, pad=1, hole=2, holdout_fraction=holdout_fraction,
                         variant=variant, device=device)


def load_cifar10(inputs) -> tuple[dict, dict]:
    """({"x", "y"} train, eval) exactly as FE 1.7's cifar10.load_data gives them (uint8 NHWC images, uint8 train
    labels, int64 eval labels), from the checked files of `Cifar10Task.paper_inputs`. Each batch is a pickle of a
    dict with a numpy array: read with `restricted_unpickle`, which builds numpy arrays and nothing else."""
    from core.safe_load import restricted_unpickle

    inputs = list(inputs)
    require(inputs, "cifar10")
    files = {path.name: path for path in map(verify, inputs)}

    def batch(name: str) -> tuple[np.ndarray, list]:
        data = restricted_unpickle(files[name].read_bytes(), files[name], encoding="bytes")
        data = {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in data.items()}
        return np.asarray(data["data"]).reshape(-1, 3, 32, 32), data["labels"]

    x_train, y_train = np.empty((50000, 3, 32, 32), dtype="uint8"), np.empty((50000,), dtype="uint8")
    for i in range(1, 6):
        x_train[(i - 1) * 10000:i * 10000], y_train[(i - 1) * 10000:i * 10000] = batch(f"data_batch_{i}")
    x_eval, y_eval = batch("test_batch")
    return ({"x": x_train.transpose(0, 2, 3, 1), "y": y_train},
            {"x": x_eval.astype(x_train.dtype).transpose(0, 2, 3, 1), "y": np.array(y_eval)})


class Cifar10Task(AugmentedImageTask):
    """paper: CIFAR10 via FE's loader, batch 128 (391 steps/epoch), Normalize on the /255 scale."""

    name = "cifar10"

    def __init__(self, root_dir: str, width: int = 64, batch_size: int = 128, holdout_fraction: float = 0.0,
                 variant: str = "keras", device: str = "cpu"):
        train_ds, eval_ds = load_cifar10(self.paper_inputs(root_dir))
        super().__init__(self._tensors(train_ds), self._tensors(eval_ds), batch_size, width, pad=4, hole=8,
                         holdout_fraction=holdout_fraction, variant=variant, device=device)

    @staticmethod
    def paper_inputs(root_dir: str, **_):
        """The files FE's cifar10 loader reads (core.inputs.REGISTRY; `make check-data` lists the same)."""
        return required("cifar10", root_dir)

    @staticmethod
    def _tensors(dataset):
        x = torch.tensor(np.asarray(dataset["x"]), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
        mean, std = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
        return (x - mean) / std, torch.tensor(np.asarray(dataset["y"]).reshape(-1), dtype=torch.long)
