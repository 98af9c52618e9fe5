"""MOTChallenge track files: the :class:`Tracks` type, a tolerant reader and a writer.

Accepted rows (REFERENCE.md): ``frame,id,bb_left,bb_top,bb_width,bb_height[,conf,x,y,z]``
with 6 to 10 values, comma, semicolon or whitespace separated, boxes as floats, 1-based frames
and pixels; blank lines, ``#`` comments and one header line of names are skipped.
Ground-truth files (9 values: ``...,flag,class,visibility``) are recognised and filtered: only
``flag == 1`` rows of the pedestrian class are kept, and ``min_visibility`` applies. Rows with
a negative id (unconfirmed tracks) and boxes of zero or negative width or height are dropped
and counted (with a warning). A track with two boxes in one frame, ids or frames beyond 2^53
(float64 holds integers exactly up to there), and a file with no usable box are errors.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trackreid.errors import InputError

log = logging.getLogger(__name__)

PEDESTRIAN = 1


@dataclass
class Tracks:
    """Boxes of tracked people as parallel arrays (one row per box).

    ``xywh`` is ``bb_left, bb_top, bb_width, bb_height`` exactly as in the MOT file (1-based
    pixels); :func:`box_to_pixels` turns one into 0-based pixel bounds at crop time.
    """

    frame: np.ndarray  # (N,) int64, 1-based
    track_id: np.ndarray  # (N,) int64
    xywh: np.ndarray  # (N, 4) float64, 1-based MOT convention
    conf: np.ndarray  # (N,) float32 (1 where the file has none)
    visibility: np.ndarray  # (N,) float32 (1 where the file has none)
    stats: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.frame)
        for name, arr, shape in (("track_id", self.track_id, (n,)), ("xywh", self.xywh, (n, 4)),
                                 ("conf", self.conf, (n,)), ("visibility", self.visibility, (n,))):
            if arr.shape != shape:
                raise InputError(f"Tracks.{name}: expected shape {shape}, got {arr.shape}")

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> np.ndarray:
        return np.unique(self.track_id)

    def subset(self, mask: np.ndarray) -> Tracks:
        return Tracks(self.frame[mask], self.track_id[mask], self.xywh[mask], self.conf[mask],
                      self.visibility[mask], dict(self.stats))


TRACKS_FORMATS = ("auto", "mot", "gt")


@dataclass(frozen=True)
class TracksReading:
    """How a tracks file is read: the file and the options of :func:`read_mot`.

    ``extract`` records it in ``track_metadata.json`` (``tracks_file`` and ``tracks_reading``);
    every later reader (associate and its outputs, the motion gate, adapt, run) reads the file
    again through :meth:`read`, so it sees exactly the rows extract cropped.
    """

    file: Path
    frame_offset: int = 0
    min_visibility: float = 0.0
    format: str = "auto"

    def read(self) -> Tracks:
        return read_mot(self.file, self.frame_offset, self.min_visibility, self.format)

    def options(self) -> dict[str, object]:
        """``track_metadata.json``'s ``tracks_reading`` (the file is its ``tracks_file``)."""
        return {"frame_offset": int(self.frame_offset), "min_visibility": float(self.min_visibility),
                "format": self.format}

    @classmethod
    def from_options(cls, file: Path, options: object, where: str) -> TracksReading:
        """The inverse of :meth:`options`; ``where`` names the metadata file in errors."""
        if not isinstance(options, dict):
            raise InputError(f"{where}: tracks_reading must be an object {{frame_offset, min_visibility, format}}, "
                             f"got {options!r}; re-run `trackreid extract` for this camera")
        offset, vis, fmt = options.get("frame_offset", 0), options.get("min_visibility", 0.0), \
            options.get("format", "auto")
        if isinstance(offset, bool) or not isinstance(offset, int) or isinstance(vis, bool) \
                or not isinstance(vis, (int, float)) or fmt not in TRACKS_FORMATS:
            raise InputError(f"{where}: tracks_reading {options!r} is not what `trackreid extract` writes "
                             "(frame_offset: integer, min_visibility: number, format: auto, mot or gt)")
        return cls(file, offset, float(vis), str(fmt))


def box_to_pixels(xywh: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """1-based MOT box -> 0-based ``(x0, y0, x1, y1)`` clipped to the image (x1/y1 exclusive)."""
    left, top, w, h = (float(v) for v in xywh)
    x0 = int(round(left - 1))
    y0 = int(round(top - 1))
    x1 = int(round(left - 1 + w))
    y1 = int(round(top - 1 + h))
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


_SPLIT_WS = re.compile(r"\s+")
MAX_EXACT = 2**53  # larger integers do not survive the float64 columns


def _quote(text: str, line: int) -> str:
    lines = text.splitlines()
    return repr(lines[line - 1].strip()[:80]) if 0 < line <= len(lines) else ""


def _delimiter(line: str) -> str | None:
    """Comma, semicolon or tab/space separated (None: any whitespace)."""
    return "," if "," in line else (";" if ";" in line else None)


def _is_ground_truth(values: np.ndarray) -> bool:
    """9 columns whose last three look like flag (0/1), class (1..12 integer), visibility [0, 1]."""
    if values.shape[1] != 9:
        return False
    flag, cls, vis = values[:, 6], values[:, 7], values[:, 8]
    return bool(
        np.isin(flag, (0, 1)).all() and (cls == np.round(cls)).all() and ((cls >= 1) & (cls <= 12)).all()
        and ((vis >= 0) & (vis <= 1)).all()
    )


def read_mot(
    path: str | Path,
    frame_offset: int = 0,
    min_visibility: float = 0.0,
    fmt: str = "auto",
) -> Tracks:
    """Read a MOT results or ground-truth file.

    ``frame_offset`` is added to every frame number (1 for files that count frames from 0).
    ``fmt`` is ``auto`` (recognise ground truth), ``mot`` or ``gt``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such tracks file (--tracks expects a MOT .txt file)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file; --tracks expects MOT rows "
                         "'frame,id,left,top,width,height[,conf,x,y,z]'") from None
    a, line_no = _fast_parse(text)
    if a is None:
        a, line_no = _careful_parse(text, path)
    frames = a[:, 0]
    bad = np.flatnonzero(np.abs(frames) > MAX_EXACT)
    if len(bad):
        raise InputError(f"{path}:{line_no[bad[0]]}: frame number beyond 2^53 ({_quote(text, line_no[bad[0]])})")
    bad = np.flatnonzero(frames != np.round(frames))
    if len(bad):
        raise InputError(f"{path}:{line_no[bad[0]]}: frame number {frames[bad[0]]} is not an integer; MOT frames "
                         "are whole numbers from 1 (the first column)")
    frame = frames.astype(np.int64) + int(frame_offset)
    bad = np.flatnonzero(frame < 1)
    if len(bad):
        raise InputError(f"{path}:{line_no[bad[0]]}: frame {frame[bad[0]]} < 1; MOT frames start at 1 "
                         "(pass --frame-offset 1 for a file that counts from 0)")
    stats: dict[str, int] = {"rows": len(a)}
    is_gt = fmt == "gt" or (fmt == "auto" and _is_ground_truth(a))
    keep = np.ones(len(a), dtype=bool)
    conf = np.ones(len(a), dtype=np.float32)
    vis = np.ones(len(a), dtype=np.float32)
    if is_gt:
        if a.shape[1] != 9:
            raise InputError(f"{path}: ground truth needs 9 values per row, found {a.shape[1]}")
        ignored = (a[:, 6] == 0) | (a[:, 7] != PEDESTRIAN)
        vis = a[:, 8].astype(np.float32)
        stats["dropped_gt_ignored_or_not_pedestrian"] = int(ignored.sum())
        keep &= ~ignored
    elif a.shape[1] >= 7:
        conf = a[:, 6].astype(np.float32)
    low_vis = keep & (vis < min_visibility)
    stats["dropped_low_visibility"] = int(low_vis.sum())
    keep &= ~low_vis
    neg = keep & (a[:, 1] < 0)
    stats["dropped_negative_id"] = int(neg.sum())
    keep &= ~neg
    ids = a[:, 1]
    bad = np.flatnonzero(keep & (ids != np.round(ids)))
    if len(bad):
        raise InputError(f"{path}:{line_no[bad[0]]}: track id {ids[bad[0]]} is not an integer")
    bad = np.flatnonzero(keep & ((np.abs(ids) > MAX_EXACT) | (np.abs(frames) > MAX_EXACT)))
    if len(bad):
        raise InputError(f"{path}:{line_no[bad[0]]}: a frame number or track id beyond 2^53 cannot be kept exactly "
                         f"({_quote(text, line_no[bad[0]])}); renumber the tracks with smaller ids")
    nonpos = keep & ((a[:, 4] <= 0) | (a[:, 5] <= 0))
    stats["dropped_empty_box"] = int(nonpos.sum())
    if nonpos.any():
        first = int(line_no[np.flatnonzero(nonpos)[0]])
        log.warning("%s: %d rows have a box of zero or negative width or height and were skipped (first at "
                    "line %d)", path, int(nonpos.sum()), first)
    keep &= ~nonpos
    stats["kept"] = int(keep.sum())
    stats["ground_truth"] = int(is_gt)
    if not keep.any():
        why = ", ".join(f"{k[len('dropped_'):].replace('_', ' ')}: {v}" for k, v in stats.items()
                        if k.startswith("dropped_") and v)
        raise InputError(f"{path}: has no box left to use among its {len(a)} rows ({why}); expected MOT rows "
                         "'frame,id,left,top,width,height,...' with width and height > 0 and ids >= 0"
                         + (" (lower --min-visibility?)" if stats["dropped_low_visibility"] else ""))
    _check_unique(frame, ids, keep, line_no, path)
    return Tracks(frame[keep], ids[keep].astype(np.int64), a[keep, 2:6].copy(), conf[keep], vis[keep], stats)


def _check_unique(frame: np.ndarray, ids: np.ndarray, keep: np.ndarray, line_no: np.ndarray, path: Path) -> None:
    """A track has at most one box per frame; name both lines of the first repeat."""
    rows = np.flatnonzero(keep)
    order = rows[np.lexsort((line_no[rows], frame[rows], ids[rows]))]
    same = (frame[order][1:] == frame[order][:-1]) & (ids[order][1:] == ids[order][:-1])
    if same.any():
        repeats = np.flatnonzero(same)
        j = repeats[np.argmin(line_no[order][repeats + 1])]
        first, second = order[j], order[j + 1]
        raise InputError(f"{path}:{line_no[second]}: track {int(ids[second])} has a second box in frame "
                         f"{int(frame[second])} (the first is on line {line_no[first]}); a track has one box per "
                         f"frame: fix the tracker output or keep one row per (frame, id)")


def _fast_parse(text: str) -> tuple[np.ndarray | None, np.ndarray]:
    """numpy's C parser for the common, clean case; ``None`` sends the text to the careful parser."""
    body = text.strip()
    if not body or "#" in body:
        return None, np.zeros(0)
    delimiter = _delimiter(body.split("\n", 1)[0])
    try:
        a = np.loadtxt(io.StringIO(body), delimiter=delimiter, dtype=np.float64, ndmin=2)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None, np.zeros(0)
    if not 6 <= a.shape[1] <= 10 or not np.isfinite(a).all() or a.shape[0] != body.count("\n") + 1:
        return None, np.zeros(0)
    return a, np.arange(1, len(a) + 1)


def _careful_parse(text: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Line by line, so that the first bad row is reported with its line number."""
    rows: list[list[float]] = []
    lines: list[int] = []
    ncols = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        sep = _delimiter(line)
        parts = [p for p in (line.split(sep) if sep else _SPLIT_WS.split(line)) if p.strip() != ""]
        if not rows and parts and not any(_is_float(p) for p in parts):
            continue  # a header line such as 'frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z'
        if not 6 <= len(parts) <= 10:
            raise InputError(f"{path}:{lineno}: expected 6 to 10 values "
                             f"(frame,id,left,top,width,height[,conf,x,y,z]), found {len(parts)}: {line[:80]!r}")
        if ncols is not None and len(parts) != ncols:
            raise InputError(f"{path}:{lineno}: {len(parts)} values, but earlier rows have {ncols}; every row "
                             "needs the same columns")
        ncols = len(parts)
        try:
            vals = [float(p) for p in parts]
        except ValueError:
            bad = next(p for p in parts if not _is_float(p))
            raise InputError(f"{path}:{lineno}: {bad.strip()!r} is not a number; MOT rows hold numbers only "
                             f"(frame,id,left,top,width,height,...): {line[:80]!r}") from None
        if not np.isfinite(vals).all():
            raise InputError(f"{path}:{lineno}: non-finite value in {line[:80]!r}")
        rows.append(vals)
        lines.append(lineno)
    if not rows:
        raise InputError(f"{path}: holds no rows; expected MOT rows 'frame,id,left,top,width,height,...'")
    return np.asarray(rows, dtype=np.float64), np.asarray(lines)


def _is_float(s: str) -> bool:
    try:
        float(s)
    except (ValueError, OverflowError):
        return False
    return True


def write_mot(tracks: Tracks, path: str | Path) -> None:
    """Write MOT results rows (10 values; x, y, z = -1)."""
    from trackreid.io.atomic import atomic_path

    with atomic_path(Path(path)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for fr, tid, (x, y, w, h), c in zip(tracks.frame, tracks.track_id, tracks.xywh, tracks.conf, strict=True):
            f.write(f"{fr},{tid},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{c:.3f},-1,-1,-1\n")
