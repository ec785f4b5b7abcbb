"""Stage 3: ARC preprocessing, network, hybrid loss, candidate training and the reusable controller
(paper §3.4, docs/experiments.md §3-5). Usage in arc_model/README.md.

ARC in your own training:
  * `from arc_model import ARCScheduler` — a torch.optim.lr_scheduler for a plain PyTorch loop;
  * `from arc_model import ARCTrace` — a FastEstimator Trace (imports FastEstimator and TensorFlow);
  * arc_model.integrations.lightning / .huggingface — `ARCCallback` for Lightning and transformers.Trainer
    (extras [lightning] and [hf]); runnable scripts of all four in examples/.
Names are imported on first use, so `import arc_model` stays light (no pandas, TensorFlow, FastEstimator or Hydra:
tests/test_packaging.py).
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "ARCScheduler": "arc_model.scheduler",
    "fastestimator_cache": "arc_model.scheduler",
    "resolve_weights": "arc_model.scheduler",
    "decision_line": "arc_model.scheduler",
    "lr_register": "arc_model.scheduler",
    "ARCDecider": "arc_model.decider",
    "ARCSchedule": "arc_model.controller",
    "ARCTrace": "arc_model.fe_trace",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'arc_model' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
