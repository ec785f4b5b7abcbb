"""ARC as a transformers.Trainer callback: `Trainer(..., callbacks=[ARCCallback(weights="arc.h5")])`.

A thin wrapper on arc_model.ARCScheduler, which does all of ARC's bookkeeping (docs/experiments.md §5):
  * training loss: Trainer hands callbacks no loss (its logged "loss" is a mean over `logging_steps`, rounded to 4
    decimals in transformers 4.38), so a forward hook on the model keeps the loss it returns in training mode (a
    dict's "loss" or a tuple's first element, what Trainer.compute_loss reads); `on_step_end` records their mean
    over the step's micro-batches (gradient accumulation), i.e. one loss per optimizer step. A model that returns
    no loss (a custom `compute_loss`, a label smoother) is refused in one line at the first step;
  * validation loss: with `eval_strategy="epoch"` (`evaluation_strategy` before transformers 4.41) the epoch's
    `eval_loss` (`on_evaluate` right after `on_epoch_end`); without evaluation ARC's val channel is zeros (§5.3);
  * epoch end: the scheduler scales every parameter group; Trainer's own LR scheduler would reset the LR at the next
    step (its schedules are LambdaLR: base_lr x factor), so its base_lrs follow ARC (integrations.follow).
    `lr_scheduler_type="constant"` gives ARC alone, as in the paper;
  * checkpoint: TrainerCallback has no state hook in transformers 4.38 (the pinned version; `ExportableState`, in
    trainer_state.json, came later and rebuilds the callback object), so `on_save` writes ARC's state as
    `arc_scheduler.json` into the checkpoint directory Trainer has just written (<output_dir>/checkpoint-<step>)
    and `on_train_begin` of a resumed run (global_step > 0) reads it back from there, or from `resume_from`:
    `trainer.train(resume_from_checkpoint=True)` takes the same decisions as an uninterrupted run.
Imports transformers only (no Lightning; no TensorFlow: `from transformers import Trainer` does import it when it is
installed, unless USE_TF=0). Example: examples/hf_trainer_callback.py; tests: tests/test_hf_callback.py.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from arc_model.integrations import follow, weights_file
from arc_model.scheduler import ARCScheduler
from core.artifacts import atomic_write_text
from core.errors import DataError

STATE_FILE = "arc_scheduler.json"


class ARCCallback(TrainerCallback):
    """ARC every `frequency` epochs on Trainer's optimizer; `scheduler` is the ARCScheduler once training has
    started (`decisions`, `get_last_lr()`); `verbose=True` prints one line per ARC call. `resume_from`: the
    checkpoint directory to read ARC's state from when it is not <output_dir>/checkpoint-<global_step>."""

    def __init__(self, weights=None, frequency: int = 3, use_val_loss: bool = True, preprocessing: str = "repo",
                 verbose: bool = False, resume_from: str | Path | None = None):
        self.weights = weights_file(weights)
        self.options = {"frequency": frequency, "use_val_loss": use_val_loss, "preprocessing": preprocessing,
                        "verbose": verbose}
        self.resume_from = resume_from
        self.scheduler: ARCScheduler | None = None
        self._lr_scheduler = None
        self._hook = None
        self._losses: list[torch.Tensor] = []  # this optimizer step's micro-batch losses
        self._awaiting_eval = False

    @property
    def decisions(self) -> list[tuple[int, float]]:
        return self.scheduler.decisions if self.scheduler is not None else []

    def on_train_begin(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs):
        self.scheduler = ARCScheduler(optimizer, weights=self.weights, **self.options)
        self._lr_scheduler = lr_scheduler
        if state.global_step > 0:  # resuming: Trainer has restored the optimizer (its LRs) and its scheduler
            directory = Path(self.resume_from or Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            path = directory / STATE_FILE
            if not path.is_file():
                raise DataError(f"ARCCallback: resuming at step {state.global_step} but ARC's state {path} does not "
                                "exist; pass ARCCallback(resume_from=<the checkpoint directory>)")
            self.scheduler.load_state_dict(json.loads(path.read_text()))
        if self._hook is not None:
            self._hook.remove()
        self._hook = model.register_forward_hook(self._keep_loss)
        self._losses, self._awaiting_eval = [], False

    def _keep_loss(self, module, inputs, outputs) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else (
            outputs[0] if isinstance(outputs, (tuple, list)) and outputs else None)
        if isinstance(loss, torch.Tensor):
            self._losses.append(loss.detach().float().mean())

    def on_step_end(self, args, state, control, **kwargs):
        if not self._losses:
            raise RuntimeError("ARCCallback: the model returned no training loss in this step; it must return its "
                               "loss (a dict with 'loss' or a tuple starting with it), as Trainer reads it")
        self.scheduler.record(torch.stack(self._losses).mean())
        self._losses = []

    def on_epoch_end(self, args, state, control, **kwargs):
        if control.should_evaluate:  # set by Trainer's DefaultFlowCallback, which runs first
            self._awaiting_eval = True
        else:
            self._end_epoch(None)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if self._awaiting_eval:  # the epoch's evaluation, not a mid-epoch or a manual trainer.evaluate()
            self._awaiting_eval = False
            if "eval_loss" not in (metrics or {}):
                raise ValueError(f"ARCCallback: the evaluation reported no eval_loss (metrics: "
                                 f"{sorted(metrics or {})}); the model must return its loss in evaluation too")
            self._end_epoch(metrics["eval_loss"])

    def _end_epoch(self, val_loss) -> None:
        self.scheduler.step(val_loss)
        follow(self._lr_scheduler, self.scheduler.last_multiplier)

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            directory = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
            atomic_write_text(directory / STATE_FILE, json.dumps(self.scheduler.state_dict()))

    def on_train_end(self, args, state, control, **kwargs):
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
