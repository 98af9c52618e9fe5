"""Multi-camera IDF1 / IDP / IDR through py-motmetrics (the AI City MTMC protocol).

All cameras are concatenated into one sequence by offsetting frame numbers (camera 2's frame 1
comes after camera 1's last frame), ground-truth and predicted boxes of a frame are matched at
IoU >= 0.5, and motmetrics finds ONE global identity matching over all cameras: a person given
one id in camera A and another in camera B counts as half right, exactly as in AI City.

Ground truth (``gt``): a folder of per-camera MOT files whose ids are global
(``<camera>.txt``, ``<camera>/gt.txt`` or ``<camera>/gt/gt.txt``), a ``{camera: file}`` dict, or an
AI City file (``camera_id obj_id frame x y w h xworld yworld``, one row per box).
Prediction (``pred``): an ``associate`` output folder (its ``global_tracks/`` or ``mtmc.txt``),
a folder of per-camera MOT files, a dict, or an AI City file.

Camera names match exactly, or by their number (``c041`` and ``41``, ``cam1`` and ``1``), so an
AI City ground truth can score per-camera MOT predictions and back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.errors import InputError
from trackreid.io.mot import read_mot

log = logging.getLogger(__name__)

METRICS = ("idf1", "idp", "idr", "idtp", "idfp", "idfn")
_INSTALL_HINT = "py-motmetrics is needed for evaluate-mtmc: pip install 'trackreid[mtmc]' (or: pip install motmetrics)"


@dataclass
class CameraBoxes:
    """One camera's boxes: parallel arrays, ``xywh`` in MOT pixels (1-based left/top)."""

    frame: np.ndarray  # (N,) int64
    obj_id: np.ndarray  # (N,) int64, global identity
    xywh: np.ndarray  # (N, 4) float64
    source: str  # file (and camera) for messages


PathLike = str | Path
Source = PathLike | Mapping[str, PathLike]


def evaluate_mtmc(gt: Source, pred: Source, min_iou: float = 0.5) -> dict[str, Any]:
    """IDF1 / IDP / IDR of ``pred`` against ``gt`` over all cameras, with the counts behind them.

    Returns ``{"idf1", "idp", "idr", "idtp", "idfp", "idfn", "num_gt_ids", "num_pred_ids",
    "num_gt_boxes", "num_pred_boxes", "num_frames", "cameras", "cameras_without_prediction",
    "min_iou", "gt", "pred"}`` (ratios in [0, 1]).
    """
    gt_cams, gt_desc = read_camera_boxes(gt, role="gt")
    pred_cams, pred_desc = read_camera_boxes(pred, role="pred")
    return score_boxes(gt_cams, pred_cams, min_iou, gt_desc, pred_desc)


def evaluate_assignment(gt: Source, tracks: Mapping[str, PathLike], global_ids: Mapping[str, Mapping[int, int]],
                        min_iou: float = 0.5) -> dict[str, Any]:
    """:func:`evaluate_mtmc` of an assignment held in memory: each camera's MOT ``tracks`` file with
    its track ids replaced by ``global_ids[camera][track id]`` (tracks without one are left out).

    What benchmarks and label-free experiments use to score many assignments without writing files.
    """
    gt_cams, gt_desc = read_camera_boxes(gt, role="gt")
    pred_cams: dict[str, CameraBoxes] = {}
    for cam, path in tracks.items():
        trk = read_mot(path, fmt="mot")
        ids = global_ids.get(cam, {})
        gid = np.array([ids.get(int(t), -1) for t in trk.track_id.tolist()], np.int64)
        keep = gid >= 0
        boxes = CameraBoxes(trk.frame[keep], gid[keep], trk.xywh[keep].astype(np.float64), f"{path} ({cam})")
        _check_unique(boxes, boxes.source)
        pred_cams[cam] = boxes
    return score_boxes(gt_cams, pred_cams, min_iou, gt_desc, "global ids in memory")


def score_boxes(gt_cams: Mapping[str, CameraBoxes], pred_cams: Mapping[str, CameraBoxes], min_iou: float = 0.5,
                gt_desc: str = "gt", pred_desc: str = "pred") -> dict[str, Any]:
    """The metrics of per-camera boxes whose ids are global (see :func:`evaluate_mtmc`)."""
    if not 0.0 < min_iou <= 1.0:
        raise InputError(f"--min-iou must be in (0, 1], got {min_iou}")
    pairs = match_cameras(list(gt_cams), list(pred_cams), gt_desc, pred_desc)
    empty = CameraBoxes(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), "")
    missing = [g for g, p in pairs if p is None]
    if missing:
        log.warning("no prediction for camera(s) %s: all their ground-truth boxes count as missed",
                    ", ".join(missing))
    try:
        import motmetrics as mm
    except ImportError:
        raise InputError(_INSTALL_HINT) from None

    acc = mm.MOTAccumulator(auto_id=False)
    offset = 0
    for g, p in pairs:
        a, b = gt_cams[g], (pred_cams[p] if p is not None else empty)
        last = int(max(a.frame.max(initial=0), b.frame.max(initial=0)))
        _accumulate(acc, a, b, offset, min_iou, mm)
        offset += last + 1  # frames may start at 0 (AI City): keep cameras apart
    summary = mm.metrics.create().compute(acc, metrics=list(METRICS), name="mtmc")
    row = summary.loc["mtmc"]
    out: dict[str, Any] = {m: float(row[m]) for m in METRICS}
    for m in ("idtp", "idfp", "idfn"):
        out[m] = int(round(out[m]))
    for m in ("idf1", "idp", "idr"):
        if not np.isfinite(out[m]):
            out[m] = 0.0
    out.update(
        num_gt_ids=len(np.unique(np.concatenate([c.obj_id for c in gt_cams.values()]))),
        num_pred_ids=len(np.unique(np.concatenate([c.obj_id for c in pred_cams.values()]))),
        num_gt_boxes=int(sum(len(c.frame) for c in gt_cams.values())),
        num_pred_boxes=int(sum(len(c.frame) for c in pred_cams.values())),
        num_frames=offset,  # the concatenated sequence's length
        cameras=[g for g, _ in pairs],
        cameras_without_prediction=missing,
        min_iou=min_iou,
        gt=gt_desc,
        pred=pred_desc,
    )
    return out


def _accumulate(acc: Any, gt: CameraBoxes, pred: CameraBoxes, offset: int, min_iou: float, mm: Any) -> None:
    """Feed one camera's frames to the accumulator at ``frame + offset``.

    The distance is motmetrics' own IoU (``distances.boxiou``) turned into ``1 - IoU`` with pairs
    under ``min_iou`` forbidden, as ``distances.iou_matrix`` does; that function itself calls
    ``np.asfarray``, which numpy 2 removed, so it is not called.
    """
    frames = np.union1d(gt.frame, pred.frame)
    g_order = np.argsort(gt.frame, kind="stable")
    p_order = np.argsort(pred.frame, kind="stable")
    g_start = np.searchsorted(gt.frame[g_order], frames, "left")
    g_end = np.searchsorted(gt.frame[g_order], frames, "right")
    p_start = np.searchsorted(pred.frame[p_order], frames, "left")
    p_end = np.searchsorted(pred.frame[p_order], frames, "right")
    max_dist = 1.0 - min_iou
    for k, f in enumerate(frames):
        gi = g_order[g_start[k]:g_end[k]]
        pi = p_order[p_start[k]:p_end[k]]
        if len(gi) and len(pi):
            iou = mm.distances.boxiou(gt.xywh[gi][:, None], pred.xywh[pi][None, :])
            dist = 1.0 - iou
            dist = np.where(dist > max_dist + 1e-12, np.nan, dist)
        else:
            dist = np.empty((len(gi), len(pi)))
        acc.update(gt.obj_id[gi].tolist(), pred.obj_id[pi].tolist(), dist, frameid=int(f) + offset)


# --- reading -----------------------------------------------------------------------------------

def read_camera_boxes(src: Source, role: str) -> tuple[dict[str, CameraBoxes], str]:
    """``{camera: boxes}`` from any accepted ``gt``/``pred`` form, and a short description of it."""
    flag = f"--{role}"
    if isinstance(src, Mapping):
        if not src:
            raise InputError(f"{flag}: no cameras given")
        cams = {str(name): _read_mot_camera(Path(p), str(name), role) for name, p in src.items()}
        return cams, ", ".join(f"{n}={p}" for n, p in src.items())
    path = Path(src)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder ({flag} expects {_expected(role)})")
    if path.is_file():
        return (_named(read_aicity(path, flag), path.parent) if role == "pred" else read_aicity(path, flag)), str(path)
    if role == "pred":
        gt_dir = path / "global_tracks"
        if gt_dir.is_dir():
            return _read_camera_folder(gt_dir, role), str(gt_dir)
        if (path / "mtmc.txt").is_file():
            return _named(read_aicity(path / "mtmc.txt", flag), path), str(path / "mtmc.txt")
    return _read_camera_folder(path, role), str(path)


def _named(cams: dict[str, CameraBoxes], folder: Path) -> dict[str, CameraBoxes]:
    """AI City camera ids -> camera names, when ``associate``'s summary.json beside mtmc.txt lists them."""
    import json

    try:
        listed = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["cameras"]
        names = {str(int(c["camera_id"])): str(c["name"]) for c in listed}
    except (OSError, ValueError, KeyError, TypeError):
        return cams
    return {names.get(k, k): v for k, v in cams.items()}


def _expected(role: str) -> str:
    common = ("a folder of per-camera MOT files with global ids (<camera>.txt or <camera>/gt.txt), "
              "or an AI City file (camera_id obj_id frame x y w h xworld yworld)")
    return ("an associate output folder (global_tracks/ or mtmc.txt), " + common) if role == "pred" else common


def _read_camera_folder(folder: Path, role: str) -> dict[str, CameraBoxes]:
    files: dict[str, Path] = {}
    for f in sorted(folder.glob("*.txt")):
        files[f.stem] = f
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        for cand in (sub / "gt.txt", sub / "gt" / "gt.txt"):
            if cand.is_file():
                if sub.name in files:
                    raise InputError(f"{folder}: camera {sub.name!r} has two files, {files[sub.name]} and {cand}; "
                                     "keep one")
                files[sub.name] = cand
                break
    if not files:
        raise InputError(f"{folder}: holds no camera files; --{role} expects {_expected(role)}")
    return {name: _read_mot_camera(p, name, role) for name, p in files.items()}


def _read_mot_camera(path: Path, camera: str, role: str) -> CameraBoxes:
    tracks = read_mot(path, fmt="auto" if role == "gt" else "mot")
    boxes = CameraBoxes(tracks.frame.astype(np.int64), tracks.track_id.astype(np.int64),
                        tracks.xywh.astype(np.float64), str(path))
    _check_unique(boxes, f"{path}")
    return boxes


def read_aicity(path: Path, flag: str = "--gt") -> dict[str, CameraBoxes]:
    """AI City MTMC rows ``camera_id obj_id frame x y w h [xworld yworld]`` -> ``{camera: boxes}``."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError):
        raise InputError(f"{path}: not a text file; {flag} expects AI City rows "
                         "'camera_id obj_id frame x y w h xworld yworld' or a folder") from None
    rows: list[list[float]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p for p in re.split(r"[,\s]+", line) if p]
        if not 7 <= len(parts) <= 9:
            raise InputError(f"{path}:{lineno}: expected 7 to 9 values (camera_id obj_id frame x y w h "
                             f"[xworld yworld]), found {len(parts)}: {line[:80]!r}")
        try:
            vals = [float(p) for p in parts[:7]]
        except ValueError:
            raise InputError(f"{path}:{lineno}: AI City rows hold numbers only "
                             f"(camera_id obj_id frame x y w h ...): {line[:80]!r}") from None
        if not np.isfinite(vals).all() or any(v != round(v) for v in vals[:3]):
            raise InputError(f"{path}:{lineno}: camera_id, obj_id and frame must be integers: {line[:80]!r}")
        if vals[2] < 0:
            raise InputError(f"{path}:{lineno}: negative frame number: {line[:80]!r}")
        rows.append(vals)
    if not rows:
        raise InputError(f"{path}: holds no rows; {flag} expects AI City rows "
                         "'camera_id obj_id frame x y w h xworld yworld' or a folder of per-camera MOT files")
    a = np.asarray(rows, dtype=np.float64)
    keep = (a[:, 1] >= 0) & (a[:, 5] > 0) & (a[:, 6] > 0)
    a = a[keep]
    cams: dict[str, CameraBoxes] = {}
    for cam in np.unique(a[:, 0]).astype(np.int64):
        m = a[:, 0] == cam
        boxes = CameraBoxes(a[m, 2].astype(np.int64), a[m, 1].astype(np.int64), a[m, 3:7].copy(),
                            f"{path} (camera {cam})")
        _check_unique(boxes, boxes.source)
        cams[str(int(cam))] = boxes
    return cams


def _check_unique(boxes: CameraBoxes, where: str) -> None:
    """One identity is in one place per frame; a repeat means a broken file (or broken association)."""
    if not len(boxes.frame):
        return
    key = np.stack([boxes.frame, boxes.obj_id], axis=1)
    uniq, counts = np.unique(key, axis=0, return_counts=True)
    if (counts > 1).any():
        f, i = uniq[np.argmax(counts > 1)]
        raise InputError(f"{where}: id {i} has {counts.max()} boxes in frame {f}; one identity is in one place "
                         "per frame in one camera (were two tracks that overlap in time given one global id?)")


# --- camera names --------------------------------------------------------------------------------

def _number(name: str) -> int | None:
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else None


def match_cameras(gt: list[str], pred: list[str], gt_desc: str = "gt",
                  pred_desc: str = "pred") -> list[tuple[str, str | None]]:
    """Pair every ground-truth camera with its predicted one (None when absent), in ground-truth order.

    Exact names first, then the trailing number of the name (``c041`` = ``41`` = ``cam41``).
    A predicted camera that matches no ground-truth camera is an error: its boxes could not be scored.
    """
    gt_sorted = sorted(gt, key=lambda n: (_number(n) if _number(n) is not None else -1, n))
    left = set(pred)
    pairs: dict[str, str | None] = {}
    for g in gt_sorted:
        if g in left:
            pairs[g] = g
            left.discard(g)
    for g in gt_sorted:
        if g in pairs:
            continue
        n = _number(g)
        cands = [p for p in sorted(left) if n is not None and _number(p) == n]
        if len(cands) > 1:
            raise InputError(f"camera {g!r} of {gt_desc} matches several cameras of {pred_desc}: "
                             f"{', '.join(cands)}; name the cameras the same way in both")
        pairs[g] = cands[0] if cands else None
        if cands:
            left.discard(cands[0])
    if left:
        raise InputError(f"{pred_desc}: camera(s) {', '.join(sorted(left))} are not in the ground truth {gt_desc} "
                         f"(cameras there: {', '.join(gt_sorted)}); name the cameras the same way in both")
    if all(p is None for p in pairs.values()):
        raise InputError(f"no camera of {pred_desc} is in the ground truth {gt_desc}")
    return [(g, pairs[g]) for g in gt_sorted]
