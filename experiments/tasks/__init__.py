"""The three benchmark tasks of paper §4 (docs/experiments.md §7.1-7.3), each in two data variants.

`paper` variants read the real datasets through FastEstimator's loaders from a configurable root
dir; `mini`/`smoke` variants run the same models (scaled), losses, optimizers and metrics offline on
data that ships with installed packages or is generated. Every task exposes `steps_per_epoch`, which
per-step schedules (super-convergence) need before the first epoch.

Each task's `variant` picks the model and loss: "keras" (default), the authors' TF/Keras model as ported
(docs/experiments.md §2.3, §7.1-7.3), or "sls", the authors' PyTorch port of it that their SLS runs trained
(§7.4; configs/bench_schedule/<task>_sls.yaml selects it for schedule=sls).
"""

VARIANTS = ("keras", "sls")


def check_variant(variant: str) -> str:
    """`variant`, or a ValueError naming the choices."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    return variant
