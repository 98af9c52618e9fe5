"""What an index is built from: extract output folders (as ``associate`` takes them) or a ``trackreid run`` folder.

A run folder holds ``cameras/<name>/`` (one extract output per camera) and ``associate/``
(``summary.json``: each camera's fps and time offset; ``global_ids.json``: camera -> track id
-> global id). Its cameras are indexed with the association's global ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trackreid.associate.tracks import CameraInput
from trackreid.errors import InputError

RUN_CAMERAS = "cameras"
RUN_ASSOCIATE = "associate"


@dataclass
class RunSource:
    """Cameras and their global ids (``{camera: {track id: global id}}``; empty when not associated)."""

    folder: Path
    cameras: list[CameraInput]
    global_ids: dict[str, dict[int, int]]


def _json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: not readable JSON ({e}); expected {what}: re-run `trackreid run`") from None


def read_run(folder: str | Path) -> RunSource:
    """The cameras of a ``trackreid run`` output folder, with the association's global ids when it has them."""
    root = Path(folder)
    cams_dir = root / RUN_CAMERAS
    if not cams_dir.is_dir():
        raise InputError(f"{root}: no {RUN_CAMERAS}/ folder; --run expects the --output-dir of `trackreid run`")
    summary_path = root / RUN_ASSOCIATE / "summary.json"
    ids_path = root / RUN_ASSOCIATE / "global_ids.json"
    settings: dict[str, dict[str, Any]] = {}
    global_ids: dict[str, dict[int, int]] = {}
    if summary_path.is_file() and ids_path.is_file():
        summary = _json(summary_path, "the association's summary.json")
        for c in summary.get("cameras", []) if isinstance(summary, dict) else []:
            if isinstance(c, dict) and isinstance(c.get("name"), str):
                settings[c["name"]] = c
        raw = _json(ids_path, "the association's global_ids.json ({camera: {track id: global id}})")
        if not isinstance(raw, dict):
            raise InputError(f"{ids_path}: expected {{camera: {{track id: global id}}}}; re-run `trackreid run`")
        try:
            global_ids = {str(cam): {int(t): int(g) for t, g in ids.items()} for cam, ids in raw.items()}
        except (AttributeError, TypeError, ValueError):
            raise InputError(f"{ids_path}: expected {{camera: {{track id: global id}}}} with integer ids; re-run "
                             "`trackreid run`") from None
    names = [n for n in settings if (cams_dir / n).is_dir()] or sorted(
        p.name for p in cams_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise InputError(f"{cams_dir}: no camera folders; --run expects the --output-dir of a finished `trackreid run`")
    cameras = []
    for n in names:
        s = settings.get(n, {})
        cameras.append(CameraInput(n, cams_dir / n, fps=s.get("fps"), time_offset=float(s.get("time_offset") or 0.0)))
    return RunSource(root, cameras, global_ids)
