"""Common base of the 12 Table-1 tasks (docs/experiments.md §2.2): one class per task, three data sources, two sizes.

Every task keeps its type and loss in every profile; only the data and the model size change:
  * source="offline" (smoke/mini): small data that ships with installed packages or is generated;
  * source="fe" (paper): the FastEstimator loader of the paper's dataset, read from root_dir=paths.data; the files
    it reads (core.inputs.REGISTRY[`dataset`], `paper_inputs`) are checked before any work, so FE never downloads;
  * source="standin" (tests): random tensors with the real shapes of the paper data.
  * arch="small" (smoke/mini) or "paper" (the table's architecture, datagen/tasks/paper_models.py).
A subclass defines `step(model, batch) -> (loss, metric)` once; training and evaluation both use it, so the
validation loss that labels a point (docs/experiments.md §2 step 5) is the training loss on held-out data.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from core.inputs import Required, require, required
from core.errors import ConfigError
from core.tasks import Task, host_to_device, tensor_batches

SOURCES = ("offline", "fe", "standin")
ARCHS = ("small", "paper")


class DatagenTask(Task):
    number = 0  # row of Table 1
    dataset = ""  # the paper dataset's key in core.inputs.REGISTRY (source="fe")
    eval_needs_grad = False  # adversarial training needs input gradients to compute its eval loss

    def __init__(self, source: str = "offline", arch: str = "small", batch_size: int = 32,
                 eval_batch_size: int | None = None, n_train: int | None = None, n_eval: int | None = None,
                 width: int = 8, root_dir: str | None = None, num_workers: int = 0, data_seed: int = 0,
                 image_size: int | None = None, device: str = "cpu"):
        super().__init__(device)
        if source not in SOURCES:
            raise ConfigError(f"{self.name}.source must be one of {SOURCES}, got '{source}'")
        if arch not in ARCHS:
            raise ConfigError(f"{self.name}.arch must be one of {ARCHS}, got '{arch}'")
        self.source, self.arch, self.width, self.root_dir = source, arch, width, root_dir
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers = num_workers
        if image_size is not None:  # paper image side (tests shrink the 512x512 UNets, see tests)
            self.image_size = image_size
        if source == "offline":
            self.train_set, self.eval_set = self.offline_data(n_train, n_eval, data_seed)
        elif source == "fe":
            if root_dir is None:  # FE's loaders would fall back to ~/fastestimator_data and download there
                raise ConfigError(f"{self.name}: source=fe needs root_dir (paths.data)")
            require(self.paper_inputs(root_dir, **self.input_options()), self.name)
            self.train_set, self.eval_set = self.fe_data(root_dir)
        else:
            generator = torch.Generator().manual_seed(data_seed)
            self.train_set = self.standin(n_train or 2 * batch_size, generator)
            self.eval_set = self.standin(n_eval or batch_size, generator)

    # ---- the files of source="fe" (`make check-data` lists the same for `make check-data`) ------------------
    @classmethod
    def paper_inputs(cls, root_dir: str | None = None, source: str = "fe", **_) -> list[Required]:
        """The files this task reads with source="fe" and these constructor arguments (none otherwise)."""
        return required(cls.dataset, root_dir) if source == "fe" and root_dir is not None else []

    def input_options(self) -> dict:
        """Constructor arguments beside root_dir that `paper_inputs` needs (MitMovieNER: where BERT lies)."""
        return {}

    # ---- what a task defines ------------------------------------------------------------------
    def offline_data(self, n_train, n_eval, seed) -> tuple:
        raise NotImplementedError

    def fe_data(self, root_dir) -> tuple:
        raise NotImplementedError

    def standin(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def small_model(self) -> nn.Module:
        raise NotImplementedError

    def paper_model(self) -> nn.Module:
        raise NotImplementedError

    def step(self, model: nn.Module, batch) -> tuple[torch.Tensor, float]:
        raise NotImplementedError

    # ---- the core.tasks.Task interface ----------------------------------------------------------
    def build_model(self) -> nn.Module:
        return self.paper_model() if self.arch == "paper" else self.small_model()

    def _batches(self, data, batch_size: int, generator: torch.Generator | None) -> Iterator:
        if isinstance(data, tuple):  # in-memory tensors
            batches = tensor_batches(data, batch_size, generator)
        else:  # a lazy Dataset (paper profile): decode on the fly
            sampler = RandomSampler(data, generator=generator) if generator is not None else None
            batches = DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=self.num_workers,
                                 generator=generator, worker_init_fn=seed_numpy_in_worker)
        for batch in batches:
            yield tuple(host_to_device(t, self.device) for t in batch)  # pinned, async: the host does not wait

    def train_batches(self, generator):
        return self._batches(self.train_set, self.batch_size, generator)

    def train_loss(self, model, batch):
        return self.step(model, batch)[0]

    def evaluate(self, model):
        total_loss = total_metric = 0.0
        count = 0
        with torch.set_grad_enabled(self.eval_needs_grad):
            for batch in self._batches(self.eval_set, self.eval_batch_size, None):
                loss, metric = self.step(model, batch)
                size = len(batch[0])
                total_loss += loss.item() * size
                total_metric += float(metric) * size
                count += size
        return total_loss / count, total_metric / count


def seed_numpy_in_worker(worker_id: int) -> None:
    """Loader workers fork numpy's RNG state; FE's SiameseDirDataset draws pairs from it, so give each its own."""
    np.random.seed(torch.initial_seed() % 2**32)


class MappedDataset(Dataset):
    """A FastEstimator dataset (indexable, items are dicts) decoded into tensors by `decode(item)`."""

    def __init__(self, fe_dataset, decode):
        self.fe_dataset, self.decode = fe_dataset, decode

    def __len__(self):
        return len(self.fe_dataset)

    def __getitem__(self, index):
        return self.decode(self.fe_dataset[index])


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    return (logits.argmax(-1) == target).float().mean().item()
