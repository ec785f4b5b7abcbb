"""ARC in transformers.Trainer: `callbacks=[ARCCallback(weights=...)]` (arc_model.integrations.huggingface).

    pip install ".[hf]"; python examples/hf_trainer_callback.py [--weights arc.h5]   # or ARC_WEIGHTS=arc.h5

Trainer takes any torch module that returns its loss (here a dict with "loss"); nothing is downloaded. Evaluation
every epoch gives ARC its validation loss; the constant LR schedule leaves the LR to ARC alone; with
save_strategy="epoch" ARC's state goes into every checkpoint (arc_scheduler.json). Prints each ARC call and the
final LR.
"""
import dataclasses
import os
import tempfile

os.environ.setdefault("USE_TF", "0")  # transformers would import TensorFlow too where it is installed
import torch  # noqa: E402
from transformers import Trainer, TrainingArguments  # noqa: E402

from arc_model.integrations.huggingface import ARCCallback  # noqa: E402
from common import EPOCHS, LR0, arc_weights, mlp, regression_data  # noqa: E402


class Regression(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp()

    def forward(self, x, labels=None):
        out = self.net(x)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


def rows(x, y):
    return [{"x": a, "labels": b} for a, b in zip(x, y)]


weights = arc_weights()
(x, y), (x_val, y_val) = regression_data()
model = Regression()
optimizer = torch.optim.SGD(model.parameters(), lr=LR0, momentum=0.9)
fields = {f.name for f in dataclasses.fields(TrainingArguments)}
eval_key = "eval_strategy" if "eval_strategy" in fields else "evaluation_strategy"  # renamed in transformers 4.41
args = TrainingArguments(output_dir=tempfile.mkdtemp(prefix="arc-hf-"), num_train_epochs=EPOCHS, learning_rate=LR0,
                         per_device_train_batch_size=32, per_device_eval_batch_size=len(x_val),
                         lr_scheduler_type="constant", **{eval_key: "epoch"}, save_strategy="no", logging_strategy="no",
                         report_to=[], disable_tqdm=True, use_cpu=True, seed=0, remove_unused_columns=False)
arc = ARCCallback(weights=weights, frequency=3, verbose=True)
trainer = Trainer(model=model, args=args, train_dataset=rows(x, y), eval_dataset=rows(x_val, y_val),
                  optimizers=(optimizer, None), callbacks=[arc])
print(f"start lr: {LR0}")
trainer.train()
print(f"final lr: {optimizer.param_groups[0]['lr']!r}")
print(f"decisions: {arc.decisions}")
