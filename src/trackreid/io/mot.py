"""MOTChallenge track files: the :class:`Tracks` type, a tolerant reader and a writer.

Accepted rows (REFERENCE.md): ``frame,id,bb_left,bb_top,bb_width,bb_height[,conf,x,y,z]``
with 6 to 10 values, comma or whitespace separated, boxes as floats, 1-based frames and
pixels. Ground-truth files (9 values: ``...,flag,class,visibility``) are recognised and
filtered: only ``flag == 1`` rows of the pedestrian class are kept, and ``min_visibility``
applies. Rows with a negative id (unconfirmed tracks) are dropped and counted.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trackreid.errors import InputError

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


def box_to_pixels(xywh: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """1-based MOT box -> 0-based ``(x0, y0, x1, y1)`` clipped to the image (x1/y1 exclusive)."""
    left, top, w, h = (float(v) for v in xywh)
    x0 = int(round(left - 1))
    y0 = int(round(top - 1))
    x1 = int(round(left - 1 + w))
    y1 = int(round(top - 1 + h))
    return max(0, x0), max(0, y0), min(width, x1), min(height, y1)


_SPLIT_WS = re.compile(r"\s+")


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
    bad = np.flatnonzero(frames != np.round(frames))
    if len(bad):
        raise InputError(f"{path}:{line_no[bad[0]]}: frame number {frames[bad[0]]} is not an integer")
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
    nonpos = keep & ((a[:, 4] <= 0) | (a[:, 5] <= 0))
    stats["dropped_empty_box"] = int(nonpos.sum())
    keep &= ~nonpos
    stats["kept"] = int(keep.sum())
    stats["ground_truth"] = int(is_gt)
    return Tracks(frame[keep], ids[keep].astype(np.int64), a[keep, 2:6].copy(), conf[keep], vis[keep], stats)


def _fast_parse(text: str) -> tuple[np.ndarray | None, np.ndarray]:
    """numpy's C parser for the common, clean case; ``None`` sends the text to the careful parser."""
    body = text.strip()
    if not body or "#" in body:
        return None, np.zeros(0)
    delimiter = "," if "," in body.split("\n", 1)[0] else None
    try:
        a = np.loadtxt(io.StringIO(body), delimiter=delimiter, dtype=np.float64, ndmin=2)
    except ValueError:
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
        parts = [p for p in (line.split(",") if "," in line else _SPLIT_WS.split(line)) if p.strip() != ""]
        if not 6 <= len(parts) <= 10:
            raise InputError(f"{path}:{lineno}: expected 6 to 10 values "
                             f"(frame,id,left,top,width,height[,conf,x,y,z]), found {len(parts)}: {line[:80]!r}")
        if ncols is not None and len(parts) != ncols:
            raise InputError(f"{path}:{lineno}: {len(parts)} values, but earlier rows have {ncols}")
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
    except ValueError:
        return False
    return True


def write_mot(tracks: Tracks, path: str | Path) -> None:
    """Write MOT results rows (10 values; x, y, z = -1)."""
    from trackreid.io.atomic import atomic_path

    with atomic_path(Path(path)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for fr, tid, (x, y, w, h), c in zip(tracks.frame, tracks.track_id, tracks.xywh, tracks.conf, strict=True):
            f.write(f"{fr},{tid},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{c:.3f},-1,-1,-1\n")
