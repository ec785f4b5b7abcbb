"""Exact import/export of ARC weights as a Keras weights-only HDF5 file (`arc.h5`, docs/experiments.md §4.1).

The file layout is the one Keras 2 `save_weights(..h5)` writes and the published arc.h5 has:
root attrs layer_names/backend/keras_version; one group per layer with attr weight_names and the
arrays at <layer>/<weight name>. Keras loads such files by layer *order*, so we read by order too
(a file saved from a session that named its layers conv1d_4, ... still loads).

Mapping (Keras -> PyTorch): Conv1D kernel (k, in, out) -> weight (out, in, k); Dense kernel (in, out)
-> weight.T; LSTM kernel/recurrent_kernel (in, 4h) -> weight_ih/weight_hh (4h, in), gate order
i, f, c, o in both; the single Keras bias -> bias_ih, with bias_hh = 0.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from arc_model.network import ARCNet
from core.artifacts import atomic_write
from core.errors import DataError, one_line

# (layer name in the published file, weight names, module attribute); pooling layers carry no weights
LAYERS = (
    ("conv1d", ("kernel:0", "bias:0"), "conv1"),
    ("max_pooling1d", (), None),
    ("conv1d_1", ("kernel:0", "bias:0"), "conv2"),
    ("max_pooling1d_1", (), None),
    ("lstm", ("lstm_cell/kernel:0", "lstm_cell/recurrent_kernel:0", "lstm_cell/bias:0"), "lstm1"),
    ("lstm_1", ("lstm_cell_1/kernel:0", "lstm_cell_1/recurrent_kernel:0", "lstm_cell_1/bias:0"), "lstm2"),
    ("dense", ("kernel:0", "bias:0"), "dense"),
    ("dense_1", ("kernel:0", "bias:0"), "out"),
)
KERAS_VERSION = "2.4.0"  # the version recorded in the published file whose layout we write


def _to_keras(module: torch.nn.Module) -> list[np.ndarray]:
    if isinstance(module, torch.nn.LSTM):
        bias = (module.bias_ih_l0 + module.bias_hh_l0).detach().cpu().numpy()
        return [module.weight_ih_l0.detach().cpu().numpy().T, module.weight_hh_l0.detach().cpu().numpy().T, bias]
    weight = module.weight.detach().cpu().numpy()
    kernel = weight.transpose(2, 1, 0) if isinstance(module, torch.nn.Conv1d) else weight.T
    return [kernel, module.bias.detach().cpu().numpy()]


def _from_keras(module: torch.nn.Module, arrays: list[np.ndarray]) -> None:
    tensors = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for a in arrays]
    with torch.no_grad():
        if isinstance(module, torch.nn.LSTM):
            kernel, recurrent, bias = tensors
            targets = [(module.weight_ih_l0, kernel.T), (module.weight_hh_l0, recurrent.T),
                       (module.bias_ih_l0, bias), (module.bias_hh_l0, torch.zeros_like(bias))]
        else:
            kernel, bias = tensors
            kernel = kernel.permute(2, 1, 0) if isinstance(module, torch.nn.Conv1d) else kernel.T
            targets = [(module.weight, kernel), (module.bias, bias)]
        for param, value in targets:
            if param.shape != value.shape:
                raise ValueError(f"shape {tuple(value.shape)} where {tuple(param.shape)} is expected")
            param.copy_(value)


def save_keras_h5(model: ARCNet, path: str | Path) -> Path:
    """Write `model` as a Keras weights-only file that fe.schedule.ARC / Keras `load_weights` read."""
    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as f:
            f.attrs["backend"] = "tensorflow"
            f.attrs["keras_version"] = KERAS_VERSION
            f.attrs["layer_names"] = np.array([name.encode() for name, _, _ in LAYERS])
            for name, weight_names, attr in LAYERS:
                group = f.create_group(name)
                full_names = [f"{name}/{w}".encode() for w in weight_names]
                group.attrs["weight_names"] = np.array(full_names) if full_names else np.array([])
                if attr is not None:
                    for full_name, array in zip(full_names, _to_keras(getattr(model, attr))):
                        group.create_dataset(full_name.decode(), data=array.astype(np.float32))
    return atomic_write(path, write)


def load_keras_h5(path: str | Path, model: ARCNet | None = None) -> ARCNet:
    """Read a Keras weights-only arc.h5 into `model` (a new ARCNet if None); DataError names the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ARC weights file not found: {path}")
    if model is None:
        # every weight is read from the file: no Keras init (its orthogonal init's QR took 0.35 s per load on a
        # busy 2-thread CPU, 300 loads per smoke selection pass), and torch's global RNG is left as it was, so
        # loading an ARC never moves a seeded run's random stream
        with torch.random.fork_rng(devices=[]):
            model = ARCNet(init=False)
    try:
        with h5py.File(path, "r") as f:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["layer_names"]]
            weighted = []
            for name in names:
                weight_names = [w.decode() if isinstance(w, bytes) else str(w) for w in f[name].attrs["weight_names"]]
                if weight_names:
                    weighted.append([np.asarray(f[name][w]) for w in weight_names])
            modules = [attr for _, _, attr in LAYERS if attr is not None]
            if len(weighted) != len(modules):
                raise ValueError(f"{len(weighted)} layers with weights where {len(modules)} are expected")
            for attr, arrays in zip(modules, weighted):
                _from_keras(getattr(model, attr), arrays)
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as err:  # h5py: OSError for garbage/truncated
        raise DataError(f"cannot read ARC weights {path}: not a Keras arc.h5 weights file of ARC's network "
                        f"({one_line(err)})") from None
    return model
