"""Build an :class:`Embedder` from a ``--reid-model`` value and the backend/device flags."""

from __future__ import annotations

from pathlib import Path

from trackreid.embed.backend import Backend, Embedder, TorchBackend
from trackreid.embed.device import resolve_device
from trackreid.errors import InputError
from trackreid.models.weights import load_model
from trackreid.models.zoo import resolve_weights

BACKENDS = ("auto", "torch", "onnx")


def build_backend(reid_model: str | Path, *, device: str = "auto", backend: str = "auto",
                  arch: str | None = None, half: bool = False) -> Backend:
    if backend not in BACKENDS:
        raise InputError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    path = resolve_weights(reid_model)
    if path.suffix.lower() == ".onnx" or backend == "onnx":
        from trackreid.embed.onnx_backend import OnnxBackend

        return OnnxBackend.from_path(path, device=device, arch=arch)
    return TorchBackend(load_model(path, arch=arch), resolve_device(device), half=half)


def build_embedder(reid_model: str | Path, *, device: str = "auto", backend: str = "auto",
                   arch: str | None = None, half: bool = False, batch_size: int = 32) -> Embedder:
    """The one way every command turns weights into an embedding function."""
    return Embedder(build_backend(reid_model, device=device, backend=backend, arch=arch, half=half), batch_size)
