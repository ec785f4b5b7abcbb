"""Optimizers used by the paper: Adam, SGD (with momentum) and RMSprop, built by name, computing what the authors'
TF/Keras 2.3-2.4 code computed (docs/experiments.md §2.3); `build_optimizer` adds the optimizers of parameters that a
model trains at a fixed LR of their own (`WithFixedLR`).

  adam     KerasAdam: Keras' epsilon-hat form (eps 1e-7 added to sqrt(v) before bias correction, not after)
  rmsprop  torch.optim.RMSprop(alpha=0.9, eps=1e-7): Keras' rho 0.9, eps outside the sqrt, rms slot starting at 0;
           no momentum (Keras' default; with momentum Keras moves eps inside the sqrt, which torch cannot express)
  sgd      TFMomentumSGD (momentum_form="tf", Keras' v = m v - lr g) or torch.optim.SGD (momentum_form="torch")
"""
from __future__ import annotations

import torch

from typing import Callable, Iterable

from core.errors import CheckpointError, ConfigError

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter], float], torch.optim.Optimizer]

OPTIMIZERS = ("adam", "sgd", "rmsprop")
MOMENTUM_FORMS = ("torch", "tf")


class TFMomentumSGD(torch.optim.Optimizer):
    """SGD with momentum in TensorFlow/Keras' form: v = m * v - lr * g; w += v (tf.keras.optimizers.SGD, nesterov
    off). PyTorch's SGD keeps b = m * b + g and steps w -= lr * b, so the LR multiplies the whole buffer; the two agree
    while the LR is constant and differ as soon as it changes mid-run (ARC, SC, the decays): in TF's form a new LR
    acts on new gradients only. `weight_decay` adds wd * w to the gradient, as torch.optim.SGD does."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=weight_decay) if weight_decay else p.grad
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p)
                velocity = state["velocity"]
                velocity.mul_(momentum).add_(grad, alpha=-lr)
                p.add_(velocity)
        return loss


class KerasAdam(torch.optim.Optimizer):
    """Adam as tf.keras.optimizers.Adam computes it (TF 2.3/2.4 `ResourceApplyAdam`, and Keras 2.11+ alike):
    m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; w -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps).
    torch.optim.Adam adds eps to sqrt(v / (1 - b2^t)) instead, i.e. Keras' eps is torch's eps / sqrt(1 - b2^t): 32x
    larger at the first step. They differ where |g| is within a few eps of zero. `weight_decay` adds wd * w to the
    gradient, as torch.optim.Adam does (Keras' Adam has none; no caller of the paper's tasks sets it)."""

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-7,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            (beta1, beta2), eps, weight_decay = group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=weight_decay) if weight_decay else p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"], state["v"] = torch.zeros_like(p), torch.zeros_like(p)
                state["step"] += 1
                t, m, v = state["step"], state["m"], state["v"]
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = group["lr"] * (1 - beta2 ** t) ** 0.5 / (1 - beta1 ** t)
                p.addcdiv_(m, v.sqrt().add_(eps), value=-step_size)
        return loss


def make_optimizer(name: str, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                   eps: float | None = None, momentum_form: str = "torch") -> torch.optim.Optimizer:
    """Keras' optimizers with Keras' defaults (Adam/RMSprop eps 1e-7, RMSprop rho 0.9), as the paper's TF code ran
    them. `momentum` is SGD's only; `momentum_form` (sgd): "torch" (torch.optim.SGD) or "tf" (TFMomentumSGD)."""
    if not lr > 0:
        raise ConfigError(f"optimizer.lr must be > 0, got {lr}")
    if momentum and name != "sgd":
        raise ConfigError(f"optimizer: momentum {momentum} given to {name}; momentum is SGD's only (Keras' {name} "
                          "as the paper ran it has none)")
    if name == "adam":
        return KerasAdam(params, lr=lr, eps=1e-7 if eps is None else eps, weight_decay=weight_decay)
    if name == "sgd":
        if momentum_form == "tf":
            return TFMomentumSGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-7 if eps is None else eps,
                                   weight_decay=weight_decay)
    raise ConfigError(f"optimizer.name: unknown optimizer '{name}' (choose from {', '.join(OPTIMIZERS)})")


def optimizer_factory(name: str, momentum: float = 0.0, weight_decay: float = 0.0,
                      momentum_form: str = "torch") -> OptimizerFactory:
    """`(params, lr) -> optimizer` for core.training.Run; an unknown name or momentum form fails here, before any
    model is built."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer.name: unknown optimizer '{name}' (choose from {', '.join(OPTIMIZERS)})")
    if momentum_form not in MOMENTUM_FORMS:
        raise ConfigError(f"momentum_form: unknown form '{momentum_form}' (choose from {', '.join(MOMENTUM_FORMS)})")
    if momentum and name != "sgd":
        raise ConfigError(f"optimizer: momentum {momentum} given to {name}; momentum is SGD's only (Keras' {name} "
                          "as the paper ran it has none)")

    def make(params, lr: float) -> torch.optim.Optimizer:
        return make_optimizer(name, params, lr, momentum, weight_decay, momentum_form=momentum_form)

    return make


def get_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


class WithFixedLR:
    """The run's optimizer plus optimizers of parameters trained at a fixed LR of their own.

    A model lists such parameters in `fixed_lr_parameters() -> [(optimizer name, lr, [params])]`. Evidence: Table 1's
    task 6 as FastEstimator's apphub trains it (multi_task_learning/uncertainty_weighted_loss, torch and TF): the
    Kendall log-variances are a model of their own with Adam(1e-5), and the LR schedule acts on the ResNet50+UNet
    only; so ARC's decisions (and datagen's branch multipliers) leave them at 1e-5 [I: the datagen code is not
    public]. `param_groups` are the run's optimizer's, so get_lr / set_lr / schedules see that optimizer alone;
    zero_grad, step and the state dicts cover all of them."""

    def __init__(self, main: torch.optim.Optimizer, fixed: list[torch.optim.Optimizer]):
        self.main, self.fixed = main, fixed

    @property
    def param_groups(self):
        return self.main.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in (self.main, *self.fixed):
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):
        loss = self.main.step(closure)
        for optimizer in self.fixed:
            optimizer.step()
        return loss

    def state_dict(self) -> dict:
        return {"main": self.main.state_dict(), "fixed_lr": [o.state_dict() for o in self.fixed]}

    def load_state_dict(self, state: dict) -> None:
        if not (isinstance(state, dict) and state.keys() == {"main", "fixed_lr"}
                and len(state["fixed_lr"]) == len(self.fixed)):
            raise CheckpointError(f"optimizer state does not match this model: it trains {len(self.fixed)} parameter "
                                  "set(s) at a fixed LR of their own (a checkpoint of another model or version)")
        self.main.load_state_dict(state["main"])
        for optimizer, fixed_state in zip(self.fixed, state["fixed_lr"]):
            optimizer.load_state_dict(fixed_state)


def build_optimizer(factory: OptimizerFactory, model: torch.nn.Module, lr: float):
    """`factory(model.parameters(), lr)`, or, when the model has `fixed_lr_parameters()`, a WithFixedLR whose run
    optimizer holds the other parameters."""
    listing = getattr(model, "fixed_lr_parameters", None)
    if listing is None:
        return factory(model.parameters(), lr)
    fixed = [(name, fixed_lr, list(params)) for name, fixed_lr, params in listing()]
    fixed_ids = {id(p) for _, _, params in fixed for p in params}
    main = factory([p for p in model.parameters() if id(p) not in fixed_ids], lr)
    return WithFixedLR(main, [make_optimizer(name, params, fixed_lr) for name, fixed_lr, params in fixed])
