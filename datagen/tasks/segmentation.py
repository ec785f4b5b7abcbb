"""Tasks 6, 11, 12 of Table 1: uncertainty-weighted multi-task (6) and UNet segmentation (11, 12).

Losses [docs/experiments.md §2.2 plausible mapping, I]: task 11 per-pixel binary CE, task 12 soft-dice loss, task 6
Kendall et al. uncertainty weighting sum_i exp(-s_i) L_i + s_i of class CE and per-pixel binary CE, with the
log-variances s_i learned with the model. Offline stand-ins: generated lung X-rays (11) and shape images with
class and mask (6, 12). Paper data: FastEstimator's montgomery and cub200 loaders, images resized to 512x512
as in the FastEstimator apphub [I]; cub200 has no split, so a fixed 20% is held out for validation.
"""
from __future__ import annotations

import cv2
import numpy as np
import scipy.io
import torch
from torch import nn
from torch.utils.data import Subset

from datagen.tasks import offline_data, paper_models
from datagen.tasks.base import DatagenTask, MappedDataset, accuracy


def soft_dice(logits: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Mean over the batch of the soft Dice coefficient of sigmoid(logits) and the mask."""
    prob = torch.sigmoid(logits).flatten(1)
    mask = mask.flatten(1)
    return ((2 * (prob * mask).sum(1) + eps) / (prob.sum(1) + mask.sum(1) + eps)).mean()


def hard_dice(logits: torch.Tensor, mask: torch.Tensor) -> float:
    return soft_dice(logits * 1e4, mask).item()  # saturated sigmoid = thresholded mask


def held_out_split(dataset, eval_fraction: float = 0.2, seed: int = 0):
    order = np.random.default_rng(seed).permutation(len(dataset))
    n_eval = int(len(order) * eval_fraction)
    return Subset(dataset, order[n_eval:].tolist()), Subset(dataset, order[:n_eval].tolist())


def read_resized(path: str, size: int, flags=cv2.IMREAD_COLOR) -> np.ndarray:
    image = cv2.imread(path, flags)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (size, size))


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


class MontgomeryUNet(DatagenTask):
    """Task 11: UNet lung segmentation on chest X-rays, per-pixel binary CE; metric Dice."""
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
        parent, size = data.parent_path, self.image_size

        def decode(item):
            image = chw(read_resized(f"{parent}/{item['image']}", size, cv2.IMREAD_GRAYSCALE)) / 255.0
            masks = [read_resized(f"{parent}/{item[k]}", size, cv2.IMREAD_GRAYSCALE) for k in ("mask_left", "mask_right")]
            return image, chw(((masks[0] > 0) | (masks[1] > 0)).astype(np.float32))
        return held_out_split(MappedDataset(data, decode))

    def standin(self, n, generator):
        size = self.image_size
        return (torch.rand(n, self.channels, size, size, generator=generator),
                (torch.rand(n, 1, size, size, generator=generator) > 0.5).float())

    def small_model(self):
        return small_unet(self.channels, self.width)

    def paper_model(self):
        return paper_models.UNet(self.channels, 1)

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
    """Mini multi-task net: shared conv encoder, class head and upsampling mask head, learned log-variances."""

    def __init__(self, width: int, classes: int):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                     nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU())
        self.classify = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, classes))
        self.segment = nn.Sequential(nn.ConvTranspose2d(2 * width, width, 2, stride=2), nn.ReLU(),
                                     nn.Conv2d(width, 1, 1))
        self.log_var = nn.Parameter(torch.zeros(2))

    def forward(self, x):
        h = self.encoder(x)
        return self.classify(h), self.segment(h)


class Cub200MultiTask(DatagenTask):
    """Task 6: ResNet50 + UNet, bird class and bird mask, uncertainty-weighted (Kendall et al.)."""
    name, number, loss_name = "cub200_multitask", 6, "uncertainty_loss"
    dataset = "cub200"
    image_size, offline_size, classes, offline_classes = 512, 16, 200, 3

    def offline_data(self, n_train, n_eval, seed):
        n_eval = n_eval or 64
        return offline_data.split(offline_data.shapes((n_train or 256) + n_eval, self.offline_size, seed + 6),
                                  n_train, n_eval)

    def fe_data(self, root_dir):
        from fastestimator.dataset.data import cub200
        data = cub200.load_data(root_dir=root_dir)
        return held_out_split(MappedDataset(data, cub200_decoder(data.parent_path, self.image_size)))

    def standin(self, n, generator):
        size = self.image_size
        return (torch.rand(n, 3, size, size, generator=generator),
                torch.randint(0, self.classes, (n,), generator=generator),
                (torch.rand(n, 1, size, size, generator=generator) > 0.5).float())

    def small_model(self):
        return TinyMultiTask(self.width, self.offline_classes)

    def paper_model(self):
        return paper_models.ResNetUNet(self.classes)

    def step(self, model, batch):
        x, y, mask = batch
        logits, mask_logits = model(x)
        losses = torch.stack([nn.functional.cross_entropy(logits, y),
                              nn.functional.binary_cross_entropy_with_logits(mask_logits, mask)])
        return (torch.exp(-model.log_var) * losses + model.log_var).sum(), accuracy(logits, y)
