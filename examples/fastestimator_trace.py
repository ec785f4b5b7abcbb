"""ARC in FastEstimator 1.7: `traces=[ARCTrace(model, weights=...)]` (arc_model.fe_trace) in `fe.Estimator`.

    python examples/fastestimator_trace.py [--weights arc.h5]   # or ARC_WEIGHTS=arc.h5; needs ".[pipeline]"

Same decisions as FastEstimator's own `LRScheduler(model, lr_fn="arc")` (tests/test_arc_parity.py), with a weights
file of your choice instead of FE's download. FE prints `FastEstimator-ARC: Multiplying LR by <m>` at each call;
`verbose=True` adds the epoch and the new LR. Prints the final LR.
"""
import fastestimator as fe
import numpy as np
import torch

from arc_model.fe_trace import ARCTrace
from common import EPOCHS, LR0, arc_weights, mlp, regression_data

weights = arc_weights()
(x, y), (x_val, y_val) = regression_data()
pipeline = fe.Pipeline(train_data=fe.dataset.NumpyDataset({"x": x.numpy(), "y": y.numpy()}),
                       eval_data=fe.dataset.NumpyDataset({"x": x_val.numpy(), "y": y_val.numpy()}), batch_size=32,
                       num_process=0)  # no worker processes: the data are 640 tensors in memory
model = fe.build(model_fn=mlp, optimizer_fn=lambda params: torch.optim.SGD(params, lr=LR0, momentum=0.9))
network = fe.Network(ops=[fe.op.tensorop.model.ModelOp(model=model, inputs="x", outputs="y_pred"),
                          fe.op.tensorop.loss.MeanSquaredError(inputs=("y_pred", "y"), outputs="mse"),
                          fe.op.tensorop.model.UpdateOp(model=model, loss_name="mse")])
arc = ARCTrace(model, weights=weights, frequency=3, verbose=True)
estimator = fe.Estimator(pipeline=pipeline, network=network, epochs=EPOCHS, traces=[arc], log_steps=0)
print(f"start lr: {LR0}")
estimator.fit()
print(f"final lr: {float(np.float32(fe.backend.get_lr(model)))!r}")
print(f"decisions: {arc.decisions}")
