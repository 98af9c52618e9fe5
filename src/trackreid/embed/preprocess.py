"""The one place that knows colour order, input size and normalisation.

Crops arrive as OpenCV gives them: BGR ``uint8`` arrays of any size. :func:`resize_crops`
resizes each to the model's input size and stacks them into one ``uint8`` batch in RGB order
(N, H, W, 3); :func:`normalize` turns such a batch into a float32 NCHW array. Backends call
both, so torch and onnxruntime see identical input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:  # annotations only: importing the registry would pull in torch
    from trackreid.models.registry import Preprocess

_INTERP = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


def resize_one(crop: np.ndarray, pre: Preprocess, out: np.ndarray | None = None) -> np.ndarray:
    """One BGR uint8 crop -> (H, W, 3) uint8 in the model's channel order, written into ``out``."""
    resized = cv2.resize(crop, (pre.width, pre.height), interpolation=_INTERP[pre.interpolation])
    if out is None:
        out = np.empty((pre.height, pre.width, 3), dtype=np.uint8)
    if pre.channel_order == "RGB":
        cv2.cvtColor(resized, cv2.COLOR_BGR2RGB, dst=out)  # 10x faster than a reversed-stride numpy copy
    else:
        out[...] = resized
    return out


def resize_crops(crops: Sequence[np.ndarray], pre: Preprocess) -> np.ndarray:
    """BGR uint8 crops of any size -> one uint8 batch (N, H, W, 3) at the model's size and order."""
    out = np.empty((len(crops), pre.height, pre.width, 3), dtype=np.uint8)
    for i, crop in enumerate(crops):
        resize_one(crop, pre, out[i])
    return out


def normalize(batch: np.ndarray, pre: Preprocess) -> np.ndarray:
    """RGB uint8 (N, H, W, 3) -> float32 (N, 3, H, W): ``(x / 255 - mean) / std``."""
    std = np.asarray(pre.std, dtype=np.float32).reshape(1, 3, 1, 1)
    scale = np.float32(1.0 / 255.0) / std
    shift = np.asarray(pre.mean, dtype=np.float32).reshape(1, 3, 1, 1) / std
    x = batch.transpose(0, 3, 1, 2).astype(np.float32)
    x *= scale
    x -= shift
    return x


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)
