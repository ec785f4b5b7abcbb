"""Pretrained weights of the paper profile, read from local files only (nothing is downloaded).

torchvision's ImageNet ResNet50 (ResNet50_Weights.IMAGENET1K_V1, the file `resnet50-0676ba61.pth` that
`resnet50(pretrained=True)` fetched in the authors' time) backs two of the paper's networks: the RetinaNet of the
MSCOCO benchmark (docs/experiments.md §7.2) and the ResNet50 + UNet of Table 1's task 6 (FastEstimator's apphub
`uncertainty_loss_torch.py` builds it with `models.resnet50(pretrained=True)`, the TF version with
`ResNet50(weights='imagenet')`). The configured file (${paths.weights}/resnet50-0676ba61.pth) is used, else the
same file in torchvision's cache ($TORCH_HOME/hub/checkpoints); core.check_data lists both places.
"""
from __future__ import annotations

from pathlib import Path

RESNET50_IMAGENET = ("ResNet50_Weights.IMAGENET1K_V1", "resnet50-0676ba61.pth")  # torchvision weights id, file name


def resnet50_imagenet_inputs(configured: str) -> list:
    """The ImageNet ResNet50 file a paper config names, as core.check_data lists it: that path, else the same file
    name in torchvision's cache. `require(...)` on it is the check before any work; `.found()` the file to load."""
    from core.check_data import required

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
