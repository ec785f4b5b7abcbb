"""The model-selection proxy task (paper §3.5/A.2, docs/experiments.md §6): a WideResNet on SVHN Cropped.

paper: WRN-28-2 as in the authors' repo (source/proxy_test/wideresnet_svhn.py) — N = 4 blocks per stage at widths
32/64/128, each block conv-BN-ReLU x2 on the branch, then shortcut + branch with no activation after the add; the
shortcut is the identity, or a linear 1x1 conv (with bias) where the width changes; MaxPooling2D(2) between stages
instead of strided convs, global average pooling + Dense(10); dropout 0. As Keras builds it, every conv has a bias
(Conv2D default), every BN is Keras' BatchNormalization (momentum 0.99 = PyTorch 0.01, epsilon 1e-3) and every conv
and the Dense start glorot_uniform with zero bias (core.keras_init, docs/experiments.md §2.3). Input x/255;
CoarseDropout (1 hole of 8x8, fill 0) on every training image, as FE applies it. Adam, batch 128.
mini/smoke: the same network family (depth 10: one block per stage) on scikit-learn's 8x8 digits with a
2x2 hole, offline.
The stem is the authors' __conv1_block: 3x3 conv to 16 channels + BN + ReLU.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.inputs import require, required
from core.keras_init import keras_conventions_
from core.tasks import ClassificationTask, host_to_device, tensor_batches
from core.tasks.digits import digits_tensors


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    """Conv2D(3x3, 'same', bias) - BatchNormalization - ReLU (Keras defaults: WideResNet applies core.keras_init)."""
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


class Block(nn.Module):
    """The authors' __conv2_block: shortcut(x) + ReLU(BN(conv(ReLU(BN(conv x))))), no activation after the add;
    shortcut = identity, or a linear 1x1 conv with bias where the width changes."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(*conv_bn_relu(c_in, c_out), *conv_bn_relu(c_out, c_out))
        self.shortcut = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x):
        return self.shortcut(x) + self.body(x)


class WideResNet(nn.Module):
    def __init__(self, depth: int = 28, width: int = 2, in_channels: int = 3, classes: int = 10):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6N+4, got {depth}")
        blocks = (depth - 4) // 6
        layers: list[nn.Module] = conv_bn_relu(in_channels, 16)
        c_in = 16
        for stage, base in enumerate((16, 32, 64)):
            if stage:
                layers.append(nn.MaxPool2d(2))
            for _ in range(blocks):
                layers.append(Block(c_in, base * width))
                c_in = base * width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, classes)
        keras_conventions_(self)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def coarse_dropout(x: torch.Tensor, hole: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one hole x hole square per image at a uniform position (albumentations CoarseDropout, p=1)."""
    n, _, h, w = x.shape
    draws = torch.stack([torch.randint(0, h - hole + 1, (n,), generator=generator),
                         torch.randint(0, w - hole + 1, (n,), generator=generator)])  # on the CPU: top, then left
    top, left = host_to_device(draws, x.device)  # the images may live on the GPU: one copy, no wait
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((rows >= top.view(n, 1, 1)) & (rows < (top + hole).view(n, 1, 1))
              & (cols >= left.view(n, 1, 1)) & (cols < (left + hole).view(n, 1, 1)))
    return x.masked_fill(inside.unsqueeze(1), 0.0)


class ProxyTask(ClassificationTask):
    """Images stored as uint8 (SVHN train is 73k x 3 x 32 x 32); scaled to [0, 1] per batch."""

    name = "svhn_proxy"

    def __init__(self, train, eval_, batch_size: int, depth: int, width: int, hole: int, device: str = "cpu"):
        super().__init__(train, eval_, batch_size, device=device)
        self.depth, self.width, self.hole = depth, width, hole
        self.in_channels = train[0].shape[1]

    def build_model(self) -> nn.Module:
        return WideResNet(self.depth, self.width, self.in_channels)

    def train_batches(self, generator):
        for x, y in tensor_batches(self.train_data, self.batch_size, generator):
            x = coarse_dropout(x.float() / 255.0, self.hole, generator)
            yield x.to(self.device), y.to(self.device)

    @torch.no_grad()
    def evaluate(self, model):
        total, correct, n = 0.0, 0, 0
        for x, y in tensor_batches(self.eval_data, self.eval_batch_size, None):
            x, y = x.to(self.device).float() / 255.0, y.to(self.device)
            logits = model(x)
            total += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
        return total / n, correct / n


def svhn_proxy(root_dir: str, batch_size: int = 128, depth: int = 28, width: int = 2, device: str = "cpu") -> ProxyTask:
    """paper: SVHN Cropped train (73,257) for training, test (26,032) as eval, every epoch (docs/experiments.md §6)."""
    require(svhn_proxy.paper_inputs(root_dir), "svhn_cropped")
    from fastestimator.dataset.data import svhn_cropped

    train_ds, test_ds = svhn_cropped.load_data(root_dir=root_dir)

    def tensors(ds):
        x = torch.tensor(np.asarray(ds["x"]), dtype=torch.uint8).permute(0, 3, 1, 2).contiguous()
        return x, torch.tensor(np.asarray(ds["y"]).reshape(-1), dtype=torch.long)

    return ProxyTask(tensors(train_ds), tensors(test_ds), batch_size, depth, width, hole=8, device=device)


svhn_proxy.paper_inputs = lambda root_dir, **_: required("svhn_cropped", root_dir)  # `make check-data` lists these


def digits_proxy(batch_size: int = 32, depth: int = 10, width: int = 1, n_train: int | None = None,
                 device: str = "cpu") -> ProxyTask:
    """mini/smoke: scikit-learn's digits as uint8 images, 2x2 hole (8x8 on 32 px scaled to 8 px)."""
    (x, y), (xe, ye) = digits_tensors(n_train)
    as_uint8 = lambda t: (t * 255).round().to(torch.uint8)
    return ProxyTask((as_uint8(x), y), (as_uint8(xe), ye), batch_size, depth, width, hole=2, device=device)
