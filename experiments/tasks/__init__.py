"""The three benchmark tasks of paper §4 (docs/experiments.md §7.1-7.3), each in two data variants.

`paper` variants read the real datasets through FastEstimator's loaders from a configurable root
dir; `mini`/`smoke` variants run the same models (scaled), losses, optimizers and metrics offline on
data that ships with installed packages or is generated. Every task exposes `steps_per_epoch`, which
per-step schedules (super-convergence) need before the first epoch.
"""
