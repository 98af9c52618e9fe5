"""``track_metadata.json`` read back: the one reader every step after extract uses.

extract records how it read the camera's tracks file (``tracks_file`` and ``tracks_reading``:
format, frame offset, minimum visibility; see :class:`~trackreid.io.mot.TracksReading`) and
the video's frames per second. associate and its outputs, the motion gate, adapt and run read
the metadata with :func:`read_metadata`, the tracks file with :func:`tracks_reading`, turn frames
into seconds with :func:`frame_seconds` and find crop files with :func:`crop_path`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.errors import InputError
from trackreid.io.mot import TracksReading

METADATA_NAME = "track_metadata.json"


def read_metadata(folder: Path) -> dict[str, Any]:
    """``folder/track_metadata.json`` as a dict; one clear error when it is missing or not extract's JSON."""
    path = Path(folder) / METADATA_NAME
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{folder}: no {METADATA_NAME}; expected an extract output folder (the --output-dir of "
                         "`trackreid extract`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not readable JSON ({e}); re-run `trackreid extract` for this camera") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: expected a JSON object as written by `trackreid extract`")
    return meta


def tracks_reading(meta: dict[str, Any], folder: Path | None) -> TracksReading | None:
    """How extract read the camera's tracks file (None when the metadata names none).

    The file is the recorded path, or that path relative to ``folder`` when it is not found as
    is (an output folder moved with its tracks); the returned file may not exist. Metadata from
    before ``tracks_reading`` was recorded falls back to the extract command's own flags.
    """
    text = meta.get("tracks_file")
    if not isinstance(text, str) or not text:
        return None
    file = Path(text)
    if not file.is_absolute() and not file.is_file() and folder is not None and (folder / file).is_file():
        file = folder / file
    where = str(Path(folder) / METADATA_NAME) if folder is not None else METADATA_NAME
    options = meta.get("tracks_reading")
    if options is None:
        raw = meta.get("command")
        command: dict[str, Any] = raw if isinstance(raw, dict) else {}
        options = {k: command[c] for k, c in (("frame_offset", "frame_offset"), ("min_visibility", "min_visibility"),
                                              ("format", "tracks_format")) if command.get(c) is not None}
    return TracksReading.from_options(file, options, where)


def video_fps(meta: dict[str, Any]) -> float | None:
    """The video's frames per second as extract found it (None when unknown)."""
    video = meta.get("video")
    v = video.get("fps") if isinstance(video, dict) else None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and v > 0:
        return float(v)
    return None


def frame_seconds(frame: Any, fps: float | None, time_offset: float = 0.0) -> Any:
    """Seconds on the site clock of 1-based frame numbers: ``time_offset + (frame - 1) / fps``.

    Without an fps the frame count itself is the clock (frames as seconds), so that order and
    gaps within one camera still hold.
    """
    return time_offset + (np.asarray(frame, dtype=np.float64) - 1.0) / (fps or 1.0)


def seconds_frame(seconds: float, fps: float | None, time_offset: float = 0.0) -> int:
    """The 1-based frame number at ``seconds`` on the site clock: the inverse of :func:`frame_seconds`."""
    return int(round((seconds - time_offset) * (fps or 1.0) + 1))


def crop_path(folder: Path, text: object, where: str) -> Path:
    """A crop file named in the metadata (``crops/track_0001/...``), inside ``folder``.

    Absolute paths and ``..`` are refused: a metadata file must not point report.html or adapt
    at files outside its own folder.
    """
    rel = Path(str(text))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise InputError(f"{where}: crop path {str(text)!r} leaves the extract folder (absolute or '..'); crop "
                         "paths are relative, such as crops/track_0001/frame_000005_000.jpg: re-run extract")
    return Path(folder) / rel
