"""core.optim and datagen's optimizers: two update steps on a one-parameter quadratic, worked out by hand, per
optimizer, as datagen builds it (datagen.branches.trial_optimizer with datagen's SGD momentum 0.9); then the same
steps against tf.keras' legacy optimizers (the optimizer_v2 code of the authors' TF 2.3/2.4); TF's and torch's SGD
momentum forms."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from core.errors import ConfigError
from core.optim import make_optimizer, optimizer_factory
from datagen.branches import trial_optimizer


def two_steps(factory, lr0: float, curvature: float = 2.0, lr1: float | None = None) -> list[float]:
    """w0 = 1 on f(w) = curvature / 2 * w^2 (g = curvature * w); two steps, the second at lr1 (default lr0)."""
    w = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    optimizer = factory([w], lr0)
    out = []
    for lr in (lr0, lr0 if lr1 is None else lr1):
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad()
        (0.5 * curvature * w ** 2).sum().backward()
        optimizer.step()
        out.append(float(w))
    return out


def test_datagen_sgd_is_tf_momentum_0_9():
    """g = 2w, lr 0.1 then 0.2 (a branch's new LR acts on a momentum built at the old one).
    step 1: g = 2, v = -0.1 * 2 = -0.2, w = 0.8
    step 2: g = 1.6, v = 0.9 * -0.2 - 0.2 * 1.6 = -0.5, w = 0.3
    (torch's form: b = 0.9 * 2 + 1.6 = 3.4, w = 0.8 - 0.2 * 3.4 = 0.12)"""
    assert two_steps(trial_optimizer("sgd", 0.9), 0.1, lr1=0.2) == pytest.approx([0.8, 0.3], abs=1e-12)


def test_datagen_rmsprop_is_keras_rho_0_9_without_momentum():
    """g = 2w, lr 0.01, rho 0.9, eps 1e-7; datagen's sgd_momentum 0.9 must not reach RMSprop.
    step 1: ms = 0.1 * 4 = 0.4, w = 1 - 0.01 * 2 / (0.63245553 + 1e-7) = 1 - 0.03162277 = 0.96837723
    step 2: g = 1.93675446, ms = 0.9 * 0.4 + 0.1 * 3.75101783 = 0.73510178,
            w = 0.96837723 - 0.01 * 1.93675446 / (0.85738077 + 1e-7) = 0.96837723 - 0.02258920 = 0.94578803
    (with momentum 0.9, step 2 would be w = 0.96837723 - 0.01 * (0.9 * 3.16227716 + 2.25892002) = 0.91729304)"""
    assert two_steps(trial_optimizer("rmsprop", 0.9), 0.01) == pytest.approx([0.96837723, 0.94578803], abs=2e-8)


def test_datagen_adam_is_keras_epsilon_hat():
    """Keras adds eps to sqrt(v) before bias correction. A gradient near eps shows it: g = 1e-6 w, lr 0.1.
    step 1: m = 1e-7, v = 1e-15, step size 0.1 * sqrt(0.001) / 0.1 = 0.031622777,
            w = 1 - 0.031622777 * 1e-7 / (3.1622777e-8 + 1e-7) = 1 - 0.0240253 = 0.9759747
            (torch's Adam: 1 - 0.1 * 1e-6 / (1e-6 + 1e-7) = 0.9090909)
    step 2: g = 9.759747e-7, m = 9e-8 + 9.759747e-8 = 1.8759747e-7, v = 9.99e-16 + 9.525266e-16 = 1.9515266e-15,
            step size 0.1 * sqrt(1 - 0.998001) / (1 - 0.81) = 0.023531673,
            w = 0.9759747 - 0.023531673 * 1.8759747e-7 / (4.4176086e-8 + 1e-7) = 0.9759747 - 0.0306187 = 0.9453560"""
    assert two_steps(trial_optimizer("adam", 0.9), 0.1, curvature=1e-6) == pytest.approx([0.9759747, 0.9453560],
                                                                                          abs=2e-7)


def test_momentum_is_sgds_only():
    w = [torch.nn.Parameter(torch.zeros(1))]
    for name in ("adam", "rmsprop"):
        with pytest.raises(ConfigError, match=f"momentum is SGD's only"):
            make_optimizer(name, w, 0.1, momentum=0.9)


@pytest.mark.parametrize("name, curvature, lr", [("sgd", 2.0, 0.1), ("rmsprop", 2.0, 0.01), ("adam", 1e-6, 0.1)])
def test_datagen_optimizers_match_tf_keras(name, curvature, lr):
    """The same two steps in tf.keras.optimizers.legacy (TF 2.3/2.4's optimizer_v2) on a float64 variable. TF keeps
    lr and eps in float32 (0.1 -> 0.10000000149), hence rel 1e-6; the differences the tests above pin are >= 3%."""
    tf = pytest.importorskip("tensorflow")
    keras_optimizer = {"sgd": lambda: tf.keras.optimizers.legacy.SGD(lr, momentum=0.9),
                       "rmsprop": lambda: tf.keras.optimizers.legacy.RMSprop(lr),
                       "adam": lambda: tf.keras.optimizers.legacy.Adam(lr)}[name]()
    w = tf.Variable([1.0], dtype=tf.float64)
    expected = []
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(0.5 * curvature * w ** 2)
        keras_optimizer.apply_gradients([(tape.gradient(loss, w), w)])
        expected.append(float(w.numpy()[0]))
    assert two_steps(trial_optimizer(name, 0.9), lr, curvature=curvature) == pytest.approx(expected, rel=1e-6)


# ---- SGD momentum in TensorFlow's form ----

def two_sgd_steps(form: str, lrs=(0.1, 0.2)) -> float:
    w = nn.Parameter(torch.tensor([1.0]))
    opt = optimizer_factory("sgd", momentum=0.9, momentum_form=form)([w], lrs[0])
    for lr in lrs:
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        (0.5 * w * w).sum().backward()  # f = w^2 / 2, gradient w
        opt.step()
    return w.item()


def test_tf_and_torch_momentum_differ_only_when_the_lr_changes():
    """docs/experiments.md §7.2/§7.3 (tf.optimizers.SGD(LR0, momentum=0.9) under LR schedules, §7.4): TF/Keras
    v = m v - lr g, w += v; PyTorch b = m b + g, w -= lr b. On f = w^2/2 from w = 1, m = 0.9:
      step 1 (lr 0.1), g = 1: both give w = 0.9 (TF v = -0.1; torch b = 1)
      step 2 (lr 0.2), g = 0.9: TF v = 0.9 * -0.1 - 0.2 * 0.9 = -0.27 -> w = 0.63
                                torch b = 0.9 * 1 + 0.9 = 1.8 -> w = 0.9 - 0.2 * 1.8 = 0.54
      with lr 0.1 kept: TF v = -0.09 - 0.09 = -0.18 -> 0.72; torch 0.9 - 0.1 * 1.8 = 0.72 (the same)."""
    assert two_sgd_steps("tf") == pytest.approx(0.63)
    assert two_sgd_steps("torch") == pytest.approx(0.54)
    assert two_sgd_steps("tf", (0.1, 0.1)) == pytest.approx(0.72)
    assert two_sgd_steps("torch", (0.1, 0.1)) == pytest.approx(0.72)
