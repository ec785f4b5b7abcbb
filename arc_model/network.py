"""The ARC network in PyTorch, layer for layer the authors' Keras `lstm_stacked` (docs/experiments.md §4.1, 79,043 params).

Conv1D(32,5,relu) -> MaxPool(2) -> Conv1D(64,5,relu) -> MaxPool(2) -> LSTM(64, seq) -> LSTM(64)
-> Dense(32,relu) -> Dense(3, softmax). Input (batch, 300, 3) channels-last, as in Keras.

Keras LSTMs have one bias per gate set; PyTorch has bias_ih and bias_hh. We keep bias_hh at zero
and frozen, so the trainable count is Keras' 79,043 and weights map one-to-one (arc_model.weights).
Initialisation follows Keras defaults (glorot-uniform kernels, orthogonal recurrent kernels, zero
biases, forget-gate bias 1), so a candidate starts where the authors' Keras model started.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

PARAMETERS = 79_043  # docs/experiments.md §4.1, counted from the published arc.h5
HIDDEN = 64


class ARCNet(nn.Module):
    def __init__(self, init: bool = True):
        """init=False skips the Keras initialisation, for a network whose every weight is loaded next."""
        super().__init__()
        self.conv1 = nn.Conv1d(3, 32, 5)
        self.conv2 = nn.Conv1d(32, 64, 5)
        self.lstm1 = nn.LSTM(64, HIDDEN, batch_first=True)
        self.lstm2 = nn.LSTM(HIDDEN, HIDDEN, batch_first=True)
        self.dense = nn.Linear(HIDDEN, 32)
        self.out = nn.Linear(32, 3)
        for lstm in (self.lstm1, self.lstm2):
            lstm.bias_hh_l0.requires_grad_(False)  # Keras has a single bias: torch's second one is frozen at 0
        if init:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras defaults (draws from torch's global RNG, so a seed fixes the candidate)."""
        for layer in (self.conv1, self.conv2, self.dense, self.out):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        for lstm in (self.lstm1, self.lstm2):
            nn.init.xavier_uniform_(lstm.weight_ih_l0)
            nn.init.orthogonal_(lstm.weight_hh_l0)
            with torch.no_grad():
                lstm.bias_ih_l0.zero_()
                lstm.bias_ih_l0[HIDDEN:2 * HIDDEN] = 1.0  # unit_forget_bias=True
                lstm.bias_hh_l0.zero_()  # Keras has a single bias: this one stays 0 (frozen in __init__)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 300, 3) -> logits (batch, 3); softmax of these is Keras' output."""
        h = F.max_pool1d(F.relu(self.conv1(x.transpose(1, 2))), 2)
        h = F.max_pool1d(F.relu(self.conv2(h)), 2)
        h, _ = self.lstm1(h.transpose(1, 2))
        h, _ = self.lstm2(h)
        return self.out(F.relu(self.dense(h[:, -1])))

    @torch.no_grad()
    def probabilities(self, x) -> torch.Tensor:
        """Softmax output for a batch (or a single (300, 3) input) of numpy/torch inputs."""
        x = torch.as_tensor(x, dtype=torch.float32, device=self.conv1.weight.device)
        return torch.softmax(self.forward(x.reshape(-1, 300, 3)), dim=1)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in trainable_parameters(model))
