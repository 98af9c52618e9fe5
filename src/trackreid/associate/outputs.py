"""Writing an :class:`~trackreid.associate.api.Association` to a folder, atomically.

* ``global_ids.json``: ``{camera: {track id (string): global id (int)}}``, every input track.
* ``global_tracks/<camera>.txt``: the camera's MOT file with track ids replaced by global ids
  (cameras whose tracks file is known).
* ``mtmc.txt``: AI City layout ``camera_id obj_id frame x y w h -1 -1`` (space separated;
  ``camera_id`` is the camera's 1-based position, listed in summary.json; frames and boxes
  exactly as in the tracks files).
* ``summary.json``: counts, the threshold and why, constraints and rejected merges, timings.
* ``threshold_histogram.png``: the similarity distributions with the threshold marked.
* ``report.html``: one self-contained page to check the result (:mod:`.report`).

Every file is written into a hidden staging folder inside the output folder and renamed into
place at the end. :data:`WRITERS` is the list of ``(name, write(result, staging_dir))``; other
outputs (the HTML report) add themselves with :func:`register_writer`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trackreid.errors import OutputError
from trackreid.io.atomic import check_output_dir

if TYPE_CHECKING:
    from trackreid.associate.result import Association

Writer = Callable[["Association", Path], None]

GLOBAL_IDS = "global_ids.json"
SUMMARY = "summary.json"
MTMC = "mtmc.txt"
GLOBAL_TRACKS = "global_tracks"
HISTOGRAM = "threshold_histogram.png"
REPORT = "report.html"


def _write_json(obj: object, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n", encoding="utf-8")


def write_global_ids(result: Association, out: Path) -> None:
    _write_json({cam: {str(t): g for t, g in sorted(ids.items())} for cam, ids in result.global_ids.items()},
                out / GLOBAL_IDS)


def write_summary(result: Association, out: Path) -> None:
    _write_json(result.summary, out / SUMMARY)


def _camera_rows(result: Association):  # type: ignore[no-untyped-def]
    """(camera index, name, Tracks with global ids) for each camera whose tracks file is known.

    The file is read as extract read it (the rows it cropped), and frames are written back in
    the file's own numbering (its ``frame_offset`` undone), so step 5 reads what it wrote.
    """
    for c, cam in enumerate(result.cameras):
        if cam.tracks is None:
            continue
        trk = cam.tracks.read()
        ids = result.global_ids[cam.name]
        gid = np.array([ids.get(int(t), 0) for t in trk.track_id.tolist()], np.int64)
        keep = gid > 0
        trk = trk.subset(keep)
        trk.track_id = gid[keep]
        trk.frame = trk.frame - int(cam.tracks.frame_offset)
        yield c, cam.name, trk


def write_tracks_and_mtmc(result: Association, out: Path) -> None:
    from trackreid.io.mot import write_mot

    lines: list[str] = []
    folder = out / GLOBAL_TRACKS
    folder.mkdir()
    for c, name, trk in _camera_rows(result):
        write_mot(trk, folder / f"{name}.txt")
        order = np.lexsort((trk.track_id, trk.frame))
        for r in order.tolist():
            x, y, w, h = trk.xywh[r]
            lines.append(f"{c + 1} {int(trk.track_id[r])} {int(trk.frame[r])} {x:g} {y:g} {w:g} {h:g} -1 -1\n")
    (out / MTMC).write_text("".join(lines), encoding="utf-8")


def write_histogram(result: Association, out: Path) -> None:
    from trackreid.associate.threshold import plot_threshold

    if "histogram" in result.threshold_info:
        plot_threshold(result.threshold_info, out / HISTOGRAM)


def write_report(result: Association, out: Path) -> None:
    from trackreid.associate.report import write_report as render

    render(result, out / REPORT)


WRITERS: list[tuple[str, Writer]] = [
    (GLOBAL_IDS, write_global_ids),
    (MTMC, write_tracks_and_mtmc),  # also global_tracks/
    (HISTOGRAM, write_histogram),
    (REPORT, write_report),
    (SUMMARY, write_summary),
]


def register_writer(name: str, writer: Writer) -> None:
    """Add an output (e.g. ``report.html``) written by :func:`write_association`; replaces one of that name."""
    WRITERS[:] = [(n, w) for n, w in WRITERS if n != name]
    WRITERS.insert(len(WRITERS) - 1, (name, writer))  # summary.json stays last


def produces() -> tuple[str, ...]:
    return (*(n for n, _ in WRITERS), GLOBAL_TRACKS)


def write_association(result: Association, output_dir: str | Path, overwrite: bool = False) -> list[Path]:
    """Write every output into ``output_dir`` (nothing half-written; existing outputs need ``overwrite``)."""
    out = Path(output_dir)
    check_output_dir(out, overwrite, produces())
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".trackreid-associate-", dir=out))
    except OSError as e:
        raise OutputError(f"{out}: cannot write ({e.strerror or e}); choose a writable --output-dir") from None
    try:
        for _, writer in WRITERS:
            writer(result, stage)
        written = []
        for item in sorted(stage.iterdir(), key=lambda p: p.name == SUMMARY):  # summary.json last
            target = out / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
            written.append(target)
        return written
    except OSError as e:
        raise OutputError(f"{out}: cannot write outputs ({e.strerror or e}); check free space and "
                          "permissions") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and out.exists() and not any(out.iterdir()):
            out.rmdir()
