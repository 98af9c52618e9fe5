"""Load OSNet weights from torchreid, FastReID, boxmot and our own checkpoints, safely.

* Every ``torch.load`` uses ``weights_only=True``. A file that would need arbitrary code to
  unpickle is refused with :class:`UnsafeFileError`; there is no fallback.
* The architecture (family, width, embedding size, BNNeck) is inferred from the keys and
  tensor shapes, never from the file name. ``arch=`` forces one, and a mismatch lists what is
  missing, unexpected and mis-shaped.
* Classifier weights (any number of identities) are dropped: extraction needs the embedding.
* Our own checkpoints are safetensors files whose metadata holds a JSON config
  (``{"format": "trackreid", "arch": ..., "feature_dim": ..., "neck": ..., "preprocess": ...}``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle  # noqa: S403 - only for its exception type
import pickletools
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trackreid.errors import ModelError, UnsafeFileError
from trackreid.models.osnet import OSNet
from trackreid.models.registry import ARCHITECTURES, Preprocess, arch_spec, create_model

log = logging.getLogger(__name__)

FASTREID_PREPROCESS = Preprocess(interpolation="bicubic")
_CLASSIFIER_PREFIXES = ("classifier.", "heads.weight", "heads.classifier.", "heads.bias")


@dataclass
class LoadedModel:
    """A ready-to-use network in eval mode and everything needed to feed and describe it."""

    model: OSNet
    arch: str
    preprocess: Preprocess
    source_format: str  # torchreid | fastreid | trackreid
    path: Path | None
    sha256: str | None
    denormals_zeroed: int = 0

    @property
    def feature_dim(self) -> int:
        return int(self.model.feature_dim)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.path.name if self.path else self.arch,
            "path": str(self.path) if self.path else None,
            "arch": self.arch,
            "format": self.source_format,
            "weights_sha256": self.sha256,
            "feature_dim": self.feature_dim,
            "bnneck": self.model.neck is not None,
            "denormal_weights_zeroed": self.denormals_zeroed,
            "preprocess": self.preprocess.to_dict(),
        }


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_TORCH_SAFE_GLOBALS = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.")


def _pickle_globals(path: Path) -> list[str]:
    """Names of the globals a pickle (or torch zip checkpoint) would import, read without running it."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("data.pkl")), None)
                data = z.read(name) if name else b""
        else:
            data = path.read_bytes()
    except OSError:
        return []
    found: list[str] = []
    strings: list[str] = []
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        try:
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST") and isinstance(arg, str):
                    found.append(arg.replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
        except Exception:  # noqa: BLE001 - a malformed stream just ends the scan
            break
    return found


_EXPECTED = ("Expected a .pth/.pt file saved by torch.save (torchreid, FastReID, boxmot), a trackreid "
             ".safetensors, an .onnx file, or a zoo name (`trackreid models list`)")
_MAGIC = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"GIF8", "a GIF image"),
          (b"BM", "a BMP image"), (b"%PDF", "a PDF document"), (b"\x1f\x8b", "a gzip archive"),
          (b"7z\xbc\xaf", "a 7-zip archive"), (b"Rar!", "a RAR archive"), (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
          (b"OggS", "an Ogg file"), (b"RIFF", "a RIFF file (WebP image, AVI video or WAV audio)"))


def not_weights(path: Path) -> str | None:
    """What ``path`` is when it is plainly not model weights (an image, text, an archive of other
    files, empty, truncated), read from its first bytes; ``None`` when it may be weights."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    if size == 0:
        return "an empty file (0 bytes)"
    if head[4:8] in (b"ftyp", b"moov", b"mdat"):
        return "an MP4/MOV video"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    n = int.from_bytes(head[:8], "little") if len(head) >= 9 else 0
    if head[8:9] == b"{" and 8 + n <= size and path.suffix != ".safetensors":
        return "a safetensors file with another extension (rename it to end in .safetensors)"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "a tar archive (unpack it and pass the weights file inside)"
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):
            return "a truncated or corrupt zip archive (a PyTorch checkpoint without its end? copy it again)"
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        if not any(n.endswith("data.pkl") for n in names):
            few = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
            return f"a zip archive of other files ({few})"
        return None
    if b"\x00" not in head and not head.startswith(b"\x80"):
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if _is_pickle(head):
            return None  # a protocol-0 pickle is ASCII; torch.load (weights_only) judges it
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"a text file (starts with {first!r})"
    return None


def _is_pickle(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) reads as a pickle stream, to its STOP or to its end."""
    ops = 0
    try:
        for op, _, _ in pickletools.genops(head):
            ops += 1
            if op.name == "STOP":
                return True
    except ValueError as e:  # a longer pickle cut by the read ends in "exhausted" or a missing newline
        return ops >= 16 and any(w in str(e) for w in ("exhausted", "no newline", "not enough"))
    except Exception:  # noqa: BLE001 - not a pickle stream
        return False
    return False


def safe_torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)``; unsafe content becomes an :class:`UnsafeFileError`."""
    what = not_weights(path)
    if what is not None:
        raise ModelError(f"{path}: this is {what}, not model weights. {_EXPECTED}")
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it does not expect just before it refuses them;
            # the refusal below says more.
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        suspects = [g for g in _pickle_globals(path) if not g.startswith(_TORCH_SAFE_GLOBALS)]
        what = found.group(1) if found else (suspects[0] if suspects else "an object that needs code to rebuild")
        raise UnsafeFileError(
            f"{path}: refused to load: unpickling it would import and run {what}. trackreid only "
            "loads tensors (torch.load weights_only=True). If you trust the file and its origin, "
            "convert it once, in a separate Python session: load it with weights_only=False, keep "
            "only the tensors of its state dict, and torch.save them to a new file (docs/formats.md)"
        ) from None
    except Exception as e:  # noqa: BLE001 - torch raises many types (RuntimeError, IndexError, ...) for bad bytes
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path}: not a readable PyTorch checkpoint: truncated, corrupt or another kind of "
                         f"file ({reason}). {_EXPECTED}") from None


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    except (SafetensorError, OSError) as e:
        what = not_weights(path)
        found = f"this is {what}" if what else f"not a readable safetensors file ({e})"
        raise ModelError(f"{path}: {found}; expected a .safetensors file written by trackreid or safetensors") from None
    config: dict[str, Any] = {}
    if "trackreid" in meta:
        try:
            config = json.loads(meta["trackreid"])
        except json.JSONDecodeError as e:
            raise ModelError(f"{path}: the 'trackreid' metadata is not valid JSON ({e})") from None
    return tensors, config


def _unwrap(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], str, dict[str, Any]]:
    """Find the state dict inside a checkpoint; say which tool wrote it."""
    config: dict[str, Any] = {}
    fmt = "torchreid"
    if isinstance(obj, Mapping):
        if isinstance(obj.get("trackreid"), Mapping):
            config = dict(obj["trackreid"])
            fmt = "trackreid"
        for key in ("model", "state_dict", "model_state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(k, str) for k in inner):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ModelError(f"{path}: no state dict found (expected a dict of tensors, optionally under "
                         "'state_dict' or 'model')")
    sd = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise ModelError(f"{path}: the checkpoint holds no tensors; expected a state dict, as written by "
                         "torch.save(model.state_dict(), path)")
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    if any(k.startswith("backbone.") for k in sd):
        fmt = "fastreid" if fmt != "trackreid" else fmt
    return sd, fmt, config


def _from_fastreid(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Preprocess]:
    """Map FastReID names onto ours: ``backbone.X`` -> ``X``, BNNeck -> ``neck``."""
    out: dict[str, torch.Tensor] = {}
    pre = FASTREID_PREPROCESS
    mean = sd.get("pixel_mean")
    std = sd.get("pixel_std")
    if mean is not None and std is not None:
        m = (mean.flatten() / 255.0).tolist()
        s = (std.flatten() / 255.0).tolist()
        pre = Preprocess(mean=(m[0], m[1], m[2]), std=(s[0], s[1], s[2]), interpolation="bicubic")
    for k, v in sd.items():
        if k.startswith("backbone."):
            out[k[len("backbone."):]] = v
        elif k.startswith("heads.bottleneck.0."):
            out["neck." + k[len("heads.bottleneck.0."):]] = v
        elif k.startswith(("heads.", "pixel_")):
            continue  # classifier and normalisation buffers
        else:
            out[k] = v
    return out, pre


def _strip_classifier(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in sd.items() if not k.startswith(_CLASSIFIER_PREFIXES)}


@dataclass
class _Mismatch:
    arch: str
    missing: list[str]
    unexpected: list[str]
    misshaped: list[str]

    @property
    def score(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.misshaped)

    def explain(self) -> str:
        def few(xs: list[str]) -> str:
            return ", ".join(xs[:4]) + (f" ... (+{len(xs) - 4} more)" if len(xs) > 4 else "")

        parts = []
        if self.missing:
            parts.append(f"missing {len(self.missing)}: {few(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}: {few(self.unexpected)}")
        if self.misshaped:
            parts.append(f"mis-shaped {len(self.misshaped)}: {few(self.misshaped)}")
        return "; ".join(parts)


def _head_options(sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    fc = sd.get("fc.0.weight")
    return {
        "feature_dim": int(fc.shape[0]) if fc is not None else None,
        "no_fc": fc is None,
        "neck": "neck.weight" in sd,
    }


def _compare(arch: str, sd: Mapping[str, torch.Tensor]) -> _Mismatch:
    ref = create_model(arch, **_head_options(sd)).state_dict()  # on the CPU: faster than "meta" here
    missing = [k for k in ref if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in ref]
    misshaped = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(ref[k].shape)}"
        for k in ref
        if k in sd and tuple(sd[k].shape) != tuple(ref[k].shape)
    ]
    return _Mismatch(arch, missing, unexpected, misshaped)


def infer_arch(sd: Mapping[str, torch.Tensor], path: Path | None = None, arch: str | None = None) -> str:
    """Return the architecture whose state dict matches ``sd`` exactly (keys and shapes)."""
    where = f"{path}: " if path else ""
    if arch is not None:
        arch_spec(arch)  # unknown name -> clear error
        m = _compare(arch, sd)
        if m.score:
            raise ModelError(f"{where}these weights do not fit --arch {arch}: {m.explain()}. "
                             "Leave --arch out to infer the architecture from the file")
        return arch
    # Compare the likely candidates first (same stem width, same family); each comparison
    # builds a network, so trying all variants costs seconds.
    stem = sd.get("conv1.conv.weight")
    ain = any(k.startswith("pool2.") for k in sd)

    def likely(name: str) -> bool:
        spec = ARCHITECTURES[name]
        return (stem is None or spec.channels[0] == stem.shape[0]) and (spec.family == "osnet_ain") == ain

    ordered = sorted(ARCHITECTURES, key=lambda a: not likely(a))
    results = []
    for a in ordered:
        results.append(_compare(a, sd))
        if results[-1].score == 0:
            return a
    best = min(results, key=lambda r: r.score)
    raise ModelError(f"{where}not an OSNet checkpoint of a known variant; closest is {best.arch} "
                     f"({best.explain()}). Known: {', '.join(ARCHITECTURES)}")


def zero_denormals(model: torch.nn.Module) -> int:
    """Set subnormal float weights to zero (they slow CPU inference several-fold)."""
    count = 0
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                tiny = torch.finfo(t.dtype).tiny
                mask = (t != 0) & (t.abs() < tiny)
                n = int(mask.sum())
                if n:
                    t[mask] = 0
                    count += n
    return count


def load_state(path: Path) -> tuple[dict[str, torch.Tensor], str, dict[str, Any], Preprocess]:
    """Read a checkpoint into (our-named state dict without classifier, format, config, preprocess)."""
    if path.is_dir():
        raise ModelError(f"{path}: is a folder; --reid-model expects a weights file inside it or a zoo name")
    if not path.is_file():
        raise ModelError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        sd, config = _read_safetensors(path)
        fmt = "trackreid"
    else:
        sd, fmt, config = _unwrap(safe_torch_load(path), path)
    pre = Preprocess.from_dict(config["preprocess"]) if "preprocess" in config else Preprocess()
    if fmt == "fastreid" or any(k.startswith("backbone.") for k in sd):
        sd, fr_pre = _from_fastreid(sd)
        if "preprocess" not in config:
            pre = fr_pre
    return _strip_classifier(sd), fmt, config, pre


def load_model(path: str | Path, arch: str | None = None) -> LoadedModel:
    """Load weights from ``path`` into the matching OSNet, in eval mode on the CPU."""
    path = Path(path)
    sd, fmt, config, pre = load_state(path)
    if arch is None and config.get("arch"):
        arch = str(config["arch"])
    name = infer_arch(sd, path, arch)
    model = create_model(name, **_head_options(sd))
    model.load_state_dict(sd, strict=False)  # classifier absent by design; the rest was compared
    model.eval()
    denormals = zero_denormals(model)
    if denormals:
        log.debug("%s: set %d subnormal weights to zero (they slow CPU inference)", path, denormals)
    return LoadedModel(model, name, pre, fmt, path, sha256_file(path), denormals)


def save_checkpoint(
    model: OSNet, arch: str, path: Path, preprocess: Preprocess | None = None, extra: dict[str, Any] | None = None
) -> None:
    """Write our safe checkpoint: safetensors with the JSON config in its metadata."""
    from safetensors.torch import save_file

    config = {
        "format": "trackreid",
        "arch": arch,
        "feature_dim": model.feature_dim,
        "neck": model.neck is not None,
        "preprocess": (preprocess or Preprocess()).to_dict(),
        **(extra or {}),
    }
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    from trackreid.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"trackreid": json.dumps(config)})
