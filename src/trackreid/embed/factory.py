"""Build an :class:`Embedder` from a ``--reid-model`` value and the backend/device flags.

``--backend``:

* ``torch``: eager PyTorch, float32 (float16 only with ``half=True`` on CUDA).
* ``onnx``: onnxruntime. A ``.onnx`` file runs as is; ``.pth``/``.safetensors`` weights are
  exported once to ``<cache>/onnx/<sha256>.onnx`` (verified against PyTorch) and reused.
* ``auto`` (default): ``.onnx`` files run on onnxruntime. Other weights run on onnxruntime
  through the cached export on the CPU (the fastest correct CPU path measured here: see
  docs/benchmarks.md), falling back to eager PyTorch with a logged reason when the export is
  not possible; on CUDA they run in PyTorch float16 with cuDNN autotuning.
"""

from __future__ import annotations

import logging
from pathlib import Path

from trackreid.embed.backend import Backend, Embedder, TorchBackend
from trackreid.embed.device import resolve_device
from trackreid.errors import InputError, OutputError, TrackReidError
from trackreid.models.weights import LoadedModel, load_model
from trackreid.models.zoo import resolve_weights

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")


def _onnx_from_weights(loaded: LoadedModel, device: str) -> Backend:
    from trackreid.embed.onnx_backend import OnnxBackend
    from trackreid.embed.onnx_export import cached_onnx

    backend = OnnxBackend.from_path(cached_onnx(loaded), device=device)
    # The weights are the user's file; the cached export is how they run.
    backend.model_info = {**loaded.describe(), "onnx": backend.model_info["onnx"]}
    return backend


def build_backend(reid_model: str | Path, *, device: str = "auto", backend: str = "auto",
                  arch: str | None = None, half: bool = False) -> Backend:
    if backend not in BACKENDS:
        raise InputError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    path = resolve_weights(reid_model)
    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise InputError(f"{path}: an ONNX file runs on onnxruntime; use --backend auto or onnx")
        from trackreid.embed.onnx_backend import OnnxBackend

        return OnnxBackend.from_path(path, device=device, arch=arch)
    loaded = load_model(path, arch=arch)
    if backend == "onnx":
        return _onnx_from_weights(loaded, device)
    dev = resolve_device(device)
    if backend == "auto" and dev.type == "cpu":
        try:
            return _onnx_from_weights(loaded, "cpu")
        except (ImportError, OutputError, TrackReidError) as e:
            log.warning("backend auto: running eager PyTorch instead of onnxruntime (%s)", e)
    if backend == "auto" and dev.type == "cuda":
        half = True
    return TorchBackend(loaded, dev, half=half)


def build_embedder(reid_model: str | Path, *, device: str = "auto", backend: str = "auto",
                   arch: str | None = None, half: bool = False, batch_size: int = 32) -> Embedder:
    """The one way every command turns weights into an embedding function."""
    return Embedder(build_backend(reid_model, device=device, backend=backend, arch=arch, half=half), batch_size)
