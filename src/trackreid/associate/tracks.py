"""The tracks of every camera as one :class:`TrackSet`, loaded from what ``extract`` wrote.

A :class:`CameraInput` names one camera and its features (an extract output folder, its
``.npz`` or ``.pkl``, or a :class:`~trackreid.io.features.TrackFeatures` in memory). Each
track's time span comes from ``track_metadata.json`` (first and last frame of the track in
the tracks file) or, without it, from the frames of its crops; frames become seconds on the
site clock with the camera's frames per second and ``time_offset``
(:func:`~trackreid.io.extract_meta.frame_seconds`). The camera's tracks file is read again
(motion gate, global_tracks/, mtmc.txt) exactly as extract read it
(:func:`~trackreid.io.extract_meta.tracks_reading`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from trackreid.embed.preprocess import l2_normalize
from trackreid.errors import InputError
from trackreid.io.extract_meta import (
    METADATA_NAME,
    crop_path,
    frame_seconds,
    read_metadata,
    tracks_reading,
    video_fps,
)
from trackreid.io.features import NPZ_NAME, PKL_NAME, TrackFeatures, read_features
from trackreid.io.mot import TracksReading

log = logging.getLogger(__name__)

@dataclass
class CameraInput:
    """One camera: its name, its track features and how its frames map to site time."""

    name: str
    features: TrackFeatures | str | Path
    fps: float | None = None
    time_offset: float = 0.0
    tracks: Path | None = None  # MOT file (else the one in the metadata), read with the metadata's options
    crops_dir: Path | None = None  # else the extract folder's crops/


def split_key(key: str) -> tuple[str, int] | None:
    """``"camA:12"`` (:meth:`TrackSet.label`) -> ``("camA", 12)``; None when it is not ``camera:whole number``."""
    cam, sep, tid = key.rpartition(":")
    if not sep or not cam or not tid.strip().lstrip("-").isdigit():
        return None
    return cam, int(tid)


@dataclass
class TrackSet:
    """N tracks of several cameras as parallel arrays (one row per track).

    ``start``/``end`` are seconds on the site clock (first and last frame of the track, both
    inclusive). ``features`` are L2-normalised. Crop features, when present, are
    ``crop_features[crop_offsets[i]:crop_offsets[i + 1]]`` for track ``i``.
    """

    cameras: list[str]
    camera: np.ndarray  # (N,) int32 index into cameras
    track_id: np.ndarray  # (N,) int64, per-camera track id
    start: np.ndarray  # (N,) float64 seconds
    end: np.ndarray  # (N,) float64 seconds
    features: np.ndarray  # (N, D) float32, L2-normalised
    crop_features: np.ndarray | None = None  # (M, D) float32
    crop_offsets: np.ndarray | None = None  # (N + 1,) int64
    meta: dict[str, Any] = field(default_factory=dict)

    def same_moment(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Vectorised: tracks ``i`` and ``j`` are of one camera and share a moment (never one person)."""
        return (self.camera[i] == self.camera[j]) & (self.start[i] <= self.end[j]) & (self.start[j] <= self.end[i])

    def __post_init__(self) -> None:
        self.camera = np.asarray(self.camera, dtype=np.int32).reshape(-1)
        n = len(self.camera)
        self.track_id = np.asarray(self.track_id, dtype=np.int64).reshape(-1)
        self.start = np.asarray(self.start, dtype=np.float64).reshape(-1)
        self.end = np.asarray(self.end, dtype=np.float64).reshape(-1)
        self.features = np.asarray(self.features, dtype=np.float32)
        for name, arr in (("track_id", self.track_id), ("start", self.start), ("end", self.end)):
            if arr.shape != (n,):
                raise InputError(f"TrackSet.{name}: expected shape ({n},), got {arr.shape}")
        if self.features.ndim != 2 or len(self.features) != n:
            raise InputError(f"TrackSet.features: expected shape ({n}, D), got {self.features.shape}")
        if n and (self.camera.min() < 0 or self.camera.max() >= len(self.cameras)):
            raise InputError(f"TrackSet.camera: indices must lie in 0..{len(self.cameras) - 1}")
        if np.any(self.end < self.start):
            i = int(np.flatnonzero(self.end < self.start)[0])
            raise InputError(f"TrackSet: track {self.track_id[i]} of {self.cameras[self.camera[i]]} ends "
                             f"({self.end[i]}) before it starts ({self.start[i]})")
        if not np.isfinite(self.features).all():
            raise InputError("TrackSet.features: NaN or infinite values; re-extract the features")
        if self.crop_features is not None:
            self.crop_features = np.asarray(self.crop_features, dtype=np.float32)
            self.crop_offsets = np.asarray(self.crop_offsets, dtype=np.int64).reshape(-1)
            if self.crop_offsets.shape != (n + 1,) or int(self.crop_offsets[-1]) != len(self.crop_features):
                raise InputError(f"TrackSet.crop_offsets: expected {n + 1} offsets ending at "
                                 f"{len(self.crop_features)}")

    def __len__(self) -> int:
        return len(self.camera)

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[1])

    def label(self, i: int) -> str:
        """``camera:track_id`` of row ``i``, for messages."""
        return f"{self.cameras[int(self.camera[i])]}:{int(self.track_id[i])}"

    @classmethod
    def concat(cls, cameras: Sequence[str], parts: Sequence[dict[str, np.ndarray]],
               meta: dict[str, Any] | None = None) -> TrackSet:
        """One set from per-camera dicts of ``track_id, start, end, features`` (+ ``crop_features``,
        ``crop_counts``)."""
        d = ({p["features"].shape[1] for p in parts if len(p["features"])}
             or {p["features"].shape[1] for p in parts if p["features"].ndim == 2} or {0})  # all empty: their D
        dim = d.pop()
        camera = np.concatenate([np.full(len(p["track_id"]), c, np.int32) for c, p in enumerate(parts)])
        feats = np.concatenate([p["features"].reshape(-1, dim) for p in parts]).astype(np.float32)
        crops = offsets = None
        if all("crop_features" in p for p in parts):
            crops = np.concatenate([p["crop_features"].reshape(-1, dim) for p in parts]).astype(np.float32)
            counts = np.concatenate([p["crop_counts"] for p in parts])
            offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(list(cameras), camera, np.concatenate([p["track_id"] for p in parts]),
                   np.concatenate([p["start"] for p in parts]), np.concatenate([p["end"] for p in parts]),
                   l2_normalize(feats) if len(feats) else feats, crops, offsets, meta or {})


class CameraTracksFile(Protocol):
    """What the constraints read of a camera: its name, fps and tracks file as extract read it
    (:class:`LoadedCamera` here; :class:`trackreid.adapt.data.CameraFile` in adapt)."""

    @property
    def name(self) -> str: ...

    @property
    def fps(self) -> float | None: ...

    @property
    def tracks(self) -> TracksReading | None: ...


@dataclass
class LoadedCamera:
    """What :func:`load_cameras` learned about one camera (besides its rows of the TrackSet)."""

    name: str
    source: str  # where the features came from
    fps: float | None
    fps_from: str  # "camera", "--fps", "metadata", or "unknown (times in frames)" (then fps is None)
    time_offset: float
    tracks: TracksReading | None  # the MOT file and how extract read it, if known and present
    crops: dict[int, list[Path]]  # track id -> crop image paths (when extract saved crops)
    metadata: dict[str, Any]
    num_tracks: int


def _features_location(src: str | Path) -> tuple[Path, Path | None]:
    """(features file or folder, the extract folder holding track_metadata.json or None)."""
    p = Path(src)
    if p.is_dir():
        return p, p if (p / METADATA_NAME).is_file() else None
    folder = p.parent
    if p.name in (NPZ_NAME, PKL_NAME) and (folder / METADATA_NAME).is_file():
        return p, folder
    return p, None


def _model_key(tf: TrackFeatures, metadata: dict[str, Any]) -> tuple[str | None, str | None]:
    """(weights sha256, model name) from the features' meta or the extract metadata."""
    for m in (tf.meta.get("model"), metadata.get("model")):
        if isinstance(m, dict) and (m.get("weights_sha256") or m.get("name")):
            return m.get("weights_sha256"), m.get("name")
    return None, None


def load_cameras(cameras: Sequence[CameraInput], fps: float | None = None,
                 need_seconds: Sequence[str] = (), with_crops: bool = True) -> tuple[TrackSet, list[LoadedCamera]]:
    """Read every camera's features into one :class:`TrackSet` and check that they belong together.

    ``fps`` (the ``--fps`` flag) applies to cameras whose input gives none; a camera's own
    ``fps`` wins, the extract metadata's video fps is the last resort. ``need_seconds`` names the
    time constraints in force: with any, a camera whose fps is unknown is an error naming them.
    """
    if not cameras:
        raise InputError("no cameras given; pass --features DIR --camera NAME at least once (or --cameras FILE)")
    seen: dict[str, int] = {}
    for i, cam in enumerate(cameras):
        if not cam.name or not str(cam.name).strip():
            raise InputError(f"camera #{i + 1}: empty name; give --camera NAME")
        if "/" in cam.name or "\\" in cam.name or cam.name.startswith(".") or cam.name != cam.name.strip():
            raise InputError(f"camera name {cam.name!r}: it names output files (global_tracks/<camera>.txt); use "
                             "letters, digits, '-', '_' (no slashes, no leading dot or spaces)")
        if cam.name in seen:
            raise InputError(f"camera {cam.name!r} is named twice (inputs #{seen[cam.name] + 1} and #{i + 1}); "
                             "every camera needs its own --camera name")
        seen[cam.name] = i
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise InputError(f"--fps {fps!r}: expected a positive number of frames per second")

    parts: list[dict[str, np.ndarray]] = []
    loaded: list[LoadedCamera] = []
    dims: dict[int, str] = {}
    models: dict[str, str] = {}
    for cam in cameras:
        if isinstance(cam.features, TrackFeatures):
            tf, folder, source, metadata = cam.features, None, f"{cam.name} (in memory)", {}
        else:
            path, folder = _features_location(cam.features)
            tf = read_features(path)
            source = str(path)
            metadata = read_metadata(folder) if folder else {}
        dims.setdefault(tf.feature_dim, source)
        if len(dims) > 1:
            (d0, s0), (d1, s1) = list(dims.items())[:2]
            raise InputError(f"{s1}: features have {d1} dimensions but {s0} has {d0}; every camera must be "
                             "extracted with the same --reid-model")
        sha, model_name = _model_key(tf, metadata)
        if sha:
            models.setdefault(sha, f"{source} ({model_name or 'unnamed model'})")
            if len(models) > 1:
                a, b = list(models.items())[:2]
                raise InputError(f"{b[1]}: features come from weights sha256 {b[0][:12]}... but {a[1]} from "
                                 f"{a[0][:12]}...; features of different models cannot be compared: extract "
                                 "every camera with the same --reid-model")
        cam_fps, fps_from = _camera_fps(cam, fps, metadata, source)
        if cam_fps is None and need_seconds:
            raise InputError(f"{source}: the frame rate of camera {cam.name!r} is unknown, and the time constraints "
                             f"({', '.join(need_seconds)}) need times in seconds; pass --fps F or set fps for it in "
                             "the cameras file")
        if not np.isfinite(cam.time_offset):
            raise InputError(f"camera {cam.name!r}: time_offset {cam.time_offset!r} is not a number of seconds")
        raw_table = metadata.get("tracks")
        table: dict[str, Any] = raw_table if isinstance(raw_table, dict) else {}
        first = np.empty(len(tf), np.float64)
        last = np.empty(len(tf), np.float64)
        for i, tid in enumerate(tf.track_ids):
            entry = table.get(str(int(tid)))
            if isinstance(entry, dict) and "first_frame" in entry and "last_frame" in entry:
                first[i], last[i] = float(entry["first_frame"]), float(entry["last_frame"])
            else:
                fr = tf.frames_of(i)
                fr = fr[fr >= 0]
                if not len(fr):
                    raise InputError(f"{source}: track {int(tid)} has no frame numbers and no entry in "
                                     f"{METADATA_NAME}; its time span is unknown")
                first[i], last[i] = float(fr.min()), float(fr.max())
        part = {"track_id": tf.track_ids.copy(), "start": frame_seconds(first, cam_fps, cam.time_offset),
                "end": frame_seconds(last, cam_fps, cam.time_offset), "features": tf.features}
        if with_crops:
            part["crop_features"] = tf.all_features
            part["crop_counts"] = np.diff(tf.offsets)
        parts.append(part)
        loaded.append(LoadedCamera(cam.name, source, cam_fps, fps_from, float(cam.time_offset),
                                   _tracks_reading(cam, metadata, folder, source),
                                   _crops(cam, table, folder), metadata, len(tf)))
    shas = list(models)
    meta = {"model_sha256": shas[0] if shas else None, "feature_dim": next(iter(dims))}
    return TrackSet.concat([c.name for c in cameras], parts, meta), loaded


def _camera_fps(cam: CameraInput, fps: float | None, metadata: dict[str, Any],
                source: str) -> tuple[float | None, str]:
    if cam.fps is not None:
        if not (np.isfinite(cam.fps) and cam.fps > 0):
            raise InputError(f"camera {cam.name!r}: fps {cam.fps!r} is not a positive number")
        return float(cam.fps), "camera"
    if fps is not None:
        return float(fps), "--fps"
    v = video_fps(metadata)
    if v is not None:
        return v, "metadata"
    return None, "unknown (times in frames)"


def _tracks_reading(cam: CameraInput, metadata: dict[str, Any], folder: Path | None,
                    source: str) -> TracksReading | None:
    """The camera's tracks file read as extract read it; a file given with the camera replaces the path only."""
    recorded = tracks_reading(metadata, folder)
    if cam.tracks is not None:
        p = Path(cam.tracks)
        if not p.is_file():
            raise InputError(f"camera {cam.name!r}: tracks file {p} does not exist; fix the path or leave it out")
        return replace(recorded, file=p) if recorded is not None else TracksReading(p)
    if recorded is not None and not recorded.file.is_file():
        log.warning("camera %s: the tracks file %s named in %s was not found; global_tracks/ and mtmc.txt "
                    "leave this camera out (give its tracks file in the cameras file)", cam.name, recorded.file,
                    source)
        return None
    return recorded


def _crops(cam: CameraInput, table: dict[str, Any], folder: Path | None) -> dict[int, list[Path]]:
    """Crop image paths per track from the metadata (``crops/track_0001/...``), under ``crops_dir`` if given."""
    out: dict[int, list[Path]] = {}
    where = str(folder / METADATA_NAME) if folder is not None else cam.name
    for tid, entry in table.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("crops"), list)) or not tid.isdigit():
            continue
        paths = []
        for c in entry["crops"]:
            if cam.crops_dir is not None:
                rel = crop_path(Path("."), c, where)
                paths.append(Path(cam.crops_dir) / Path(*rel.parts[1:]) if rel.parts[:1] == ("crops",) else
                             Path(cam.crops_dir) / rel)
            elif folder is not None:
                paths.append(crop_path(folder, c, where))
        out[int(tid)] = paths
    return out
