"""``prepare-data``: turn per-camera crops folders into a training set (the seed's layout).

Input: one crops folder per camera, as ``trackreid extract --save-crops`` writes them
(``crops/track_0001/frame_000005_000.jpg``), and optionally an identity map (camera, track) ->
person. Without a map every track is its own identity.

Output (``train/<pid>/``, ``query/<pid>/``, ``gallery/<pid>/``) with Market-style file names
``<pid>_c<camera>s<segment>_<frame>_<n>.jpg``, so evaluation can apply the camera rule:

* identities are split into train and test by ``test_ratio`` with a seeded shuffle
  (deterministic);
* a test identity seen by several cameras gets one camera (chosen by the same seeded
  generator) as query and the others as gallery; an identity seen by one camera is split in
  time: its earlier half is the query (segment 1), its later half the gallery (segment 2);
* identities with fewer than ``min_images`` crops are left out (and counted).

Source crops are hard-linked (or copied, or when linking is impossible copied) and never
moved. The whole output folder appears at once, or not at all.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from trackreid.datasets import IMAGE_SUFFIXES, ImageSet
from trackreid.errors import InputError, OutputError, yaml_error_text
from trackreid.io.atomic import atomic_dir

_FRAME = re.compile(r"frame_(\d+)")
_TRACK = re.compile(r"(\d+)$")
SUMMARY = "prepare_summary.json"


@dataclass(frozen=True)
class Crop:
    camera: str
    track: str
    frame: int
    path: Path


@dataclass(frozen=True)
class CameraSource:
    name: str
    crops_dir: Path


@dataclass
class SplitCount:
    identities: int = 0
    images: int = 0
    per_camera: dict[str, int] = field(default_factory=dict)


@dataclass
class PrepareSummary:
    output_dir: str
    cameras: list[str]
    identities_total: int
    dropped_identities: int
    dropped_images: int
    min_images: int
    test_ratio: float
    seed: int
    link_mode: str
    splits: dict[str, SplitCount]
    query_by_camera: int  # test identities whose query/gallery differ in camera
    query_by_time: int  # test identities split in time within one camera
    identities: dict[str, list[str]]  # pid -> ["camera/track", ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _track_key(folder: Path) -> str:
    m = _TRACK.search(folder.name)
    return str(int(m.group(1))) if m else folder.name


def scan_crops(camera: str, crops_dir: Path) -> list[Crop]:
    """Every crop under ``crops_dir/<track folder>/``; frame numbers from ``frame_NNNNNN`` names."""
    crops_dir = Path(crops_dir)
    if not crops_dir.is_dir():
        raise InputError(f"{crops_dir}: no such crops folder (camera {camera}); expected the crops/ folder "
                         "that `trackreid extract --save-crops` writes, with one sub-folder per track")
    crops: list[Crop] = []
    tracks = sorted(p for p in crops_dir.iterdir() if p.is_dir())
    for t in tracks:
        files = sorted(p for p in t.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        for i, f in enumerate(files):
            m = _FRAME.search(f.stem)
            crops.append(Crop(camera, _track_key(t), int(m.group(1)) if m else i, f))
    if not crops:
        raise InputError(f"{crops_dir}: holds no track sub-folders with images (camera {camera}); expected "
                         "crops/track_0001/frame_000005_000.jpg ...")
    return crops


def read_identity_map(path: Path, cameras: Sequence[str]) -> dict[tuple[str, str], str]:
    """CSV with a header ``camera,track,person``: (camera, track) -> person id."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(f"{path}: cannot read the identity map ({e.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file; --identity-map expects a CSV with the header "
                         "'camera,track,person'") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows or [c.strip().lower() for c in rows[0]] != ["camera", "track", "person"]:
        found = ",".join(rows[0]) if rows else "nothing"
        raise InputError(f"{path}:1: expected the header 'camera,track,person', found {found}")
    out: dict[tuple[str, str], str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 3:
            raise InputError(f"{path}:{line}: expected 3 values camera,track,person, found {len(row)}")
        cam, track, person = (c.strip() for c in row)
        if cam not in cameras:
            raise InputError(f"{path}:{line}: camera {cam!r} is not one of the given cameras ({', '.join(cameras)})")
        key = (cam, str(int(track)) if track.isdigit() else track)
        if key in out and out[key] != person:
            raise InputError(f"{path}:{line}: track {track} of camera {cam} is mapped twice ({out[key]}, {person})")
        out[key] = person
    return out


def read_manifest(path: Path) -> tuple[list[CameraSource], Path | None]:
    """YAML/JSON ``{cameras: [{name, crops_dir}, ...], identity_map: file}``; paths relative to it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except OSError as e:
        raise InputError(f"{path}: cannot read the manifest ({e.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file; --manifest expects YAML or JSON") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML/JSON at {yaml_error_text(e)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), list) or not data["cameras"]:
        raise InputError(f"{path}: expected 'cameras:' with a list of {{name: ..., crops_dir: ...}} entries")
    sources = []
    for i, entry in enumerate(data["cameras"]):
        if not isinstance(entry, dict) or "crops_dir" not in entry:
            raise InputError(f"{path}: cameras[{i}] needs crops_dir (and a name)")
        d = Path(str(entry["crops_dir"]))
        sources.append(CameraSource(str(entry.get("name", f"cam{i + 1}")), d if d.is_absolute() else path.parent / d))
    idmap = data.get("identity_map")
    if idmap is not None:
        p = Path(str(idmap))
        return sources, p if p.is_absolute() else path.parent / p
    return sources, None


def _place(src: Path, dst: Path, mode: str) -> str:
    """Hard-link (default) or copy; returns what was done. Never moves the source."""
    if mode == "hardlink":
        try:
            os.link(src, dst)
            return "hardlink"
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
    shutil.copy2(src, dst)
    return "copy"


def _split_time(crops: list[Crop]) -> tuple[list[Crop], list[Crop]]:
    ordered = sorted(crops, key=lambda c: (c.frame, c.track, c.path.name))
    half = len(ordered) // 2
    return ordered[:half], ordered[half:]


def prepare_dataset(
    sources: Sequence[CameraSource],
    output_dir: Path,
    *,
    identity_map: dict[tuple[str, str], str] | None = None,
    test_ratio: float = 0.2,
    seed: int = 0,
    min_images: int = 4,
    mode: str = "hardlink",
    overwrite: bool = False,
) -> PrepareSummary:
    """Write ``train/ query/ gallery/`` under ``output_dir``; see the module docstring."""
    if not 0.0 <= test_ratio < 1.0:
        raise InputError(f"--test-ratio {test_ratio}: expected a value in [0, 1)")
    if min_images < 1:
        raise InputError(f"--min-images {min_images}: expected at least 1")
    if mode not in ("hardlink", "copy"):
        raise InputError(f"link mode {mode!r}: expected hardlink or copy")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        dup = [n for n, c in Counter(names).items() if c > 1]
        raise InputError(f"camera names must differ; {', '.join(dup)} is given twice "
                         "(use --camera NAME per --crops-dir)")
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"{output_dir}: exists and is a file; --output-dir must be a folder")
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise OutputError(f"{output_dir}: exists and is not empty; pass --overwrite to replace it or choose "
                         "another --output-dir")
    cam_index = {n: i + 1 for i, n in enumerate(names)}
    identity_map = identity_map or {}

    groups: dict[str, list[Crop]] = defaultdict(list)
    for src in sources:
        for c in scan_crops(src.name, src.crops_dir):
            person = identity_map.get((c.camera, c.track))
            groups[f"person:{person}" if person is not None else f"track:{c.camera}/{c.track}"].append(c)
    kept = {k: v for k, v in groups.items() if len(v) >= min_images}
    dropped = {k: v for k, v in groups.items() if len(v) < min_images}
    if not kept:
        raise InputError(f"no identity has at least --min-images {min_images} crops "
                         f"({len(groups)} identities, largest {max(len(v) for v in groups.values())} crops)")
    keys = sorted(kept)
    rng = np.random.default_rng(seed)
    order = [keys[i] for i in rng.permutation(len(keys))]
    n_test = int(round(test_ratio * len(keys)))
    if test_ratio > 0 and len(keys) >= 2:
        n_test = min(max(n_test, 1), len(keys) - 1)
    test_keys = set(order[:n_test])
    pid_of = {k: f"{i + 1:04d}" for i, k in enumerate(keys)}

    by_camera = by_time = 0
    placements: list[tuple[str, str, Crop, int]] = []  # split, pid, crop, segment
    for key in keys:
        crops = kept[key]
        pid = pid_of[key]
        if key not in test_keys:
            placements += [("train", pid, c, 1) for c in crops]
            continue
        cams = sorted({c.camera for c in crops}, key=lambda n: cam_index[n])
        if len(cams) > 1:
            qcam = cams[int(rng.integers(len(cams)))]
            placements += [("query" if c.camera == qcam else "gallery", pid, c, 1) for c in crops]
            by_camera += 1
        else:
            early, late = _split_time(crops)
            placements += [("query", pid, c, 1) for c in early] + [("gallery", pid, c, 2) for c in late]
            by_time += 1

    items = [LayoutItem(split, pid, cam_index[c.camera], seg, c.frame, c.path) for split, pid, c, seg in placements]
    camera_names = {cam_index[n]: n for n in names}
    splits: dict[str, SplitCount] = {}
    for it in items:
        sc = splits.setdefault(it.split, SplitCount())
        sc.images += 1
        cam = camera_names[it.camera]
        sc.per_camera[cam] = sc.per_camera.get(cam, 0) + 1
    for split in ("train", "query", "gallery"):
        splits.setdefault(split, SplitCount()).identities = len({it.pid for it in items if it.split == split})
    summary = PrepareSummary(
        output_dir=str(output_dir), cameras=names, identities_total=len(groups),
        dropped_identities=len(dropped), dropped_images=sum(len(v) for v in dropped.values()),
        min_images=min_images, test_ratio=test_ratio, seed=seed, link_mode=mode,
        splits={k: splits[k] for k in ("train", "query", "gallery")}, query_by_camera=by_camera,
        query_by_time=by_time,
        identities={pid_of[k]: sorted({f"{c.camera}/{c.track}" for c in kept[k]}) for k in keys},
    )
    def with_mode(used: str) -> dict[str, Any]:
        summary.link_mode = used
        return {SUMMARY: summary.to_dict()}

    write_layout(output_dir, items, mode, extra=with_mode)
    return summary


@dataclass(frozen=True)
class LayoutItem:
    """One image of a prepared dataset: where it goes and what its name records."""

    split: str  # train | query | gallery
    pid: str
    camera: int  # 1-based
    segment: int  # 1-based
    frame: int
    source: Path


def write_layout(output_dir: Path, items: Iterable[LayoutItem], mode: str = "hardlink",
                 extra: Callable[[str], dict[str, Any]] | None = None) -> str:
    """Write ``<split>/<pid>/<pid>_c<cam>s<seg>_<frame>_<n>.jpg`` atomically; returns the link mode used.

    ``extra(mode_used)`` returns more files (name -> JSON-able object) to write beside the splits.
    """
    used: set[str] = set()
    with atomic_dir(Path(output_dir)) as tmp:
        counters: Counter[tuple[str, str]] = Counter()
        for it in items:
            folder = tmp / it.split / it.pid
            folder.mkdir(parents=True, exist_ok=True)
            n = counters[(it.split, it.pid)]
            counters[(it.split, it.pid)] += 1
            name = f"{it.pid}_c{it.camera}s{it.segment}_{it.frame:06d}_{n:02d}{it.source.suffix.lower()}"
            used.add(_place(it.source, folder / name, mode))
        mode_used = "+".join(sorted(used)) or mode
        for fname, obj in (extra(mode_used) if extra else {}).items():
            (tmp / fname).write_text(json.dumps(obj, indent=2), encoding="utf-8")
    return mode_used


def sources_from_args(crops_dirs: Iterable[str], cameras: Iterable[str]) -> list[CameraSource]:
    """Pair repeated ``--crops-dir`` with ``--camera`` (in order); unnamed cameras are cam1, cam2, ..."""
    dirs, names = list(crops_dirs), list(cameras)
    if names and len(names) != len(dirs):
        raise InputError(f"{len(dirs)} --crops-dir but {len(names)} --camera; give one --camera per --crops-dir "
                         "(in the same order) or none")
    return [CameraSource(names[i] if names else f"cam{i + 1}", Path(d)) for i, d in enumerate(dirs)]


def layout_items(images: ImageSet, split: str) -> list[LayoutItem]:
    """Items for :func:`write_layout` from a labelled :class:`~trackreid.datasets.ImageSet`
    (e.g. ``read_image_set(folder, "cuhk03")``): camera ids become ``c<camid + 1>``."""
    return [LayoutItem(split, f"{int(pid):04d}", int(cam) + 1, 1, i, Path(p))
            for i, (p, pid, cam) in enumerate(zip(images.paths, images.pids, images.camids, strict=True))]
