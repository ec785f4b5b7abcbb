"""Task interface: data, model, loss and evaluation metric (with its direction).

A task is built for one device (`device=`, from the profile) and keeps its data there or moves each batch
there. It holds its data as in-memory tensors (or a loader for the `paper` profile) and exposes:
  * `train_batches(generator)` — an iterator over training batches for one epoch, shuffled by
    the given torch.Generator so that the checkpointed generator state makes resume exact;
  * `build_model()` — a fresh nn.Module (initialised from the global torch RNG);
  * `train_loss(model, batch)` — scalar loss tensor of one batch;
  * `train_objective(model, batch)` — (loss to backpropagate, loss to record); by default train_loss twice. A task
    whose optimiser minimises more than the loss it reports (RetinaNet: + L2) returns the two apart;
  * `evaluate(model)` — (mean eval loss, metric) on the eval split;
  * `steps_per_epoch` — training steps per epoch when known before training (None otherwise); per-step
    schedules (super-convergence) need it.
"""
from __future__ import annotations

import abc
from typing import Iterator, Sequence

import torch
from torch import nn


class Task(abc.ABC):
    name: str = "task"
    loss_name: str = "ce"  # key of the training loss in FE logs
    metric_name: str = "accuracy"
    metric_mode: str = "max"  # "max" or "min": the direction in which the metric improves
    steps_per_epoch: int | None = None

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)  # the model and every batch live here

    @abc.abstractmethod
    def train_batches(self, generator: torch.Generator) -> Iterator:
        ...

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        ...

    @abc.abstractmethod
    def train_loss(self, model: nn.Module, batch) -> torch.Tensor:
        ...

    def train_objective(self, model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to backpropagate, loss to record: history, log, ARC) of one batch."""
        loss = self.train_loss(model, batch)
        return loss, loss

    @abc.abstractmethod
    def evaluate(self, model: nn.Module) -> tuple[float, float]:
        ...


def host_to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`t` on `device`. A CPU tensor bound for a GPU goes through pinned memory, asynchronously: a plain
    `.to("cuda")` makes the host wait until the GPU has finished all its queued work (torch synchronizes the stream
    after the copy; torch.cuda.set_sync_debug_mode flags it), so the GPU idles while the host prepares the next
    step, and from pageable memory even `non_blocking=True` may wait (CUDA stages the copy through pinned memory)."""
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def tensor_batches(tensors: Sequence[torch.Tensor], batch_size: int, generator: torch.Generator | None,
                   drop_last: bool = False) -> Iterator[tuple[torch.Tensor, ...]]:
    """Shuffled (generator given) or ordered mini-batches over aligned tensors. The order is drawn on the CPU (the
    generator's state is what a checkpoint holds) and copied once per epoch to each GPU that holds a tensor:
    indexing a GPU tensor with a CPU index would copy the index, and wait, at every batch."""
    n = len(tensors[0])
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    orders = {device: host_to_device(order, device) for device in {t.device for t in tensors}}
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield tuple(t[orders[t.device][start : start + batch_size]] for t in tensors)


class ClassificationTask(Task):
    """Image/vector classification with sparse cross-entropy and accuracy on held-out data."""

    def __init__(self, train: Sequence[torch.Tensor], eval: Sequence[torch.Tensor], batch_size: int,
                 eval_batch_size: int | None = None, device: str | torch.device = "cpu"):
        super().__init__(device)
        self.train_data, self.eval_data = tuple(train), tuple(eval)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or max(batch_size, 256)

    def train_batches(self, generator):
        for batch in tensor_batches(self.train_data, self.batch_size, generator):
            yield tuple(t.to(self.device) for t in batch)

    def train_loss(self, model, batch):
        x, y = batch
        return nn.functional.cross_entropy(model(x), y)

    @torch.no_grad()
    def evaluate(self, model):
        total_loss, correct, n = 0.0, 0, 0
        for x, y in tensor_batches(self.eval_data, self.eval_batch_size, None):
            x, y = x.to(self.device), y.to(self.device)
            logits = model(x)
            total_loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
        return total_loss / n, correct / n
