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
from dataclasses import dataclass, replace
from pathlib import Path

from trackreid.embed.backend import Backend, Embedder, TorchBackend
from trackreid.embed.device import resolve_device
from trackreid.errors import InputError, ModelError, OutputError
from trackreid.models.weights import LoadedModel, load_model
from trackreid.models.zoo import resolve_weights

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
MIN_INPUT_SIZE = (32, 16)  # OSNet downsamples 32x in height before global pooling


def check_input_size(input_size: tuple[int, int] | None) -> tuple[int, int] | None:
    """``--reid-size H W`` -> (H, W), refused when too small for OSNet."""
    if input_size is None:
        return None
    h, w = (int(v) for v in input_size)
    if h < MIN_INPUT_SIZE[0] or w < MIN_INPUT_SIZE[1]:
        raise InputError(f"--reid-size {h} {w}: too small; OSNet needs at least "
                         f"{MIN_INPUT_SIZE[0]}x{MIN_INPUT_SIZE[1]} (default 256 128)")
    return h, w


def _onnx_from_weights(loaded: LoadedModel, device: str, input_size: tuple[int, int] | None) -> Backend:
    from trackreid.embed.onnx_backend import OnnxBackend, cpu_threads
    from trackreid.embed.onnx_export import cached_onnx

    threads = cpu_threads()  # a bad TRACKREID_THREADS is the user's to fix: checked before the export
    # The export was made from ``loaded``, whose weights load_model already rid of subnormals: parsing
    # the graph again to look for them (the onnx package's import alone, about 1 s) is skipped.
    backend = OnnxBackend.from_path(cached_onnx(loaded), device=device, threads=threads, input_size=input_size,
                                    zero_denormals=False)
    # The weights are the user's file; the cached export is how they run.
    backend.model_info = {**loaded.describe(), "preprocess": backend.preprocess.to_dict(),
                          "onnx": backend.model_info["onnx"]}
    return backend


@dataclass(frozen=True)
class BackendChoice:
    """What ``--backend``/``--device``/``--half`` resolve to on this machine (``auto`` decided)."""

    backend: str  # "torch" or "onnx"
    device: str  # a torch device string: "cpu", "cuda:0", ...
    half: bool

    def to_dict(self) -> dict[str, object]:
        return {"backend": self.backend, "device": self.device, "half": self.half}


def _auto_cpu_onnx(loaded: LoadedModel) -> bool:
    """``auto`` on the CPU runs the cached ONNX export; False (with the reason logged) when it cannot be made."""
    from trackreid.embed.onnx_backend import cpu_threads
    from trackreid.embed.onnx_export import cached_onnx

    cpu_threads()  # a bad TRACKREID_THREADS is the user's to fix: checked before the export, never a fall back
    try:
        cached_onnx(loaded)
        return True
    except (ImportError, ModelError, OutputError) as e:
        # Only "cannot export here" falls back; input errors surface.
        log.warning("backend auto: running eager PyTorch instead of onnxruntime (%s)", e)
        return False


def choose_backend(reid_model: str | Path, *, device: str = "auto", backend: str = "auto",
                   arch: str | None = None, half: bool = False) -> BackendChoice:
    """Decide ``auto`` once: ``.onnx`` files and CPU weights run on onnxruntime (the weights through their
    cached export, made here if missing), CUDA weights in PyTorch float16. Processes that must embed
    alike (the segments of one camera) build from one choice: :func:`build_backend` with ``choice``."""
    return _choose(reid_model, device=device, backend=backend, arch=arch, half=half)[0]


def _choose(reid_model: str | Path, *, device: str, backend: str, arch: str | None,
            half: bool) -> tuple[BackendChoice, LoadedModel | None]:
    """:func:`choose_backend`, and the weights when deciding loaded them (so they are loaded once)."""
    if backend not in BACKENDS:
        raise InputError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    path = resolve_weights(reid_model)
    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise InputError(f"{path}: an ONNX file runs on onnxruntime; use --backend auto or onnx")
        return BackendChoice("onnx", "cpu" if device == "auto" else str(resolve_device(device)), False), None
    dev = resolve_device(device)
    loaded = None
    if backend == "auto":
        if dev.type == "cpu":
            loaded = load_model(path, arch=arch)
            backend = "onnx" if _auto_cpu_onnx(loaded) else "torch"
        else:
            backend, half = "torch", half or dev.type == "cuda"
    # onnxruntime runs the graph's precision
    return BackendChoice(backend, str(dev), half and backend == "torch"), loaded


def build_backend(reid_model: str | Path, *, device: str = "auto", backend: str = "auto",
                  arch: str | None = None, half: bool = False,
                  input_size: tuple[int, int] | None = None, choice: BackendChoice | None = None) -> Backend:
    """Weights -> a backend that runs them. ``input_size`` (H, W) is ``--reid-size``: the network
    input the backend is built for, and what its ``model_info["preprocess"]`` records. ``choice``
    (from :func:`choose_backend`) replaces ``device``, ``backend`` and ``half``."""
    size = check_input_size(input_size)
    loaded = None
    if choice is None:
        choice, loaded = _choose(reid_model, device=device, backend=backend, arch=arch, half=half)
    path = resolve_weights(reid_model)
    if path.suffix.lower() == ".onnx":
        from trackreid.embed.onnx_backend import OnnxBackend

        return _half_ignored(OnnxBackend.from_path(path, device=device, arch=arch, input_size=size), half)
    loaded = loaded or load_model(path, arch=arch)
    if choice.backend == "onnx":
        return _half_ignored(_onnx_from_weights(loaded, choice.device, size), half)
    pre = replace(loaded.preprocess, height=size[0], width=size[1]) if size else None
    return TorchBackend(loaded, resolve_device(choice.device), half=choice.half, preprocess=pre)


def _half_ignored(backend: Backend, half: bool) -> Backend:
    if half:
        note = "--half ignored: onnxruntime runs the graph's own precision (export with --fp16 for float16)"
        log.warning("%s", note)
        backend.notes.append(note)
    return backend


def build_embedder(reid_model: str | Path, *, device: str = "auto", backend: str = "auto",
                   arch: str | None = None, half: bool = False, batch_size: int = 32,
                   input_size: tuple[int, int] | None = None, choice: BackendChoice | None = None) -> Embedder:
    """The one way every command turns weights into an embedding function."""
    return Embedder(build_backend(reid_model, device=device, backend=backend, arch=arch, half=half,
                                  input_size=input_size, choice=choice), batch_size)
