"""Where each track begins and ends in its camera's image, and whether two tracks of one camera
can be one person's broken pieces.

A tracker breaks a person's track when it loses them for a moment (an occlusion, a missed
detection); the person reappears where their motion leads. So two tracks ``p`` and ``q`` of
one camera, ``q`` starting ``g`` seconds after ``p`` ends, are pieces of one person only if
one piece's motion, carried over the gap at constant velocity, lands near the other piece:
``p``'s last foot point plus its velocity times ``g`` near ``q``'s first foot point, or ``q``'s
first foot point minus its velocity times ``g`` near ``p``'s last (the smaller of the two
errors counts, so one piece with a poor velocity estimate does not veto the pair). The error
is in body heights (the larger of the two pieces' box heights at the gap) and may be at most

    ``slack + rate * g``

with ``slack`` = :data:`MOTION_SLACK` (0.5 heights: box jitter of a detector and the foot
point's own noise) and ``rate`` = :data:`MOTION_RATE` (1 height per second: a change of
velocity of about 1.7 m/s for a 1.7 m person during the gap, i.e. a walker who stops, or turns
a right angle at walking speed). Both come from what people and detectors do, not from any
benchmark. Tracks apart by longer than a few seconds are barely constrained (the bound grows
with the gap); the revisit gap (``--revisit-gap``) bounds those.

A track's end state: the foot point (box bottom centre) of its last box, its velocity from a
least-squares line through the foot points of its last ``WINDOW x fps`` boxes (one second's
worth at the camera's frame rate, at least two; zero when the track has one box), and the
median box height of those boxes; likewise at its start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trackreid.io.mot import Tracks

#: Allowed prediction error at a zero gap, in body heights.
MOTION_SLACK = 0.5
#: Growth of the allowed error per second of gap, in body heights per second.
MOTION_RATE = 1.0
#: Seconds' worth of boxes (at the camera's fps) at each end of a track that its end velocity is fitted on.
WINDOW = 1.0


@dataclass
class Endpoints:
    """Per track (rows of a :class:`~trackreid.associate.tracks.TrackSet`): its image motion at both ends.

    Positions in pixels, velocities in pixels per second, ``known`` False where the camera's
    tracks file is unknown or lacks the track (those pairs are not gated).
    """

    start_xy: np.ndarray  # (N, 2) foot point of the first box
    start_v: np.ndarray  # (N, 2) velocity over the first WINDOW seconds
    start_h: np.ndarray  # (N,) median box height there
    end_xy: np.ndarray  # (N, 2)
    end_v: np.ndarray  # (N, 2)
    end_h: np.ndarray  # (N,)
    known: np.ndarray  # (N,) bool

    @classmethod
    def empty(cls, n: int) -> Endpoints:
        z2, z1 = np.zeros((n, 2)), np.zeros(n)
        return cls(z2, z2.copy(), z1, z2.copy(), z2.copy(), z1.copy(), np.zeros(n, bool))

    def fill(self, rows: np.ndarray, track_ids: np.ndarray, tracks: Tracks, fps: float) -> None:
        """Set the rows ``rows`` (TrackSet rows of one camera, with ``track_ids``) from that camera's MOT boxes."""
        if not len(tracks.frame):
            return
        order = np.lexsort((tracks.frame, tracks.track_id))
        tid, frame, box = tracks.track_id[order], tracks.frame[order], tracks.xywh[order].astype(np.float64)
        foot = np.c_[box[:, 0] + box[:, 2] / 2, box[:, 1] + box[:, 3]]
        height = box[:, 3]
        ids, first = np.unique(tid, return_index=True)
        last = np.r_[first[1:], len(tid)]
        at = dict(zip(ids.tolist(), zip(first.tolist(), last.tolist(), strict=True), strict=True))
        span = max(2, int(round(WINDOW * fps)))
        for row, t in zip(rows.tolist(), track_ids.tolist(), strict=True):
            got = at.get(int(t))
            if got is None:
                continue
            lo, hi = got
            for sl, k, xy, v, h in ((slice(lo, min(hi, lo + span)), 0, self.start_xy, self.start_v, self.start_h),
                                    (slice(max(lo, hi - span), hi), -1, self.end_xy, self.end_v, self.end_h)):
                f, p = frame[sl] / fps, foot[sl]
                xy[row] = p[k]
                h[row] = float(np.median(height[sl]))
                v[row] = _velocity(f, p)
            self.known[row] = True

    def error(self, p: int, q: int, gap: float) -> float:
        """Prediction error (body heights) between ``p``'s end and ``q``'s start, ``gap`` seconds later."""
        h = max(self.end_h[p], self.start_h[q], 1e-6)
        fwd = np.hypot(*(self.end_xy[p] + self.end_v[p] * gap - self.start_xy[q]))
        back = np.hypot(*(self.start_xy[q] - self.start_v[q] * gap - self.end_xy[p]))
        return float(min(fwd, back) / h)

    def allows(self, p: int, q: int, gap: float) -> bool:
        """Can ``q`` (starting ``gap`` seconds after ``p`` ends, same camera) continue ``p``? (module docstring)"""
        if not (self.known[p] and self.known[q]):
            return True
        return self.error(p, q, gap) <= MOTION_SLACK + MOTION_RATE * max(gap, 0.0)


def _velocity(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Least-squares slope of the points ``p`` (K, 2) over the times ``t`` (K,); zero for one time."""
    dt = t - t.mean()
    denom = float((dt * dt).sum())
    if denom <= 0:
        return np.zeros(2)
    return (dt[:, None] * (p - p.mean(axis=0))).sum(axis=0) / denom

