"""Tasks 6, 11, 12 of Table 1: uncertainty-weighted multi-task (6) and UNet segmentation (11, 12).

Losses [docs/experiments.md §2.2 plausible mapping, I]: task 11 per-pixel binary CE, task 12 soft-dice loss, task 6
Kendall et al. uncertainty weighting sum_i exp(-s_i) L_i + s_i of class CE and per-pixel binary CE. Offline
stand-ins: generated lung X-rays (11) and shape images with class and mask (6, 12). Paper data: FastEstimator's
montgomery and cub200 loaders, images resized to 512x512 [I]; a fixed 20% is held out for validation (11, 12).
Tasks 11 and 12 use FastEstimator's own UNet (architecture.pytorch.UNet; task 11 with FE apphub's Montgomery
pipeline, `fe_montgomery_decoder`).

Task 6 follows FastEstimator's apphub example of the same task (multi_task_learning/uncertainty_weighted_loss, the
authors' library; their datagen code is not public, so [I]): ImageNet-initialised ResNet50 + UNet decoder
(paper_models.ResUNet50), the log-variances s_i trained by their own Adam(1e-5) outside the controlled LR
(core.optim.WithFixedLR), images scaled to [-1, 1], longest side 512 and zero-padded to 512x512, training images
shifted/scaled/rotated and flipped at random, and 15% of CUB-200 held out for validation (FE: 30% split off,
half of it the test set).
"""
from __future__ import annotations

import cv2
import numpy as np
import scipy.io
import torch
from torch import nn
from torch.utils.data import Subset

from core.keras_init import keras_conventions_
from core.pretrained import resnet50_imagenet_inputs
from datagen.tasks import offline_data, paper_models
from datagen.tasks.base import DatagenTask, MappedDataset, accuracy


def soft_dice(logits: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean over the batch of the soft Dice coefficient of sigmoid(logits) and the mask."""
    prob = torch.sigmoid(logits).flatten(1)
    mask = mask.flatten(1)
    return ((2 * (prob * mask).sum(1) + eps) / (prob.sum(1) + mask.sum(1) + eps)).mean()


def hard_dice(logits: torch.Tensor, mask: torch.Tensor) -> float:
    return soft_dice(logits * 1e4, mask).item()  # saturated sigmoid = thresholded mask


def held_out_split(dataset, eval_fraction: float = 0.2, seed: int = 0, eval_dataset=None):
    """A fixed split: (train, held-out eval) subsets; `eval_dataset` (the same items decoded without training
    augmentation) supplies the eval subset when given."""
    order = np.random.default_rng(seed).permutation(len(dataset))
    n_eval = int(len(order) * eval_fraction)
    return (Subset(dataset, order[n_eval:].tolist()),
            Subset(dataset if eval_dataset is None else eval_dataset, order[:n_eval].tolist()))


def read_image(path: str, flags=cv2.IMREAD_COLOR) -> np.ndarray:
    image = cv2.imread(path, flags)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


def read_resized(path: str, size: int, flags=cv2.IMREAD_COLOR) -> np.ndarray:
    return cv2.resize(read_image(path, flags), (size, size))


def chw(image: np.ndarray) -> torch.Tensor:
    image = image[..., None] if image.ndim == 2 else image
    return torch.tensor(np.ascontiguousarray(image)).permute(2, 0, 1).float()


def cub200_decoder(parent: str, size: int):
    """CUB-200 item -> (image [0,1], class, bird mask {0,1}); the mask is the 'seg' field of its .mat file."""
    def decode(item):
        image = chw(read_resized(f"{parent}/{item['image']}", size)) / 255.0
        seg = scipy.io.loadmat(f"{parent}/{item['annotation']}")["seg"].astype(np.float32)
        mask = chw((cv2.resize(seg, (size, size), interpolation=cv2.INTER_NEAREST) > 0).astype(np.float32))
        return image, int(item["label"]), mask
    return decode


def small_unet(in_channels: int, width: int) -> nn.Module:
    return paper_models.UNet(in_channels, 1, widths=(width, 2 * width, 4 * width))


def fe_montgomery_decoder(parent: str, size: int, train: bool):
    """Montgomery item -> (X-ray in [0, 1], lung mask in [0, 1]) through FE apphub's UNet pipeline
    (semantic_segmentation/unet): gray image and the two lung masks combined, Resize(size, size) of both (linear),
    in training a horizontal flip and a rotation within +-10 degrees (zero border), each with probability 1/2, then
    Minmax of image and mask (per image). FE adds the two uint8 masks; their maximum is the same where the lungs do
    not overlap and cannot wrap around [I]."""
    from fastestimator.op.numpyop import forward_numpyop
    from fastestimator.op.numpyop.meta import Sometimes
    from fastestimator.op.numpyop.multivariate import HorizontalFlip, Resize, Rotate
    from fastestimator.op.numpyop.univariate import Minmax

    ops = [Resize(image_in="image", width=size, height=size), Resize(image_in="mask", width=size, height=size)]
    if train:
        ops += [Sometimes(HorizontalFlip(image_in="image", mask_in="mask")),
                Sometimes(Rotate(image_in="image", mask_in="mask", limit=(-10, 10), border_mode=cv2.BORDER_CONSTANT))]
    ops += [Minmax(inputs="image", outputs="image"), Minmax(inputs="mask", outputs="mask")]
    state = {"mode": "train" if train else "eval"}

    def decode(item):
        left, right = (read_image(f"{parent}/{item[k]}", cv2.IMREAD_GRAYSCALE) for k in ("mask_left", "mask_right"))
        image = read_image(f"{parent}/{item['image']}", cv2.IMREAD_GRAYSCALE)
        sample = {"image": image, "mask": np.maximum(left, right)}
        forward_numpyop(ops, sample, state)
        return chw(sample["image"]), chw(sample["mask"])
    return decode


class MontgomeryUNet(DatagenTask):
    """Task 11: UNet lung segmentation on chest X-rays, per-pixel binary CE; metric Dice. Paper: FastEstimator's
    UNet and its apphub pipeline for this dataset (fe_montgomery_decoder), batch 4 and Adam 1e-4 there."""
    name, number, loss_name, metric_name = "montgomery_unet", 11, "bce", "dice"
    dataset = "montgomery"
    image_size, offline_size, channels = 512, 24, 1

    def offline_data(self, n_train, n_eval, seed):
        n_eval = n_eval or 64
        return offline_data.split(offline_data.lungs((n_train or 256) + n_eval, self.offline_size, seed + 11),
                                  n_train, n_eval)

    def fe_data(self, root_dir):
        from fastestimator.dataset.data import montgomery
        data = montgomery.load_data(root_dir=root_dir)
        train, evaluation = (MappedDataset(data, fe_montgomery_decoder(data.parent_path, self.image_size, t))
                             for t in (True, False))
        return held_out_split(train, eval_dataset=evaluation)  # FE apphub: csv.split(0.2)

    def standin(self, n, generator):
        size = self.image_size
        return (torch.rand(n, self.channels, size, size, generator=generator),
                (torch.rand(n, 1, size, size, generator=generator) > 0.5).float())

    def small_model(self):
        return small_unet(self.channels, self.width)

    def paper_model(self):
        return paper_models.fe_unet(self.channels, self.image_size)

    def step(self, model, batch):
        x, mask = batch
        logits = model(x)
        return nn.functional.binary_cross_entropy_with_logits(logits, mask), hard_dice(logits.detach(), mask)


class Cub200UNet(MontgomeryUNet):
    """Task 12: UNet bird segmentation on CUB-200, soft-dice loss."""
    name, number, loss_name = "cub200_unet", 12, "dice_loss"
    dataset = "cub200"
    channels, offline_size = 3, 24

    def offline_data(self, n_train, n_eval, seed):
        n_eval = n_eval or 64
        x, _, mask = offline_data.shapes((n_train or 256) + n_eval, self.offline_size, seed + 12)
        return offline_data.split((x, mask), n_train, n_eval)

    def fe_data(self, root_dir):
        from fastestimator.dataset.data import cub200
        data = cub200.load_data(root_dir=root_dir)
        decode = cub200_decoder(data.parent_path, self.image_size)
        return held_out_split(MappedDataset(data, lambda item: decode(item)[::2]))

    def step(self, model, batch):
        x, mask = batch
        logits = model(x)
        return 1 - soft_dice(logits, mask), hard_dice(logits.detach(), mask)


class TinyMultiTask(nn.Module):
    """Mini multi-task net: shared conv encoder, class head and upsampling mask head, Kendall log-variances. Keras'
    layer defaults (core.keras_init) [I: the authors' datagen code is not public]; the log-variances start at 0."""

    def __init__(self, width: int, classes: int):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                     nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU())
        self.classify = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, classes))
        self.segment = nn.Sequential(nn.ConvTranspose2d(2 * width, width, 2, stride=2), nn.ReLU(),
                                     nn.Conv2d(width, 1, 1))
        self.log_var = nn.Parameter(torch.zeros(2))
        keras_conventions_(self)

    def fixed_lr_parameters(self):  # as the paper model (paper_models.ResUNet50): Adam(1e-5), outside the run's LR
        return [("adam", 1e-5, [self.log_var])]

    def forward(self, x):
        h = self.encoder(x)
        return self.classify(h), self.segment(h)


class Cub200MultiTask(DatagenTask):
    """Task 6: ResNet50 + UNet, bird class and bird mask, uncertainty-weighted (Kendall et al.).

    `backbone_weights` (paper): torchvision's ImageNet ResNet50 file (core.pretrained; checked before any work,
    nothing is downloaded); None trains the encoder from scratch."""
    name, number, loss_name = "cub200_multitask", 6, "uncertainty_loss"
    dataset = "cub200"
    image_size, offline_size, classes, offline_classes = 512, 16, 200, 3
    eval_fraction = 0.15  # FE apphub: train_data.split(0.3), then half of it the test set

    def __init__(self, backbone_weights: str | None = None, **kwargs):
        self.backbone_weights = backbone_weights
        super().__init__(**kwargs)
        if self.source == "fe" and backbone_weights:
            self.backbone_weights = str(resnet50_imagenet_inputs(backbone_weights)[0].found())

    @classmethod
    def paper_inputs(cls, root_dir=None, source="fe", backbone_weights=None, **_):
        inputs = super().paper_inputs(root_dir, source)
        if source == "fe" and backbone_weights:
            inputs += resnet50_imagenet_inputs(backbone_weights)
        return inputs

    def input_options(self):
        return {"backbone_weights": self.backbone_weights}

    def offline_data(self, n_train, n_eval, seed):
        n_eval = n_eval or 64
        return offline_data.split(offline_data.shapes((n_train or 256) + n_eval, self.offline_size, seed + 6),
                                  n_train, n_eval)

    def fe_data(self, root_dir):
        from fastestimator.dataset.data import cub200
        data = cub200.load_data(root_dir=root_dir)
        train, evaluation = (MappedDataset(data, fe_multitask_decoder(data.parent_path, self.image_size, t))
                             for t in (True, False))
        train, held_out = held_out_split(train, 2 * self.eval_fraction, eval_dataset=evaluation)
        return train, Subset(evaluation, held_out.indices[:int(len(data) * self.eval_fraction)])  # FE: half is test

    def standin(self, n, generator):
        size = self.image_size
        return (torch.rand(n, 3, size, size, generator=generator),
                torch.randint(0, self.classes, (n,), generator=generator),
                (torch.rand(n, 1, size, size, generator=generator) > 0.5).float())

    def small_model(self):
        return TinyMultiTask(self.width, self.offline_classes)

    def paper_model(self):
        return paper_models.ResUNet50(self.classes, self.backbone_weights if self.source == "fe" else None)

    def step(self, model, batch):
        x, y, mask = batch
        logits, mask_logits = model(x)
        losses = torch.stack([nn.functional.cross_entropy(logits, y),
                              nn.functional.binary_cross_entropy_with_logits(mask_logits, mask)])
        return (torch.exp(-model.log_var) * losses + model.log_var).sum(), accuracy(logits, y)


def fe_multitask_decoder(parent: str, size: int, train: bool):
    """CUB-200 item -> (image in [-1, 1], class, bird mask {0,1}) through FE apphub's task-6 pipeline: Normalize(mean 1,
    std 1, max 127.5), LongestMaxSize(size) and PadIfNeeded(size, zeros); in training also ShiftScaleRotate(0.2, 0.2,
    15 degrees, zero border) and a horizontal flip with probability 1/2 (random: python's `random`, seeded per run
    and per loader worker)."""
    from fastestimator.op.numpyop import forward_numpyop
    from fastestimator.op.numpyop.meta import Sometimes
    from fastestimator.op.numpyop.multivariate import HorizontalFlip, LongestMaxSize, PadIfNeeded, ShiftScaleRotate
    from fastestimator.op.numpyop.univariate import Normalize

    both = dict(image_in="image", image_out="image", mask_in="seg", mask_out="seg")
    ops = [Normalize(inputs="image", outputs="image", mean=1.0, std=1.0, max_pixel_value=127.5),
           LongestMaxSize(max_size=size, **both),
           PadIfNeeded(min_height=size, min_width=size, border_mode=cv2.BORDER_CONSTANT, value=0, mask_value=0, **both)]
    if train:
        ops += [ShiftScaleRotate(shift_limit=0.2, rotate_limit=15.0, scale_limit=0.2, border_mode=cv2.BORDER_CONSTANT,
                                 value=0, mask_value=0, **both),
                Sometimes(HorizontalFlip(**both))]
    state = {"mode": "train" if train else "eval"}

    def decode(item):
        image = read_image(f"{parent}/{item['image']}")
        seg = (scipy.io.loadmat(f"{parent}/{item['annotation']}")["seg"] > 0).astype(np.float32)
        sample = {"image": image, "seg": seg}
        forward_numpyop(ops, sample, state)
        return chw(sample["image"]), int(item["label"]), chw(sample["seg"])
    return decode
