"""ARC in an ordinary PyTorch loop: arc_model.ARCScheduler, 6 lines marked `# ARC` (README "ARC in your own training").

    python examples/plain_pytorch.py [--weights arc.h5]      # or ARC_WEIGHTS=arc.h5; default: random weights

Prints each ARC call (the epoch its new LR applies to, the action, the new LR) and the final LR, which is the
start LR times the multipliers, each product rounded to float32 as FastEstimator does (tests/test_examples.py).
Needs only torch and this package (`pip install .`).
"""
import torch

from arc_model import ARCScheduler  # ARC
from common import EPOCHS, LR0, arc_weights, mlp, regression_data

weights = arc_weights()
(x, y), (x_val, y_val) = regression_data()
model = mlp()
optimizer = torch.optim.SGD(model.parameters(), lr=LR0, momentum=0.9)
print(f"start lr: {LR0}")
# README: begin
scheduler = ARCScheduler(optimizer, weights=weights, frequency=3, verbose=True)  # ARC: prints each call
for epoch in range(EPOCHS):
    for i in range(0, len(x), 32):
        loss = torch.nn.functional.mse_loss(model(x[i:i + 32]), y[i:i + 32])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.record(loss)  # ARC: every step's loss
    with torch.no_grad():
        val_loss = torch.nn.functional.mse_loss(model(x_val), y_val).item()
    scheduler.step(val_loss)  # ARC: epoch end; the LR changes before epochs 4, 7, 10, 13
print(f"final lr: {optimizer.param_groups[0]['lr']!r}")  # ARC: where it ended
print(f"decisions: {scheduler.decisions}")  # ARC: [(epoch, multiplier)]
# README: end
