"""Training one ARC candidate (docs/experiments.md §4.2-4.4): the loop, held-out scoring and exact resume.

A CandidateTrainer is a core.runs.Resumable: the stage (arc_model.stage) trains it in its directory with
core.runs.resume_into, which checkpoints, resumes and writes DONE as for every other run of the pipeline.

Per epoch: shuffle with the candidate's own generator, zero each drawn sample's val channel with
probability `val_dropout` (Sometimes(RemoveValLoss, 0.5), train mode only), Adam step on the hybrid
loss (last partial batch kept), then score the held-out points (no augmentation). The model of every
epoch that is best so far by a metric is kept in memory, for the metric study's best-by-metric files.
Each epoch's row also holds the hybrid loss per true class (arc_model.loss.per_sample_hybrid), on the
training batches as trained (`train_hybrid_<class>`) and on the held-out points (`held_hybrid_<class>`):
whether a class is learnt at all, e.g. 'decrease', shows there.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch

from arc_model.loss import CLASS_NAMES, hybrid_loss, hybrid_sums_by_class
from arc_model.metrics import MODES, candidate_metrics
from arc_model.network import ARCNet, trainable_parameters
from core.artifacts import atomic_write
from core.felog import FELogWriter, open_log
from core.optim import make_optimizer
from core.training import load_checkpoint


class CandidateTrainer:
    stopped = False  # an ARC candidate trains its full epochs

    def __init__(self, inputs: np.ndarray, labels: np.ndarray, train_idx: np.ndarray, held_idx: np.ndarray,
                 seed: int, batch_size: int = 128, lr: float = 1e-4, val_dropout: float = 0.5, device: str = "cpu",
                 log_steps: int = 5):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.model = ARCNet().to(self.device)
        self.optimizer = make_optimizer("adam", trainable_parameters(self.model), lr)  # Keras eps 1e-7
        self.generator = torch.Generator().manual_seed(seed)
        x, y = torch.from_numpy(inputs), torch.from_numpy(labels)
        self.x_train, self.y_train = x[train_idx], y[train_idx]
        self.x_held, self.y_held = x[held_idx], y[held_idx]
        self.batch_size, self.val_dropout = batch_size, val_dropout
        self.epoch, self.global_step = 0, 0
        self.rows: list[dict] = []  # one per epoch: train losses and held-out metrics
        self.best: dict[str, dict] = {}  # metric -> {"value", "epoch", "model"}
        self.log_steps = log_steps
        self.log: FELogWriter | None = None
        self._log_offset: int | None = None  # log size at the restored checkpoint

    # ---- core.runs.Resumable ---------------------------------------------------------------------
    def train(self, epochs: int, total_epochs: int | None = None) -> None:
        for _ in range(epochs):
            self.train_epoch(self.log, self.log_steps)

    def open_log(self, path) -> None:
        self.log = open_log(path, self._log_offset, self.log_steps)

    def save(self, path) -> None:
        state = {"trainer": self.state_dict(), "log_offset": self.log.tell() if self.log else None}
        atomic_write(path, lambda tmp: torch.save(state, tmp))

    def restore(self, path) -> None:
        state = load_checkpoint(path, required=("trainer", "log_offset"), kind="ARC candidate")
        self.load_state_dict(state["trainer"])
        self._log_offset = state["log_offset"]

    def progress(self) -> dict:
        """The last epoch in a few numbers (core.runs' progress bar)."""
        row = self.rows[-1] if self.rows else {}
        return {k: f"{row[k]:.4g}" for k in ("train_total_loss", "accuracy") if k in row}

    # ---- the loop -------------------------------------------------------------------------------
    def train_epoch(self, log: FELogWriter | None = None, log_steps: int = 5) -> dict:
        self.epoch += 1
        self.model.train()
        order = torch.randperm(len(self.y_train), generator=self.generator)
        sums = {"ce": 0.0, "bnce_0vs2": 0.0, "total_loss": 0.0}
        by_class = {name: [0.0, 0] for name in CLASS_NAMES}  # the hybrid loss per true class, as ARC trains
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.x_train[idx].clone()
            keep_val = (torch.rand(len(idx), generator=self.generator) >= self.val_dropout).to(x.dtype)
            x[:, :, 1] *= keep_val[:, None]
            logits, y = self.model(x.to(self.device)), self.y_train[idx].to(self.device)
            losses = hybrid_loss(logits, y)
            for name, (total, count) in hybrid_sums_by_class(logits, y).items():
                by_class[name][0] += total
                by_class[name][1] += count
            self.optimizer.zero_grad(set_to_none=True)
            losses["total_loss"].backward()
            self.optimizer.step()
            self.global_step += 1
            values = {k: v.item() for k, v in losses.items()}
            for k in sums:
                sums[k] += values[k] * len(idx)
            if log and (self.global_step == 1 or self.global_step % log_steps == 0):
                log.write("Train", self.global_step, **values)
        row = {"epoch": self.epoch, **{f"train_{k}": v / len(order) for k, v in sums.items()},
               **{f"train_hybrid_{name}": total / count if count else math.nan
                  for name, (total, count) in by_class.items()}, **self.evaluate()}
        self.rows.append(row)
        self._keep_best(row)
        if log:
            log.write("Eval", self.global_step, epoch=self.epoch, **{k: v for k, v in row.items()
                                                                      if not k.startswith("train_") and k != "epoch"})
        return row

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out metrics ({} without a held-out split)."""
        if len(self.y_held) == 0:
            return {}
        self.model.eval()
        logits = torch.cat([self.model(self.x_held[i:i + 1024].to(self.device)).cpu()
                            for i in range(0, len(self.y_held), 1024)])
        per_class = {f"held_hybrid_{name}": total / count if count else math.nan
                     for name, (total, count) in hybrid_sums_by_class(logits, self.y_held).items()}
        return {**candidate_metrics(logits, self.y_held), **per_class}

    def _keep_best(self, row: dict) -> None:
        for metric, mode in MODES.items():
            value = row.get(metric)
            if value is None or not math.isfinite(value):
                continue
            best = self.best.get(metric)
            if best is None or (value > best["value"] if mode == "max" else value < best["value"]):
                self.best[metric] = {"value": value, "epoch": self.epoch,
                                     "model": copy.deepcopy(self.model.state_dict())}

    def model_from(self, state: dict) -> ARCNet:
        model = ARCNet()
        model.load_state_dict({k: v.cpu() for k, v in state.items()})
        return model

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "epoch": self.epoch, "global_step": self.global_step,
                "rows": list(self.rows), "best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        self.rows, self.best = list(state["rows"]), state["best"]
