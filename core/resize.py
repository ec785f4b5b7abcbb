"""1-D resize with OpenCV's exact semantics (docs/experiments.md §3): the ARC input channels are resized this way.

`cv2.resize(column, (1, T))` resizes along axis 0. INTER_NEAREST takes source index floor(i*in/out);
INTER_LINEAR uses half-pixel centres clamped to the ends, with no anti-aliasing when shrinking.
"""
from __future__ import annotations

import cv2
import numpy as np

METHODS = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}


def resize_1d(values, length: int, method: str = "linear", dtype=np.float32) -> np.ndarray:
    column = np.asarray(values, dtype=dtype).reshape(-1, 1)
    if column.shape[0] == 0:
        raise ValueError("cannot resize an empty sequence")
    return cv2.resize(column, (1, int(length)), interpolation=METHODS[method]).ravel()
