"""Pretrained weights of the paper profile, read from local files only (nothing is downloaded).

Keras' ImageNet ResNet50 (`tf.keras.applications.ResNet50(weights="imagenet", include_top=False)`, the file
`resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5` Keras keeps in ~/.keras/models) backs the RetinaNet of the
MSCOCO benchmark as the authors built it (docs/experiments.md §7.2): `read_keras_h5` reads its weights per layer name
and experiments.tasks.retinanet.KerasResNet50Features converts them into a torch ResNet50 v1. The configured file
(${paths.weights}/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5) is used, else the same file in Keras' cache
($KERAS_HOME/models, default ~/.keras/models); `make check-data` lists both places.

torchvision's ImageNet ResNet50 (ResNet50_Weights.IMAGENET1K_V1, the file `resnet50-0676ba61.pth` that
`resnet50(pretrained=True)` fetched in the authors' time) backs the MSCOCO RetinaNet's alternative backbone
(`backbone: torchvision_resnet50`, docs/experiments.md §7.2) and the ResNet50 + UNet of Table 1's task 6 (FastEstimator's apphub
`uncertainty_loss_torch.py` builds it with `models.resnet50(pretrained=True)`, the TF version with
`ResNet50(weights='imagenet')`). The configured file (${paths.weights}/resnet50-0676ba61.pth) is used, else the
same file in torchvision's cache ($TORCH_HOME/hub/checkpoints); `make check-data` lists both places.
"""
from __future__ import annotations

from pathlib import Path

RESNET50_IMAGENET = ("ResNet50_Weights.IMAGENET1K_V1", "resnet50-0676ba61.pth")  # torchvision weights id, file name
KERAS_RESNET50_NOTOP = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"  # keras.applications' ImageNet file


def resnet50_imagenet_inputs(configured: str) -> list:
    """The ImageNet ResNet50 file a paper config names, as `make check-data` lists it: that path, else the same file
    name in torchvision's cache. `require(...)` on it is the check before any work; `.found()` the file to load."""
    from core.inputs import required

    path = Path(configured)
    return required("resnet50_imagenet", path.parent, relpaths={RESNET50_IMAGENET[1]: path.name}, exact=True)


def resnet50(weights_path: str | None = None):
    """torchvision's ResNet50 (1000-class head) with the state dict at `weights_path` loaded (weights_only: a file
    that would run code is refused), or randomly initialised for None. A file that is not a ResNet50 state dict is
    a CheckpointError naming it."""
    import torchvision

    from core.errors import CheckpointError, one_line
    from core.safe_load import load_torch

    net = torchvision.models.resnet50(weights=None)
    if weights_path:
        state = load_torch(weights_path, "ResNet50 weights")
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise CheckpointError(f"cannot read ResNet50 weights {weights_path}: not a torchvision ResNet50 state "
                                  f"dict ({one_line(err)[:200]})") from None
    return net


def keras_resnet50_inputs(configured: str) -> list:
    """Keras' ImageNet ResNet50 file (include_top=False) a paper config names, as `make check-data` lists it: that
    path, else the same file name in Keras' cache."""
    from core.inputs import required

    path = Path(configured)
    return required("resnet50_keras", path.parent, relpaths={KERAS_RESNET50_NOTOP: path.name}, exact=True)


def read_keras_h5(path: str) -> dict:
    """{layer name: {weight name: array}} of a Keras weights file in HDF5 form (`model.save_weights("x.h5")`, the
    keras.applications files, or the `model_weights` group of a whole saved model). Weight names lose their layer
    prefix and `:0`: 'conv1_conv/kernel:0' -> 'kernel'. Layers without weights are left out. A file that is not one
    is a CheckpointError naming it."""
    import h5py
    import numpy as np

    from core.errors import CheckpointError, one_line

    def text(value) -> str:
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            layers = {}
            for layer in map(text, root.attrs["layer_names"]):
                group = root[layer]
                weights = {}
                for name in map(text, group.attrs["weight_names"]):
                    weights[name.rsplit("/", 1)[-1].split(":", 1)[0]] = np.asarray(group[name])
                if weights:
                    layers[layer] = weights
    except (OSError, KeyError) as err:
        raise CheckpointError(f"cannot read Keras weights {path}: not a Keras HDF5 weights file "
                              f"({one_line(err)[:200]})") from None
    return layers
