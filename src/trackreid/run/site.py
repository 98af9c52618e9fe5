"""``site.yml`` (or a CSV, one row per camera): the cameras of a site and the shared options.

Minimal form, paths relative to the file::

    reid_model: weights/osnet_x0_25_msmt17.pth
    max_crops_per_track: 10
    cameras:
      - {name: camA, video: camA.mp4, tracks: camA.txt}
      - {name: camB, video: camB.mp4, tracks: camB.txt, fps: 25, time_offset: 3.5}

Unknown keys are errors with a did-you-mean. A CSV has the camera columns (``name,video,
tracks[,fps,time_offset]``) and takes the shared options from the command line.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from trackreid.errors import InputError
from trackreid.sampling import STRATEGIES
from trackreid.suggest import check_keys, did_you_mean

CAMERA_KEYS = ("name", "video", "tracks", "fps", "time_offset")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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
    associate: dict[str, Any] = field(default_factory=dict)  # AssociateConfig fields (threshold, max_gap, ...)


OPTION_KEYS = tuple(f.name for f in fields(SiteOptions))


@dataclass(frozen=True)
class Site:
    path: Path
    cameras: tuple[Camera, ...]
    options: SiteOptions


def _number(where: str, key: str, value: Any, kind: type) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{where}: {key} must be a number, got {value!r}")
    try:
        return kind(value)
    except ValueError:
        raise InputError(f"{where}: {key} must be a number, got {value!r}") from None


def _camera(where: str, raw: Any, base: Path) -> Camera:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping {{name: ..., video: ..., tracks: ...}}, got {raw!r}")
    check_keys(where, raw, CAMERA_KEYS)
    for k in ("name", "video", "tracks"):
        if raw.get(k) in (None, ""):
            raise InputError(f"{where}: the camera has no {k!r}; every camera needs name, video and tracks")
    name = str(raw["name"])
    if not _NAME.match(name):
        raise InputError(f"{where}: camera name {name!r} must be letters, digits, '.', '_' or '-' "
                         "(it names the camera's output folder)")
    fps = _number(where, "fps", raw.get("fps"), float)
    if fps is not None and fps <= 0:
        raise InputError(f"{where}: fps must be positive, got {fps}")
    return Camera(name, base / str(raw["video"]), base / str(raw["tracks"]), fps,
                  _number(where, "time_offset", raw.get("time_offset"), float) or 0.0)


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
            if not isinstance(v, dict):
                raise InputError(f"{path}: associate must be a mapping of association options, got {v!r}")
            kwargs[k] = dict(v)
        elif isinstance(want, bool):
            if not isinstance(v, bool):
                raise InputError(f"{path}: {k} must be true or false, got {v!r}")
            kwargs[k] = v
        elif isinstance(want, (int, float)):
            n = _number(str(path), k, v, type(want))
            kwargs[k] = want if n is None else n
        else:
            kwargs[k] = None if v is None else str(v)
    opts = SiteOptions(**kwargs)
    model = opts.reid_model
    if model and not Path(model).is_absolute():
        from_file = "reid_model" in raw and overrides.get("reid_model") is None  # else relative to the working folder
        candidate = path.parent / model if from_file else Path(model)
        if candidate.exists():  # else a zoo name
            opts = SiteOptions(**{**kwargs, "reid_model": str(candidate.resolve())})
    if opts.sampling not in STRATEGIES:
        raise InputError(f"{path}: sampling {opts.sampling!r}: expected one of {', '.join(STRATEGIES)}")
    if opts.max_crops_per_track < 1 or opts.batch_size < 1:
        raise InputError(f"{path}: max_crops_per_track and batch_size must be at least 1")
    if opts.segment_minutes <= 0:
        raise InputError(f"{path}: segment_minutes must be positive, got {opts.segment_minutes}")
    return opts


def read_site(path: str | Path, **overrides: Any) -> Site:
    """Read a ``site.yml`` or a ``.csv``; ``overrides`` (non-None) replace the file's shared options."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such site file (--site expects a site.yml or a .csv, one camera per row)")
    base = path.resolve().parent  # absolute: workers (Ray's above all) need not share our working folder
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        cameras = [_camera(f"{path}, row {i + 2}", {k.strip(): (v or "").strip() for k, v in r.items() if k},
                           base) for i, r in enumerate(rows)]
        opts = _options(path, {}, overrides)
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise InputError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("cameras"), list):
            raise InputError(f"{path}: expected a mapping with a 'cameras' list "
                             "(cameras: [{name: camA, video: camA.mp4, tracks: camA.txt}, ...])")
        cameras = [_camera(f"{path}, camera {i + 1}", c, base) for i, c in enumerate(data["cameras"])]
        opts = _options(path, {k: v for k, v in data.items() if k != "cameras"}, overrides)
    if not cameras:
        raise InputError(f"{path}: lists no cameras")
    names = [c.name for c in cameras]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"{path}: camera names must be unique; repeated: {', '.join(dup)}")
    if not opts.reid_model:
        raise InputError(f"{path}: no reid_model; add `reid_model: osnet_x0_25_msmt17.pth` to the file "
                         "or pass --reid-model")
    return Site(path, tuple(cameras), opts)
