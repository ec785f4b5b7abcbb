"""Optimizers used by the paper: Adam, SGD (with momentum) and RMSprop, built by name."""
from __future__ import annotations

import torch

from typing import Callable, Iterable

from core.errors import ConfigError

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter], float], torch.optim.Optimizer]

OPTIMIZERS = ("adam", "sgd", "rmsprop")


def make_optimizer(name: str, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                   eps: float | None = None) -> torch.optim.Optimizer:
    """Keras defaults where the paper's TF code relied on them (Adam/RMSprop eps 1e-7, RMSprop rho 0.9)."""
    if not lr > 0:
        raise ConfigError(f"optimizer.lr must be > 0, got {lr}")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, eps=1e-7 if eps is None else eps, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7 if eps is None else eps,
                                   momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"optimizer.name: unknown optimizer '{name}' (choose from {', '.join(OPTIMIZERS)})")


def optimizer_factory(name: str, momentum: float = 0.0, weight_decay: float = 0.0) -> OptimizerFactory:
    """`(params, lr) -> optimizer` for core.training.Run; an unknown name fails here, before any model is built."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer.name: unknown optimizer '{name}' (choose from {', '.join(OPTIMIZERS)})")

    def make(params, lr: float) -> torch.optim.Optimizer:
        return make_optimizer(name, params, lr, momentum, weight_decay)

    return make


def get_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
