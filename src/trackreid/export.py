"""``trackreid export-onnx``: weights (path or zoo name) -> a verified ONNX file + sidecar JSON.

The export-and-verify core lives below, in :mod:`trackreid.embed.onnx_export` (the
``--backend auto`` path uses it too); this module only checks the command's output path,
loads the weights and reads the real crops the check may use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from trackreid.embed.onnx_export import MIN_COSINE, ExportResult, export_loaded, require_onnx, sidecar_path
from trackreid.errors import InputError, OutputError
from trackreid.models.weights import load_model

__all__ = ["ExportResult", "export_onnx", "read_crops", "sidecar_path"]


def read_crops(folder: str | Path, n: int = 16) -> list[np.ndarray]:
    """``n`` images spread evenly over a folder of crops (sorted by name), as BGR arrays."""
    import cv2

    from trackreid.datasets import list_images

    paths = list_images(Path(folder))
    idx = np.linspace(0, len(paths) - 1, num=min(n, len(paths))).round().astype(int)
    crops = []
    for i in idx:
        img = cv2.imread(str(paths[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"{paths[i]}: not a readable image (--verify-crops)")
        crops.append(img)
    return crops


def export_onnx(weights: str | Path, output: str | Path, *, opset: int = 17, fp16: bool = False,
                static_batch: int | None = None, uint8_input: bool = False, arch: str | None = None,
                verify_crops: Sequence[np.ndarray] | None = None, crops_source: str | None = None,
                overwrite: bool = False, min_cosine: float = MIN_COSINE) -> ExportResult:
    """``trackreid export-onnx``: weights (path or zoo name) -> verified ``output`` + sidecar JSON."""
    from trackreid.models.zoo import resolve_weights

    output = Path(output)
    if output.suffix.lower() != ".onnx":
        raise InputError(f"--output {output}: expected a file name ending in .onnx")
    if output.is_dir():
        raise OutputError(f"--output {output}: is a folder; give a file name like {output / 'osnet.onnx'}")
    existing = [p for p in (output, sidecar_path(output)) if p.exists()]
    if existing and not overwrite:
        raise OutputError(f"{existing[0]}: already exists; pass --overwrite to replace it")
    require_onnx()
    loaded = load_model(resolve_weights(weights), arch=arch)
    return export_loaded(loaded, output, opset=opset, fp16=fp16, static_batch=static_batch, uint8_input=uint8_input,
                         verify_crops=verify_crops, crops_source=crops_source, min_cosine=min_cosine)
