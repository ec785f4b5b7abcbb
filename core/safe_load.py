"""Reading files without executing what they hold.

Nothing the pipeline reads from disk runs code: checkpoints and progress files are read with
`torch.load(weights_only=True)` (tensors, numbers, strings and plain containers only), the authors' pickle only
with an explicit opt-in (core.offline_pickle), and CIFAR10's python batches with `restricted_unpickle`, which
builds numpy arrays and plain containers and refuses every other global.

Checkpoints therefore hold no numpy objects: numpy's global RNG state (a tuple with a uint32 array) is stored as
plain Python values by `numpy_rng_to_plain` and turned back, bit for bit, by `numpy_rng_from_plain`.
"""
from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import CheckpointError, DataError, one_line


def numpy_rng_to_plain(state: tuple) -> dict:
    """np.random.get_state() as plain values (weights_only loads them): the key array becomes a list of ints."""
    name, key, pos, has_gauss, cached = state
    return {"bit_generator": str(name), "key": [int(v) for v in np.asarray(key, dtype=np.uint32)], "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def numpy_rng_from_plain(state) -> tuple:
    """The np.random.set_state() tuple of `numpy_rng_to_plain`'s dict (a tuple as get_state() gives passes)."""
    if isinstance(state, tuple):
        return state
    return (state["bit_generator"], np.asarray(state["key"], dtype=np.uint32), state["pos"], state["has_gauss"],
            state["cached_gaussian"])


_UNSAFE = re.compile(r"Unsupported (?:global|class):?\s*(?:GLOBAL\s+)?([\w.]+)")


def load_torch(path: str | Path, what: str = "checkpoint") -> Any:
    """`torch.load(path, weights_only=True)` on CPU. A missing, truncated or garbage file, or one that holds
    objects whose loading would run code (refused, never loaded), is a CheckpointError naming it, in one line."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe = _UNSAFE.search(str(err))
        if unsafe:
            raise CheckpointError(f"cannot read {what} {path}: refused, it asks for {unsafe.group(1).rstrip('.')} "
                                  "(loading it would run code; only tensors and plain values are read)") from None
        detail = str(err).rsplit("error:", 1)[-1].strip() if "weights only" in str(err).lower() else one_line(err)
        raise CheckpointError(f"cannot read {what} {path}: not a checkpoint of tensors and plain values "
                              f"({detail})") from None
    except Exception as err:  # noqa: BLE001 (torch raises many types for truncated or foreign files)
        raise CheckpointError(f"cannot read {what} {path}: {one_line(err)}") from None


# numpy arrays (and their dtypes and scalars) under numpy 1.x and 2.x module names, and the str -> bytes encoding
# protocol-2 pickles use for bytes; nothing else (none of these runs code or touches files)
NUMPY_GLOBALS = {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
                 for name in ("_reconstruct", "scalar")} | {("numpy", "ndarray"), ("numpy", "dtype"),
                                                           ("_codecs", "encode")}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, allowed: set[tuple[str, str]], source: str, **kwargs):
        super().__init__(file, **kwargs)
        self.allowed, self.source = allowed, source

    def find_class(self, module: str, name: str):
        if (module, name) in self.allowed:
            return super().find_class(module, name)
        raise DataError(f"{self.source}: refused, the pickle asks for {module}.{name} (only numpy arrays and plain "
                        "values are read from it)")


def restricted_unpickle(data: bytes, source: str | Path, allowed: set[tuple[str, str]] = NUMPY_GLOBALS,
                        encoding: str = "ASCII") -> Any:
    """Unpickle `data` allowing only the globals in `allowed` (numpy arrays by default): dicts, lists, strings,
    bytes and numbers need none, so a file that would run code is a DataError naming `source`."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data), allowed, str(source), encoding=encoding).load()
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001 (truncated or garbage data)
        raise DataError(f"cannot read {source}: {one_line(err)}") from None
