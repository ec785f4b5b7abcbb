"""Keras' layer defaults for the PyTorch ports of models the authors wrote in TF/Keras (docs/experiments.md §2.3).

torch and Keras layers start differently; `keras_conventions_(model)` gives a built model the start of the same
layers in Keras 2.4 (the tf.keras of the authors' TF 2.3/2.4; the defaults of its layers and initializers):

    torch module                        Keras layer                     start
    Linear, Conv1d/2d/3d, ConvTranspose Dense, ConvND, Conv2DTranspose  weight glorot_uniform, bias 0
    Embedding                           Embedding                       uniform(-0.05, 0.05)
    LSTM, GRU, RNN                      LSTM, GRU, SimpleRNN            kernel glorot_uniform, recurrent orthogonal,
                                                                        bias 0; LSTM forget gate 1 (unit_forget_bias)
    BatchNorm1d/2d/3d                   BatchNormalization              momentum 0.99 (torch 0.01), epsilon 1e-3

(torch: kaiming_uniform(a=sqrt(5)) weights with a U(+-1/sqrt(fan_in)) bias, N(0, 1) embeddings, U(+-1/sqrt(units))
RNN weights, BatchNorm momentum 0.1 and eps 1e-5.) torch's xavier_uniform_ is glorot_uniform: on a conv weight
(out, in, k...) its fans are in*k and out*k, as Keras'; on ConvTranspose's (in, out, k...) they swap, and the limit
sqrt(6 / (fan_in + fan_out)) is the same. Keras' orthogonal on the (u, gates*u) recurrent kernel has orthonormal
rows; torch stores the transpose, and orthogonal_ there gives the same matrices. Keras' LSTM has one bias, torch's
bias_ih + bias_hh: the forget-gate 1 goes in bias_ih (torch gate order i, f, g, o), bias_hh stays 0. Keras' GRU
(reset_after=True, TF2's default) has torch's two biases, both 0.

BatchNorm: only a field still at torch's default (momentum 0.1, eps 1e-5, each on its own) changes, so a value the
model sets on purpose stays (ResNet9's Keras momentum 0.8 = torch 0.2, docs/experiments.md §7.1; torchvision
Inception's eps 1e-3). `batch_norm=False` leaves every BatchNorm alone; `bn_eps` is for Keras models that set their
own (keras.applications DenseNet / ResNet50: 1.001e-5). `skip`: subtrees left alone (pretrained weights, layers the
authors' code initialises its own way).
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

BN_MOMENTUM = 0.01  # Keras BatchNormalization(momentum=0.99): torch's momentum is 1 - Keras'
BN_EPS = 1e-3  # Keras BatchNormalization(epsilon=1e-3)
APPLICATIONS_BN_EPS = 1.001e-5  # keras.applications DenseNet121 / ResNet50 set BatchNormalization(epsilon=1.001e-5)
EMBEDDING_LIMIT = 0.05  # Keras Embedding: embeddings_initializer="uniform" = RandomUniform(-0.05, 0.05)
TORCH_BN_MOMENTUM, TORCH_BN_EPS = 0.1, 1e-5  # torch's BatchNorm defaults: the values this module replaces

_DENSE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_RECURRENT = {"orthogonal": nn.init.orthogonal_, "glorot_uniform": nn.init.xavier_uniform_}


def _rnn_(module: nn.RNNBase, recurrent) -> None:
    """Per layer and direction, in torch's parameter order (weight_ih, weight_hh, bias_ih, bias_hh)."""
    if getattr(module, "proj_size", 0):
        raise NotImplementedError("keras_conventions_: LSTM with proj_size has no Keras twin")
    for name, p in module.named_parameters(recurse=False):
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(p)
        elif name.startswith("weight_hh"):
            recurrent(p)
        else:
            nn.init.zeros_(p)
            if isinstance(module, nn.LSTM) and name.startswith("bias_ih"):
                nn.init.ones_(p[module.hidden_size:2 * module.hidden_size])  # unit_forget_bias


@torch.no_grad()
def keras_conventions_(model: nn.Module, *, init: bool = True, batch_norm: bool = True, bn_eps: float = BN_EPS,
                       recurrent_initializer: str = "orthogonal", skip: Iterable[nn.Module] = ()) -> nn.Module:
    """Keras 2.4's initialisation (`init`) and BatchNormalization momentum/epsilon (`batch_norm`) on every module of
    `model` outside the subtrees in `skip`, in `model.modules()` order (the draws are reproducible under a seed).
    `recurrent_initializer`: "orthogonal" (Keras' default) or "glorot_uniform" (a model that sets it). Returns model."""
    skipped = {id(m) for s in skip for m in s.modules()}
    recurrent = _RECURRENT[recurrent_initializer]
    for m in model.modules():
        if id(m) in skipped:
            continue
        if init and isinstance(m, _DENSE):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif init and isinstance(m, nn.Embedding):
            nn.init.uniform_(m.weight, -EMBEDDING_LIMIT, EMBEDDING_LIMIT)
            if m.padding_idx is not None:
                m.weight[m.padding_idx].zero_()
        elif init and isinstance(m, nn.RNNBase):
            _rnn_(m, recurrent)
        elif batch_norm and isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.momentum == TORCH_BN_MOMENTUM:
                m.momentum = BN_MOMENTUM
            if m.eps == TORCH_BN_EPS:
                m.eps = bn_eps
    return model
