"""Adaptation data from extract outputs: crops, their camera and their track; never identities.

An extract output folder made with ``--save-crops`` holds ``track_metadata.json`` (the track
table, with each track's frames and crop files) and ``crops/track_NNNN/*.jpg``. Each folder is
one camera. :func:`read_tracks` reads the metadata and lists the crop files it names; nothing
else in the folder is opened, and no identity label exists in these files: a track is known
only by its camera, its per-camera track id and its frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.errors import InputError
from trackreid.io.extract_meta import METADATA_NAME, crop_path, frame_seconds, read_metadata, tracks_reading, video_fps
from trackreid.io.mot import TracksReading

METADATA = METADATA_NAME


@dataclass(frozen=True)
class CameraFile:
    """A camera's tracks file as extract read it (None when not recorded or not found) and its fps: what the
    association's motion gate reads (:func:`trackreid.associate.api.read_tracks_files`)."""

    name: str
    fps: float | None
    tracks: TracksReading | None


@dataclass
class TrackCrops:
    """Crops grouped by track, tracks grouped by camera (parallel arrays)."""

    cameras: list[str]
    paths: list[Path]  # one crop file per row
    crop_track: np.ndarray  # (num_crops,) int64: index of the crop's track
    track_camera: np.ndarray  # (num_tracks,) int32: index into cameras
    track_id: np.ndarray  # (num_tracks,) int64: the tracker's id within its camera
    start: np.ndarray  # (num_tracks,) float64 seconds on the site clock
    end: np.ndarray  # (num_tracks,) float64 seconds
    folders: list[Path] = field(default_factory=list)
    sources: list[CameraFile] = field(default_factory=list)  # per camera, for the association's constraints

    @property
    def num_tracks(self) -> int:
        return len(self.track_id)

    def __len__(self) -> int:
        return len(self.paths)

    def summary(self) -> dict[str, Any]:
        per_cam = {name: int((self.track_camera == c).sum()) for c, name in enumerate(self.cameras)}
        return {"cameras": len(self.cameras), "tracks": self.num_tracks, "crops": len(self.paths),
                "tracks_per_camera": per_cam}


def _camera_names(folders: Sequence[Path], names: Sequence[str] | None) -> list[str]:
    if names is not None:
        if len(names) != len(folders):
            raise InputError(f"{len(names)} camera names for {len(folders)} feature folders; give one name per folder")
        out = list(names)
    else:
        out = [f.resolve().name for f in folders]
    seen: dict[str, int] = {}
    unique = []
    for n in out:
        seen[n] = seen.get(n, 0) + 1
        unique.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return unique


def _read_metadata(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder; --features takes an extract output folder "
                         f"(the --output-dir of `trackreid extract ... --save-crops`)")
    if not (folder / METADATA).is_file():
        raise InputError(f"{folder}: no {METADATA}; --features takes an extract output folder "
                         "(run `trackreid extract ... --save-crops --output-dir` for this camera)")
    meta = read_metadata(folder)
    if not isinstance(meta.get("tracks"), dict):
        raise InputError(f"{folder / METADATA}: expected an object with a 'tracks' table, as `trackreid extract` "
                         "writes")
    return meta


def read_tracks(folders: Sequence[str | Path], names: Sequence[str] | None = None,
                time_offsets: Sequence[float] | None = None, min_crops: int = 1) -> TrackCrops:
    """Tracks and crop files of several extract output folders (one per camera).

    Track times come from the frames in the metadata and the video's fps (frames are taken as
    seconds when the fps is unknown), plus the camera's ``time_offset`` on the site clock.
    Tracks with fewer than ``min_crops`` crops on disk are left out.
    """
    dirs = [Path(f) for f in folders]
    if not dirs:
        raise InputError("no --features folder given; pass one extract output folder per camera")
    cams = _camera_names(dirs, names)
    offsets = list(time_offsets) if time_offsets is not None else [0.0] * len(dirs)
    paths: list[Path] = []
    crop_track: list[int] = []
    t_cam: list[int] = []
    t_id: list[int] = []
    t_start: list[float] = []
    t_end: list[float] = []
    sources: list[CameraFile] = []
    for c, folder in enumerate(dirs):
        meta = _read_metadata(folder)
        fps = video_fps(meta)
        reading = tracks_reading(meta, folder)
        sources.append(CameraFile(cams[c], fps, reading if reading is not None and reading.file.is_file() else None))
        with_crops = 0
        for key, tr in sorted(meta["tracks"].items(), key=lambda kv: int(kv[0]) if kv[0].lstrip("-").isdigit() else 0):
            if not isinstance(tr, dict) or tr.get("skipped"):
                continue
            try:
                tid = int(key)
                crops = [crop_path(folder, p, str(folder / METADATA)) for p in tr.get("crops", [])]
                first, last = float(tr.get("first_frame", 0)), float(tr.get("last_frame", 0))
            except (TypeError, ValueError):
                raise InputError(f"{folder / METADATA}: track {key!r} is not in the format `trackreid extract` "
                                 "writes (integer id, first_frame, last_frame, crops)") from None
            crops = [p for p in crops if p.is_file()]
            if crops:
                with_crops += 1
            if len(crops) < min_crops:
                continue
            idx = len(t_id)
            t_cam.append(c)
            t_id.append(tid)
            t_start.append(float(frame_seconds(first, fps, offsets[c])))  # as the association reads them
            t_end.append(float(frame_seconds(last, fps, offsets[c])))
            paths += crops
            crop_track += [idx] * len(crops)
        if with_crops == 0:
            raise InputError(f"{folder}: no crop files for any track; adapt trains on crops, so run extract with "
                             "--save-crops for this camera")
    if not t_id:
        raise InputError(f"no track has {min_crops} or more crops in {', '.join(map(str, dirs))}")
    return TrackCrops(cams, paths, np.asarray(crop_track, np.int64), np.asarray(t_cam, np.int32),
                      np.asarray(t_id, np.int64), np.asarray(t_start, np.float64), np.asarray(t_end, np.float64),
                      dirs, sources)


def track_means(features: np.ndarray, crop_track: np.ndarray, num_tracks: int) -> np.ndarray:
    """L2-normalised mean of each track's (L2-normalised) crop features, (num_tracks, D) float32."""
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    out = np.zeros((num_tracks, f.shape[1]), np.float64)
    np.add.at(out, crop_track, f)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)
