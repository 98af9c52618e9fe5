"""Export a loaded OSNet to ONNX, and prove the file computes what PyTorch computes.

This is the export-and-verify core, next to the backend that runs its output: the
``export-onnx`` command (:mod:`trackreid.export`) and the ``--backend auto`` path
(:mod:`trackreid.embed.factory`) both call it from above.

:func:`export_loaded` writes ``model.onnx`` and its sidecar ``model.onnx.json``. The graph
takes float32 NCHW images already normalised (``(x / 255 - mean) / std``, RGB, the model's
size) and returns the raw embedding (not L2-normalised), like torchreid exports, so other
tools can use it unchanged. The description (input/output names, preprocessing, where
normalisation happens, the source weights' sha256, the verification result) is written twice:
into the sidecar and into the model's ``metadata_props`` under ``trackreid``.

Before anything is kept, the file passes ``onnx.checker`` and is run with onnxruntime against
eager PyTorch at batch 1 and batch 16; every row must reach cosine >= 0.9999. On failure the
output is deleted (it was never renamed into place) and a :class:`ModelError` says why.

:func:`cached_onnx` is the ``--backend auto`` path for ``.pth`` weights on the CPU: export once
into ``<cache>/onnx/<sha256>.onnx`` (verified, written atomically), reuse it afterwards. That
file takes RGB uint8 NHWC pixels and normalises inside the graph (``--uint8-input``).
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trackreid import __version__
from trackreid.embed.backend import TorchBackend
from trackreid.embed.onnx_backend import METADATA_KEY, OnnxBackend
from trackreid.embed.preprocess import resize_crops
from trackreid.errors import InputError, ModelError
from trackreid.io.atomic import atomic_path
from trackreid.models.registry import Preprocess
from trackreid.models.weights import LoadedModel

log = logging.getLogger(__name__)

FORMAT = "trackreid-onnx"
FORMAT_VERSION = 1
INPUT_NAME = "images"
OUTPUT_NAME = "features"
MIN_COSINE = 0.9999
VERIFY_BATCHES = (1, 16)
OPSET_RANGE = (11, 20)


@dataclass
class ExportResult:
    path: Path
    sidecar: Path
    info: dict[str, Any]

    @property
    def min_cosine(self) -> float:
        return min(v["min_cosine"] for v in self.info["verification"]["batches"].values())


def sidecar_path(onnx_path: Path) -> Path:
    """``osnet.onnx`` -> ``osnet.onnx.json``."""
    return onnx_path.with_name(onnx_path.name + ".json")


def require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ModelError("ONNX export needs the onnx package: pip install onnx") from None
    return onnx


def synthetic_crops(n: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Person-crop-sized BGR images of smooth random structure (used when no real crops are given)."""
    rng = np.random.default_rng(seed)
    import cv2

    crops = []
    for _ in range(n):
        h, w = int(rng.integers(150, 320)), int(rng.integers(60, 110))
        coarse = rng.integers(0, 256, size=(8, 4, 3), dtype=np.uint8)
        img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        noise = rng.integers(-12, 13, size=img.shape)
        crops.append(np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8))
    return crops


class _Fp16(torch.nn.Module):
    """float32 in, float16 network, float32 out (the file keeps float32 inputs and outputs)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x.half())
        assert isinstance(out, torch.Tensor)
        return out.float()


class _Uint8Input(torch.nn.Module):
    """RGB uint8 NHWC in; the cast, normalisation and transpose run inside the graph."""

    def __init__(self, model: torch.nn.Module, pre: Preprocess) -> None:
        super().__init__()
        self.model = model
        std = torch.tensor(pre.std).view(1, 3, 1, 1) * 255.0
        self.scale: torch.Tensor
        self.shift: torch.Tensor
        self.register_buffer("scale", 1.0 / std)
        self.register_buffer("shift", torch.tensor(pre.mean).view(1, 3, 1, 1) * 255.0 / std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x.permute(0, 3, 1, 2).float() * self.scale - self.shift)
        assert isinstance(out, torch.Tensor)
        return out


def _torch_export(model: torch.nn.Module, path: Path, opset: int, static_batch: int | None,
                  height: int, width: int, uint8_input: bool, dynamic_size: bool) -> str:
    """Write the graph to ``path``; return the exporter used."""
    # Traced at the verification's batch size: the check then runs PyTorch on a shape it has seen.
    n = static_batch or max(VERIFY_BATCHES)
    shape = (n, height, width, 3) if uint8_input else (n, 3, height, width)
    dummy = torch.zeros(shape, dtype=torch.uint8 if uint8_input else torch.float32)
    names: dict[str, Any] = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME], "opset_version": opset}
    axes: dict[str, dict[int, str]] = {INPUT_NAME: {}, OUTPUT_NAME: {}}
    if not static_batch:
        axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    if dynamic_size:
        axes[INPUT_NAME].update({1: "height", 2: "width"} if uint8_input else {2: "height", 3: "width"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: one second for OSNet, any opset. torch >= 2.9 deprecates it;
        # the torch.export-based one is the fallback (slower, opset >= 18).
        try:
            torch.onnx.export(model, (dummy,), str(path), dynamo=False, dynamic_axes=axes if axes[INPUT_NAME] else None,
                              do_constant_folding=True, **names)
            return "torch.onnx (TorchScript)"
        except Exception as e:  # noqa: BLE001 - any failure: try the other exporter
            first = e
        try:
            dims = {i: torch.export.Dim(name, min=1 if i == 0 else 32) for i, name in axes[INPUT_NAME].items()}
            shapes = {"x": dims} if dims else None
            # It writes opset 18 at least; asking for less only triggers a failing down-conversion.
            names["opset_version"] = max(opset, 18)
            torch.onnx.export(model, (dummy,), str(path), dynamo=True, dynamic_shapes=shapes,
                              external_data=False, optimize=True, verbose=False, **names)
            return "torch.onnx (torch.export)"
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"ONNX export failed with both exporters: {first}; {e}") from None


def _row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    both_zero = (na == 0) & (nb == 0)
    cos = (a * b).sum(axis=1) / np.maximum(na * nb, 1e-30)
    return np.where(both_zero, 1.0, cos)


def _reference_embeddings(loaded: LoadedModel, batch: np.ndarray) -> np.ndarray:
    """Eager float32 PyTorch (contiguous layout): the ground truth an export must match."""
    return TorchBackend(loaded, torch.device("cpu"), channels_last=False).run(batch)


def verify_onnx(onnx_path: Path, loaded: LoadedModel, crops: Sequence[np.ndarray],
                min_cosine: float = MIN_COSINE, name: str | None = None) -> dict[str, Any]:
    """Compare onnxruntime with PyTorch at each batch size of :data:`VERIFY_BATCHES`; raise on a mismatch."""
    backend = OnnxBackend.from_path(onnx_path, device="cpu")
    need = max(VERIFY_BATCHES)
    pool = [crops[i % len(crops)] for i in range(need)]
    prepared = resize_crops(pool, loaded.preprocess)
    # One PyTorch run at the largest batch is the reference for every batch size (eager PyTorch
    # rows do not depend on the batch; a second shape would only cost another warm-up).
    reference = _reference_embeddings(loaded, prepared)
    batches: dict[str, dict[str, float]] = {}
    for n in VERIFY_BATCHES:
        batch = prepared[:n]
        got, want = backend.run(batch), reference[:n]
        cos = _row_cosine(got, want) if got.shape == want.shape else np.array([-1.0])
        worst = float(cos.min()) if np.all(np.isfinite(got)) else float("nan")
        batches[f"batch_{n}"] = {"min_cosine": worst, "max_abs_diff": float(np.abs(got - want).max())
                                 if got.shape == want.shape else float("inf")}
        if not worst >= min_cosine:
            raise ModelError(
                f"{name or onnx_path.name}: onnxruntime output differs from PyTorch at batch {n} (worst row cosine "
                f"{worst:.6f} < {min_cosine}, shapes {got.shape} vs {want.shape}); the export was deleted. "
                "Try another --opset, or export without --fp16"
            )
    return {"min_cosine_required": min_cosine, "batches": batches, "num_crops": len(crops)}


def _describe(loaded: LoadedModel, opset: int, fp16: bool, static_batch: int | None, exporter: str,
              uint8_input: bool, dynamic_size: bool) -> dict[str, Any]:
    pre = loaded.preprocess
    batch: int | str = static_batch or "batch"
    h: int | str = "height" if dynamic_size else pre.height
    w: int | str = "width" if dynamic_size else pre.width
    if uint8_input:
        inp = {"dtype": "uint8", "layout": "NHWC", "shape": [batch, h, w, 3]}
    else:
        inp = {"dtype": "float32", "layout": "NCHW", "shape": [batch, 3, h, w]}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "input": {"name": INPUT_NAME, **inp, "color": pre.channel_order},
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [batch, loaded.feature_dim],
                   "l2_normalized": False},
        "preprocess": pre.to_dict(),
        "normalization_in_graph": uint8_input,
        "arch": loaded.arch,
        "feature_dim": loaded.feature_dim,
        "bnneck": loaded.model.neck is not None,
        "source_weights": {"name": loaded.path.name if loaded.path else None, "sha256": loaded.sha256,
                           "format": loaded.source_format},
        "opset": opset,
        "fp16": fp16,
        "static_batch": static_batch,
        "exporter": exporter,
        "torch_version": torch.__version__,
        "trackreid_version": __version__,
    }


def _set_metadata(proto: Any, info: dict[str, Any]) -> None:
    for p in list(proto.metadata_props):
        if p.key == METADATA_KEY:
            proto.metadata_props.remove(p)
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(info, sort_keys=True)


def export_loaded(loaded: LoadedModel, output: str | Path, *, opset: int = 17, fp16: bool = False,
                  static_batch: int | None = None, uint8_input: bool = False, dynamic_size: bool = False,
                  verify_crops: Sequence[np.ndarray] | None = None,
                  crops_source: str | None = None, min_cosine: float = MIN_COSINE) -> ExportResult:
    """Export an already loaded model to ``output`` (+ sidecar); verified, atomic."""
    onnx = require_onnx()
    output = Path(output)
    if not OPSET_RANGE[0] <= opset <= OPSET_RANGE[1]:
        raise InputError(f"--opset {opset}: expected {OPSET_RANGE[0]}..{OPSET_RANGE[1]} (17 is a safe default)")
    if static_batch is not None and static_batch < 1:
        raise InputError(f"--static-batch {static_batch}: expected a positive batch size")
    crops = list(verify_crops) if verify_crops else synthetic_crops()
    source = crops_source or ("given crops" if verify_crops else "synthetic crops (no real crops given)")
    pre = loaded.preprocess
    side = sidecar_path(output)
    loaded.model.eval()
    net: torch.nn.Module = _Fp16(loaded.model) if fp16 else loaded.model
    if uint8_input:
        net = _Uint8Input(net, pre)
    with atomic_path(output) as tmp, atomic_path(side) as tmp_side:
        exporter = _torch_export(net, tmp, opset, static_batch, pre.height, pre.width, uint8_input, dynamic_size)
        proto = onnx.load(str(tmp))
        actual_opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), opset)
        if actual_opset != opset:
            log.info("the exporter wrote opset %d (asked for %d)", actual_opset, opset)
        info = _describe(loaded, actual_opset, fp16, static_batch, exporter, uint8_input, dynamic_size)
        _set_metadata(proto, info)
        try:
            onnx.checker.check_model(proto, full_check=True)
        except Exception as e:  # noqa: BLE001 - onnx.checker raises ValidationError and others
            raise ModelError(f"{output.name}: the exported graph fails onnx.checker ({e}); "
                             "nothing was written") from None
        onnx.save(proto, str(tmp))
        verification = verify_onnx(tmp, loaded, crops, min_cosine, name=str(output))
        verification["crops"] = source
        info["verification"] = verification
        _set_metadata(proto, info)
        onnx.save(proto, str(tmp))
        tmp_side.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return ExportResult(output, side, info)


def _cache_entry_ok(path: Path, sha256: str) -> bool:
    side = sidecar_path(path)
    if not (path.is_file() and side.is_file()):
        return False
    try:
        info = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return bool(info.get("format_version") == FORMAT_VERSION
                and info.get("source_weights", {}).get("sha256") == sha256
                and "verification" in info)


def cached_onnx(loaded: LoadedModel, cache: Path | None = None) -> Path:
    """The verified ONNX export of ``loaded``, made once per weights file (keyed by its sha256)."""
    if loaded.sha256 is None:
        raise ModelError("weights without a file (and so without a sha256) cannot be cached as ONNX")
    if cache is None:
        from trackreid.models.zoo import cache_dir

        cache = cache_dir() / "onnx"
    path = cache / f"{loaded.sha256}.onnx"
    if _cache_entry_ok(path, loaded.sha256):
        return path
    log.info("exporting %s to ONNX once (cached at %s)", loaded.path.name if loaded.path else loaded.arch, path)
    # uint8 input: the cast, normalisation and transpose run inside onnxruntime rather than in numpy
    # (0-12% faster here, see docs/benchmarks.md); the file is internal, so the convention is ours.
    # Dynamic height and width: one cached file serves every `--reid-size` (the backend is built for it).
    export_loaded(loaded, path, uint8_input=True, dynamic_size=True)
    return path
