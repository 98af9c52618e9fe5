"""Which boxes of each track become crops: at most N, spread evenly over the track's life.

``even``: the N boxes nearest to N evenly spaced times between the track's first and last
frame (all boxes when the track has at most N).

``quality`` (default): the same, but among *usable* boxes first. A box is usable when

* after clipping to the image it keeps at least half of its area,
* it is at least ``min_height`` x ``min_width`` pixels (after clipping), and
* no box of the same frame that stands in front of it (its bottom edge is lower in the
  image, the usual ground-plane cue) covers ``max_occlusion`` or more of its area.

A track with fewer than N usable boxes is topped up with its other boxes, least occluded
first. Boxes that are empty after clipping, or on frames past the end of the video, are never
sampled; they are counted in the plan's ``stats``.

Codec-aware (``max_shift``, given which frames the video's codec references): a crop that
falls on a frame no other picture references (e.g. a non-reference B-frame, decoded only
when wanted) moves to the nearest box of the same track at most ``max_shift`` frames away
that lies on a frame decoded anyway (referenced), or else on a frame another crop already
needs, so runs of unreferenced frames are never decoded. The box it moves to is of the same
kind (usable for a usable crop) and not already a crop of that track; the plan records each
crop's ``shift`` (frames moved).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from trackreid.errors import InputError
from trackreid.io.mot import Tracks

STRATEGIES = ("quality", "even")


@dataclass(frozen=True)
class SamplingConfig:
    max_crops_per_track: int = 10
    strategy: str = "quality"
    min_height: int = 40
    min_width: int = 15
    max_occlusion: float = 0.5
    max_shift: int = 2  # frames a crop may move to land on a frame decoded anyway (0: never)

    def __post_init__(self) -> None:
        if self.max_crops_per_track < 1:
            raise InputError(f"--max-crops-per-track must be at least 1, got {self.max_crops_per_track}")
        if self.max_shift < 0:
            raise InputError(f"--max-shift must be 0 or more, got {self.max_shift}")
        if self.strategy not in STRATEGIES:
            raise InputError(f"--sampling {self.strategy!r}: expected one of {', '.join(STRATEGIES)}")


@dataclass
class SamplePlan:
    """The chosen crops, sorted by (track, frame): parallel arrays, boxes in 0-based pixels."""

    track_id: np.ndarray  # (K,) int64
    frame: np.ndarray  # (K,) int64
    ordinal: np.ndarray  # (K,) int64, crop number within its track (0..)
    box: np.ndarray  # (K, 4) int64, x0, y0, x1, y1 (exclusive), clipped to the image
    track_rows: dict[int, np.ndarray]  # track id -> frames of all its boxes in the tracks file
    stats: dict[str, int] = field(default_factory=dict)
    shift: np.ndarray | None = None  # (K,) int64, frames each crop moved to a decoded frame (None: none moved)

    def __len__(self) -> int:
        return len(self.frame)

    def frames_needed(self) -> np.ndarray:
        return np.unique(self.frame)

    def select(self, first: int, last: int) -> tuple[SamplePlan, np.ndarray]:
        """The crops on frames ``first..last`` (a segment), and their row numbers in this plan."""
        rows = np.flatnonzero((self.frame >= first) & (self.frame <= last))
        sub = SamplePlan(self.track_id[rows], self.frame[rows], self.ordinal[rows], self.box[rows], {}, {})
        return sub, rows


def mot_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    """1-based MOT boxes (left, top, width, height) -> 0-based float x0, y0, x1, y1 (x1, y1 exclusive)."""
    xywh = np.asarray(xywh, dtype=np.float64).reshape(-1, 4)
    return np.stack([xywh[:, 0] - 1, xywh[:, 1] - 1, xywh[:, 0] - 1 + xywh[:, 2], xywh[:, 1] - 1 + xywh[:, 3]], 1)


def clip_boxes(raw: np.ndarray, width: int, height: int) -> np.ndarray:
    """0-based float x0, y0, x1, y1 -> rounded int64 boxes clipped to the image."""
    r = np.round(raw).astype(np.int64)
    return np.stack([np.clip(r[:, 0], 0, width), np.clip(r[:, 1], 0, height),
                     np.clip(r[:, 2], 0, width), np.clip(r[:, 3], 0, height)], 1)


@dataclass
class BoxQuality:
    """The sampling rules applied to boxes (parallel arrays): shared by offline and online sampling."""

    clipped: np.ndarray  # (n, 4) int64
    occlusion: np.ndarray  # (n,) float, largest fraction covered by one box in front
    empty: np.ndarray  # (n,) bool, nothing left after clipping
    past_end: np.ndarray  # (n,) bool, on a frame past the end of the video
    valid: np.ndarray  # (n,) bool, may be sampled (not empty, not past the end)
    usable: np.ndarray  # (n,) bool, preferred (see the module docstring)


def assess_boxes(frames: np.ndarray, raw: np.ndarray, width: int, height: int, config: SamplingConfig,
                 frame_count: int | None = None) -> BoxQuality:
    """Apply the sampling rules to 0-based float ``raw`` boxes on ``frames`` (all boxes of a frame
    must be given together: occlusion compares boxes of the same frame)."""
    clipped = clip_boxes(raw, width, height)
    cw = clipped[:, 2] - clipped[:, 0]
    ch = clipped[:, 3] - clipped[:, 1]
    empty = (cw <= 0) | (ch <= 0)
    past_end = frames > frame_count if frame_count else np.zeros(len(frames), dtype=bool)
    valid = ~empty & ~past_end
    occ = occlusion(frames, raw)
    raw_area = np.maximum((raw[:, 2] - raw[:, 0]) * (raw[:, 3] - raw[:, 1]), 1e-9)
    usable = valid & (cw * ch >= 0.5 * raw_area)
    if config.strategy == "quality":
        usable &= (ch >= config.min_height) & (cw >= config.min_width) & (occ < config.max_occlusion)
    else:
        usable = valid
    return BoxQuality(clipped, occ, empty, past_end, valid, usable)


def occlusion(frames: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """For each box, the largest fraction of its area covered by one box in front of it."""
    out = np.zeros(len(frames))
    order = np.argsort(frames, kind="stable")
    f_sorted = frames[order]
    starts = np.flatnonzero(np.r_[True, f_sorted[1:] != f_sorted[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for s, e in zip(starts, ends, strict=True):
        if e - s < 2:
            continue
        idx = order[s:e]
        b = raw[idx]
        ix = np.clip(np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]), 0, None)
        iy = np.clip(np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]), 0, None)
        area = np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-9)
        cover = ix * iy / area[:, None]
        in_front = b[None, :, 3] > b[:, None, 3]  # j's bottom edge is lower than i's
        np.fill_diagonal(in_front, False)
        out[idx] = np.where(in_front, cover, 0).max(axis=1)
    return out


def pick_even(frames: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` entries of sorted ``frames`` nearest to ``n`` evenly spaced times."""
    m = len(frames)
    if m <= n:
        return np.arange(m)
    targets = np.linspace(frames[0], frames[-1], n)
    taken = np.zeros(m, dtype=bool)
    picks = []
    for t in targets:
        d = np.abs(frames - t).astype(np.float64)
        d[taken] = np.inf
        j = int(np.argmin(d))
        taken[j] = True
        picks.append(j)
    return np.sort(np.asarray(picks))


def select_track(frames: np.ndarray, usable: np.ndarray, valid: np.ndarray, occ: np.ndarray,
                 n: int) -> tuple[np.ndarray, int]:
    """One track's crops: positions into its boxes (ordered by frame) and how many are top-ups.

    ``n`` usable boxes spread evenly (:func:`pick_even`), topped up with valid unusable boxes,
    least occluded first (earlier first among equals), when fewer than ``n`` are usable.
    """
    good = np.flatnonzero(usable)
    sel = good[pick_even(frames[good], n)]
    if len(sel) >= n:
        return sel, 0
    rest = np.flatnonzero(valid & ~usable)
    extra = rest[np.argsort(occ[rest], kind="stable")][: n - len(sel)]
    return np.sort(np.concatenate([sel, extra])), len(extra)


def snap_to_decoded(track_frames: list[np.ndarray], picks: list[np.ndarray], kind: list[np.ndarray],
                    referenced: np.ndarray, max_shift: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Move crops off unreferenced frames (see the module docstring); per track, in parallel lists:

    ``track_frames``: the frames of its boxes, sorted; ``picks``: positions of its crops among
    them; ``kind``: per box 2 usable, 1 valid, 0 never sampled. ``referenced``: per frame ``k``
    at ``k - 1``. Returns per track the new positions (sorted) and each one's shift in frames.
    """
    n = len(referenced)

    def decoded_anyway(k: int) -> bool:
        return 1 <= k <= n and bool(referenced[k - 1])

    new = [p.copy() for p in picks]
    shift = [np.zeros(len(p), np.int64) for p in picks]

    def move(t: int, i: int, ok: Callable[[int], bool]) -> bool:
        """Move crop ``i`` of track ``t`` to the nearest box (earlier first) on a frame ``ok`` accepts."""
        fr, p = track_frames[t], int(new[t][i])
        k0 = int(fr[p])
        lo, hi = np.searchsorted(fr, [k0 - max_shift, k0 + max_shift + 1])
        taken = set(fr[new[t]].tolist())  # frames: a track with two boxes on one frame still gets one crop there
        cands = [j for j in range(lo, hi) if int(fr[j]) not in taken and kind[t][j] >= kind[t][p] and ok(int(fr[j]))]
        if not cands:
            return False
        j = min(cands, key=lambda j: (abs(int(fr[j]) - k0), int(fr[j])))
        new[t][i], shift[t][i] = j, int(fr[j]) - k0
        return True

    stuck = []
    for t, fr in enumerate(track_frames):
        for i in range(len(new[t])):
            k0 = int(fr[new[t][i]])
            if 1 <= k0 <= n and not referenced[k0 - 1] and not move(t, i, decoded_anyway):
                stuck.append((k0, t, i))
    needed: set[int] = set()  # unreferenced frames decoded for a crop that could not move
    for k0, t, i in sorted(stuck):
        if not move(t, i, needed.__contains__):
            needed.add(k0)
    order = [np.argsort(p, kind="stable") for p in new]
    return [p[o] for p, o in zip(new, order, strict=True)], [d[o] for d, o in zip(shift, order, strict=True)]


def plan_samples(tracks: Tracks, width: int, height: int, config: SamplingConfig,
                 frame_count: int | None = None, referenced: np.ndarray | None = None) -> SamplePlan:
    """Choose the crops of every track (see the module docstring for the rule); ``referenced``
    (per frame ``k`` at ``k - 1``, :meth:`FrameSource.referenced_frames`) enables moving crops
    onto frames decoded anyway."""
    q = assess_boxes(tracks.frame, mot_to_xyxy(tracks.xywh), width, height, config, frame_count)
    clipped, occ, valid, usable = q.clipped, q.occlusion, q.valid, q.usable
    stats = {"boxes_empty_after_clipping": int(q.empty.sum()),
             "boxes_past_end_of_video": int((q.past_end & ~q.empty).sum()),
             "boxes_usable": int(usable.sum())}

    order = np.lexsort((tracks.frame, tracks.track_id))
    tid_sorted = tracks.track_id[order]
    starts = np.flatnonzero(np.r_[True, tid_sorted[1:] != tid_sorted[:-1]]) if len(order) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(order)]
    track_rows: dict[int, np.ndarray] = {}
    n = config.max_crops_per_track
    topped_up = 0
    rows_of: list[np.ndarray] = []
    picks: list[np.ndarray] = []
    for s, e in zip(starts, ends, strict=True):
        rows = order[s:e]
        track_rows[int(tracks.track_id[rows[0]])] = tracks.frame[rows]
        pos, extra = select_track(tracks.frame[rows], usable[rows], valid[rows], occ[rows], n)
        topped_up += extra
        rows_of.append(rows)
        picks.append(pos)
    stats["crops_topped_up_with_unusable_boxes"] = topped_up
    shift = None
    if referenced is not None and config.max_shift > 0 and picks:
        kind = valid.astype(np.int64) + usable
        picks, shifts = snap_to_decoded([tracks.frame[r] for r in rows_of], picks, [kind[r] for r in rows_of],
                                        referenced, config.max_shift)
        shift = np.concatenate(shifts)
    chosen = [rows[pos] for rows, pos in zip(rows_of, picks, strict=True)]
    idx = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    if shift is not None and referenced is not None:
        f = tracks.frame[idx]
        unref = (f >= 1) & (f <= len(referenced)) & ~referenced[np.clip(f, 1, len(referenced)) - 1]
        stats["crops_moved_to_decoded_frames"] = int(np.count_nonzero(shift))
        stats["crops_on_unreferenced_frames"] = int(unref.sum())
        stats["unreferenced_frames_decoded_for_crops"] = len(np.unique(f[unref]))
    tid = tracks.track_id[idx]
    ordinal = np.zeros(len(idx), dtype=np.int64)
    if len(idx):
        first = np.r_[True, tid[1:] != tid[:-1]]
        group_start = np.maximum.accumulate(np.where(first, np.arange(len(idx)), 0))
        ordinal = np.arange(len(idx)) - group_start
    stats["crops_planned"] = len(idx)
    return SamplePlan(tid, tracks.frame[idx], ordinal, clipped[idx], track_rows, stats, shift)
