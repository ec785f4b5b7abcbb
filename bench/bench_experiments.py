"""Paper-profile CIFAR10 epoch time: the ResNet9 + augmentation + Adam step on stand-in
tensors of the real shape (batch 128, 3x32x32), timed on CUDA when present, else a few CPU steps.
Prints key=value lines; epoch = 391 steps (50k images / 128, last partial batch kept)."""
from __future__ import annotations

import time

import torch

from experiments.tasks.images import ResNet9, augment

STEPS_PER_EPOCH = 391


def main() -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model = ResNet9(3, 64).to(device)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3, eps=1e-7)
    x, y = torch.randn(128, 3, 32, 32, device=device), torch.randint(0, 10, (128,), device=device)
    generator = torch.Generator().manual_seed(0)
    steps = 50 if device.type == "cuda" else 3

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(augment(x, 4, 8, generator)), y)
        loss.backward()
        optimizer.step()
        return loss.item()  # the loop reads every step's loss (docs/experiments.md §5.2), which syncs the device

    step()  # warm-up (cuDNN autotune, allocator)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    per_step = (time.perf_counter() - start) / steps
    print(f"experiments_cifar_paper_device={device.type}")
    print(f"experiments_cifar_paper_step_seconds={per_step:.4f}")
    print(f"experiments_cifar_paper_epoch_seconds={per_step * STEPS_PER_EPOCH:.1f}")


if __name__ == "__main__":
    main()
