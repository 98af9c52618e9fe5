"""``site.yml`` (or a CSV, one row per camera): the cameras of a site and the shared options.

Minimal form, paths relative to the file::

    reid_model: weights/osnet_x0_25_msmt17.pth
    max_crops_per_track: 10
    cameras:
      - {name: camA, video: camA.mp4, tracks: camA.txt}
      - {name: camB, video: camB.mp4, tracks: camB.txt, fps: 25, time_offset: 3.5}

The whole file is checked before any work starts (:func:`read_site`): unknown keys (with a
did-you-mean), wrong types, values out of range, missing videos, tracks, weights or topology
files, camera names that are repeated or would leave the output folder, and the ``associate:``
mapping (:meth:`~trackreid.associate.config.AssociateConfig.from_mapping`; a ``topology`` path
is relative to the file and read at once, so the association's resume key holds its content).
Each problem is one error naming the file and the key. A CSV has the camera columns
(``name,video,tracks[,fps,time_offset]``) and takes the shared options from the command line.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from trackreid.associate.config import AssociateConfig
from trackreid.errors import InputError, ModelError
from trackreid.io.mot import TRACKS_FORMATS
from trackreid.sampling import STRATEGIES
from trackreid.suggest import check_keys, did_you_mean

CAMERA_KEYS = ("name", "video", "tracks", "fps", "time_offset")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
BACKENDS = ("auto", "torch", "onnx")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
MAX_FPS = 1000.0


@dataclass(frozen=True)
class Camera:
    name: str
    video: Path
    tracks: Path
    fps: float | None = None
    time_offset: float = 0.0


@dataclass(frozen=True)
class SiteOptions:
    """Shared extract options (the names of ``trackreid extract``'s flags, with underscores)."""

    reid_model: str | None = None
    max_crops_per_track: int = 10
    sampling: str = "quality"
    min_box_height: int = 40
    min_visibility: float = 0.0
    frame_offset: int = 0
    tracks_format: str = "auto"
    save_crops: bool = False
    batch_size: int = 32
    backend: str = "auto"
    device: str = "auto"
    arch: str | None = None
    segment_minutes: float = 30.0
    associate: AssociateConfig = field(default_factory=AssociateConfig)


OPTION_KEYS = tuple(f.name for f in fields(SiteOptions))
# (smallest, largest) of each number: beyond them a value is a typo (or would exhaust memory)
_RANGES: dict[str, tuple[float, float]] = {
    "max_crops_per_track": (1, 100_000), "min_box_height": (0, 100_000), "min_visibility": (0.0, 1.0),
    "frame_offset": (-1_000_000, 1_000_000), "batch_size": (1, 4096), "segment_minutes": (0.001, 1e6)}
_CHOICES: dict[str, tuple[str, ...]] = {"sampling": STRATEGIES, "tracks_format": TRACKS_FORMATS,
                                        "backend": BACKENDS}


@dataclass(frozen=True)
class Site:
    path: Path
    cameras: tuple[Camera, ...]
    options: SiteOptions


def _number(where: str, key: str, value: Any, kind: type, lo: float = -math.inf, hi: float = math.inf) -> Any:
    """``value`` as ``kind`` (int or float) within [lo, hi]; None for an empty value."""
    if value is None or value == "":
        return None
    what = "a whole number" if kind is int else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{where}: {key} must be {what}, got {value!r}")
    try:
        n = float(value)
    except ValueError:
        raise InputError(f"{where}: {key} must be {what}, got {value!r}") from None
    if not math.isfinite(n) or (kind is int and n != round(n)):
        raise InputError(f"{where}: {key} must be {what}, got {value!r}")
    if not lo <= n <= hi:
        raise InputError(f"{where}: {key} {value!r} is out of range: expected {lo:g} to {hi:g}")
    return int(n) if kind is int else n


def _file(where: str, key: str, base: Path, value: Any) -> Path:
    path = base / str(value)
    if not path.is_file():
        what = "video file" if key == "video" else "tracks file (MOT .txt)"
        raise InputError(f"{where}: {key} {value!r}: no such {what} ({path}); paths are relative to the site file")
    return path


def _camera(where: str, raw: Any, base: Path) -> Camera:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping {{name: ..., video: ..., tracks: ...}}, got {raw!r}")
    check_keys(where, raw, CAMERA_KEYS)
    for k in ("name", "video", "tracks"):
        if raw.get(k) in (None, ""):
            raise InputError(f"{where}: the camera has no {k!r}; every camera needs name, video and tracks")
        if not isinstance(raw[k], (str, int)) or isinstance(raw[k], bool):
            raise InputError(f"{where}: {k} must be a name or path, got {raw[k]!r}")
    name = str(raw["name"])
    if not _NAME.match(name) or len(name) > 100:
        raise InputError(f"{where}: camera name {name!r} must be letters, digits, '.', '_' or '-', starting with a "
                         "letter or digit, at most 100 characters (it names the camera's output folder)")
    fps = _number(where, "fps", raw.get("fps"), float, 1e-6, MAX_FPS)
    offset = _number(where, "time_offset", raw.get("time_offset"), float, -1e9, 1e9) or 0.0
    video = _file(where, "video", base, raw["video"])
    tracks = _file(where, "tracks", base, raw["tracks"])
    return Camera(name, video, tracks, fps, offset)


def _options(path: Path, raw: dict[str, Any], overrides: dict[str, Any]) -> SiteOptions:
    for k in raw:
        if k not in OPTION_KEYS:
            raise InputError(f"{path}: unknown key {k!r}{did_you_mean(str(k), (*OPTION_KEYS, 'cameras'))}; "
                             f"known keys: cameras, {', '.join(OPTION_KEYS)}")
    values = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
    defaults = SiteOptions()
    kwargs: dict[str, Any] = {}
    for k, v in values.items():
        want = getattr(defaults, k)
        if k == "associate":
            kwargs[k] = AssociateConfig.from_mapping({} if v is None else v, f"{path}: associate", path.parent)
        elif isinstance(want, bool):
            if not isinstance(v, bool):
                raise InputError(f"{path}: {k} must be true or false, got {v!r}")
            kwargs[k] = v
        elif isinstance(want, (int, float)):
            n = _number(str(path), k, v, type(want), *_RANGES.get(k, (-math.inf, math.inf)))
            kwargs[k] = want if n is None else n
        else:
            if v is not None and not isinstance(v, (str, int, float)) or isinstance(v, bool):
                raise InputError(f"{path}: {k} must be a name, got {v!r}")
            kwargs[k] = None if v is None else str(v)
            choices = _CHOICES.get(k)
            if choices and kwargs[k] not in choices:
                raise InputError(f"{path}: {k} {v!r}: expected one of {', '.join(choices)}"
                                 f"{did_you_mean(str(v), choices)}")
    opts = SiteOptions(**kwargs)
    if not _DEVICE.match(opts.device):
        raise InputError(f"{path}: device {opts.device!r}: expected auto, cpu, cuda, cuda:N or mps")
    model = opts.reid_model
    if model and not Path(model).is_absolute():
        from_file = "reid_model" in raw and overrides.get("reid_model") is None  # else relative to the working folder
        candidate = path.parent / model if from_file else Path(model)
        if candidate.exists():  # else a zoo name
            opts = SiteOptions(**{**kwargs, "reid_model": str(candidate.resolve())})
    return opts


def _check_model(path: Path, reid_model: str) -> None:
    from trackreid.models.zoo import resolve_weights

    try:
        found = resolve_weights(reid_model)
    except ModelError as e:
        raise InputError(f"{path}: reid_model: {e}") from None
    if not found.is_file():
        raise InputError(f"{path}: reid_model {reid_model!r} is a folder; expected a weights file (.pth, .pt, "
                         ".safetensors, .onnx) or a zoo name")


def read_site(path: str | Path, **overrides: Any) -> Site:
    """Read and check a ``site.yml`` or a ``.csv``; ``overrides`` (non-None) replace the file's shared options.

    Everything that can be checked without decoding is checked here, before any work starts.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such site file (--site expects a site.yml or a .csv, one camera per row)")
    base = path.resolve().parent  # absolute: workers (Ray's above all) need not share our working folder
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file; --site expects a site.yml or a .csv") from None
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        cameras = [_camera(f"{path}, row {i + 2}", {k.strip(): (v or "").strip() for k, v in r.items() if k},
                           base) for i, r in enumerate(rows)]
        opts = _options(path, {}, overrides)
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise InputError(f"{path}{where}: not valid YAML ({problem})") from None
        if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
            raise InputError(f"{path}: expected a mapping with a 'cameras' list "
                             "(cameras: [{name: camA, video: camA.mp4, tracks: camA.txt}, ...])")
        opts = _options(path, {k: v for k, v in data.items() if k != "cameras"}, overrides)
        cameras = [_camera(f"{path}, camera {i + 1}", c, base) for i, c in enumerate(data["cameras"])]
    if not cameras:
        raise InputError(f"{path}: lists no cameras")
    names = [c.name for c in cameras]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"{path}: camera names must be unique; repeated: {', '.join(dup)}")
    if not opts.reid_model:
        raise InputError(f"{path}: no reid_model; add `reid_model: osnet_x0_25_msmt17.pth` to the file "
                         "or pass --reid-model")
    _check_model(path, opts.reid_model)
    topology = opts.associate.topology
    if topology is not None and not opts.associate.learns_topology:
        from trackreid.associate.constraints import parse_topology

        assert not isinstance(topology, (str, Path))  # read by AssociateConfig.from_mapping
        parse_topology(topology, names)  # links name cameras of this site, transits are [min, max]
    return Site(path, tuple(cameras), opts)
