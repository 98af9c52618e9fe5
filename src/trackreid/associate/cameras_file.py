"""The cameras file (``--cameras cameras.yml``): every camera of a site in one YAML file.

::

    cameras:
      - name: cam1
        features: runs/cam1        # extract output folder, .npz or .pkl (relative to this file)
        fps: 10                    # optional: else --fps, else the video's fps in the metadata
        time_offset: 0.0           # seconds added to this camera's clock (default 0)
        tracks: cam1/tracks.txt    # optional MOT file (else the one named in the metadata)
      - name: cam2
        features: runs/cam2
    links:                         # optional topology (see trackreid.associate.constraints)
      - cameras: [cam1, cam2]
        transit: [2, 30]

``gt``, ``video`` and ``crops_dir`` are accepted per camera too (the synthetic sites write
``gt`` and ``video``). ``features`` may be left out for a camera that ``--features DIR
--camera NAME`` provides on the command line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trackreid.associate.constraints import load_yaml
from trackreid.associate.tracks import CameraInput
from trackreid.errors import InputError
from trackreid.suggest import check_keys, did_you_mean

TOP_KEYS = ("cameras", "links")
CAMERA_KEYS = ("name", "features", "fps", "time_offset", "tracks", "crops_dir", "gt", "video")


def _path(value: Any, base: Path, where: str, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}: '{key}' must be a path, found {value!r}")
    p = Path(value).expanduser()
    if p.is_absolute():
        return p
    return base / p if (base / p).exists() or not p.exists() else p


def _number(value: Any, where: str, key: str, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and value <= 0):
        raise InputError(f"{where}: '{key}' must be a {'positive ' if positive else ''}number, found {value!r}")
    return float(value)


def read_cameras_file(path: str | Path, given: Mapping[str, str | Path] | None = None
                      ) -> tuple[list[CameraInput], dict[str, Any] | None]:
    """(cameras, topology dict or None). ``given``: features from the command line, by camera name."""
    path = Path(path)
    data = load_yaml(path, "cameras")
    if not isinstance(data, Mapping):
        raise InputError(f"{path}: expected a mapping with a 'cameras' list (name, features, fps, time_offset, "
                         "tracks), found " + type(data).__name__)
    for key in data:
        if key not in TOP_KEYS:
            raise InputError(f"{path}: unknown key {key!r}{did_you_mean(str(key), TOP_KEYS)}; allowed: "
                             f"{', '.join(TOP_KEYS)}")
    entries = data.get("cameras")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: 'cameras' must be a non-empty list of {{name, features, fps, time_offset}}")
    given = dict(given or {})
    base = path.parent
    out: list[CameraInput] = []
    for n, entry in enumerate(entries, 1):
        where = f"{path}: cameras[{n}]"
        if not isinstance(entry, Mapping):
            raise InputError(f"{where}: expected {{name: ..., features: ...}}, found {entry!r}")
        check_keys(where, entry, CAMERA_KEYS)
        name = entry.get("name")
        if not isinstance(name, (str, int)) or isinstance(name, bool) or not str(name).strip():
            raise InputError(f"{where}: every camera needs a 'name'")
        name = str(name)
        if name in given:
            features: str | Path = given.pop(name)
        elif "features" in entry:
            features = _path(entry["features"], base, where, "features")
        else:
            raise InputError(f"{where}: camera {name!r} has no 'features'; add features: <extract folder> or pass "
                             f"--features DIR --camera {name}")
        out.append(CameraInput(
            name=name, features=features,
            fps=_number(entry["fps"], where, "fps", True) if entry.get("fps") is not None else None,
            time_offset=_number(entry.get("time_offset", 0.0), where, "time_offset", False),
            tracks=_path(entry["tracks"], base, where, "tracks") if entry.get("tracks") else None,
            crops_dir=_path(entry["crops_dir"], base, where, "crops_dir") if entry.get("crops_dir") else None,
        ))
    if given:
        name = next(iter(given))
        names = [c.name for c in out]
        raise InputError(f"--camera {name}: not listed in {path} ({', '.join(names)}){did_you_mean(name, names)}")
    topology = {"links": data["links"], "_source": str(path)} if data.get("links") is not None else None
    return out, topology
