"""What can never be one person, checked exactly on whole clusters.

* **Same-camera time overlap.** Two tracks of one camera that share a moment (their
  ``[start, end]`` spans intersect) are two people. Checked for every pair of tracks of the
  two clusters being merged, not only the pair that proposed the merge.
* **Topology** (optional). A cluster's tracks, ordered by start time, form the person's
  path; every step between two cameras must be a listed camera pair, and its transit time
  (next start minus previous end, in seconds; negative where two views overlap) must lie in
  that pair's ``[min, max]``. Steps within one camera (leaving and coming back) need no link.
  A camera pair not listed never links directly, but a person may still pass through a third
  camera in between.
* **Max gap** (optional). Within a cluster, no stretch of time longer than ``max_gap`` seconds
  without any of its tracks (the union of its spans has no hole longer than that).
* **Revisit gap** (optional; ``--revisit-gap``). Within a cluster, two consecutive tracks of
  one camera are at most ``revisit_gap`` seconds apart (next start minus previous end): a
  person's tracks in one camera are pieces of one visit broken by the tracker, never a second
  visit. Right where people do not come back to a camera within minutes (corridors, one-way
  paths); a second visit becomes a second identity.
* **Cannot-link** (a reviewer's corrections, :mod:`trackreid.associate.corrections`). No cluster
  holds both tracks of a cannot-link. Their must-links are kept here too (``must``); the
  clustering starts from them (:func:`trackreid.associate.cluster.cluster_graph`).
* **Motion** (when the tracks' boxes are known; ``--no-motion-gate`` turns it off). Two
  consecutive tracks of one camera in a cluster must continue each other's image motion across
  the gap between them, within a bound that grows with the gap
  (:mod:`trackreid.associate.motion`): a tracker's broken pieces of one person reappear where
  the person was heading, another person passing the same camera a moment later mostly does not.

A :class:`Cluster` keeps its members ordered by start time and, per camera, its spans (which
never overlap); :meth:`Constraints.check` tests a merge in time linear in the two clusters'
sizes. Topology files are YAML::

    links:
      - cameras: [cam1, cam2]
        transit: [2, 30]      # seconds, min and max (max may be null: no upper bound)
      - cameras: [cam2, cam3]  # no transit: any time
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.associate.motion import MOTION_RATE, MOTION_SLACK, Endpoints
from trackreid.associate.tracks import TrackSet
from trackreid.errors import InputError
from trackreid.suggest import check_keys, did_you_mean

REASONS = ("same_camera_overlap", "cannot_link", "revisit_gap", "motion", "topology_not_linked", "topology_transit",
           "max_gap")
_LINK_KEYS = ("cameras", "transit")


def load_yaml(path: str | Path, what: str) -> Any:
    """Parse a YAML file with ``yaml.safe_load``; one clear error when it is missing or malformed."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such {what} file")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{p}: not a text file; expected a YAML {what} file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(f"{p}{where}: malformed YAML ({problem}); expected a {what} file") from None


def load_topology(path: Path, where: str) -> dict[str, Any]:
    """A topology file read now, as the mapping :func:`parse_topology` takes (its ``links``, and its path
    as ``_source`` for messages); ``where`` names the option that gave the path."""
    if not path.is_file():
        raise InputError(f"{where}: {path}: no such topology file (a YAML file with links: [{{cameras: [A, B], "
                         "transit: [min, max]}]); paths are relative to the file that names them")
    data = load_yaml(path, "topology")
    if not isinstance(data, Mapping) or not isinstance(data.get("links"), list):
        raise InputError(f"{path}: expected a mapping with a 'links' list, e.g. "
                         "links: [{cameras: [cam1, cam2], transit: [2, 30]}]")
    return {"links": data["links"], "_source": str(path)}


def parse_topology(spec: str | Path | Mapping[str, Any],
                   cameras: list[str]) -> dict[tuple[int, int], tuple[float, float]]:
    """``{(cam_i, cam_j) with i < j: (min_s, max_s)}`` from a topology file or dict.

    Only the ``links`` key is read (a cameras file may hold ``cameras`` too).
    """
    source = "topology"
    if isinstance(spec, (str, Path)):
        source = str(spec)
        data = load_yaml(spec, "topology")
    else:
        data = spec
        source = str(spec.get("_source", source))
    if not isinstance(data, Mapping) or "links" not in data:
        raise InputError(f"{source}: expected a mapping with a 'links' list, e.g. "
                         "links: [{cameras: [cam1, cam2], transit: [2, 30]}]")
    links = data["links"]
    if not isinstance(links, list):
        raise InputError(f"{source}: 'links' must be a list of {{cameras: [A, B], transit: [min, max]}}")
    index = {c: i for i, c in enumerate(cameras)}
    out: dict[tuple[int, int], tuple[float, float]] = {}
    for n, link in enumerate(links, 1):
        where = f"{source}: links[{n}]"
        if not isinstance(link, Mapping):
            raise InputError(f"{where}: expected {{cameras: [A, B], transit: [min, max]}}, found {link!r}")
        check_keys(where, link, _LINK_KEYS)
        cams = link.get("cameras")
        if not isinstance(cams, list) or len(cams) != 2:
            raise InputError(f"{where}: 'cameras' must list exactly two camera names, found {cams!r}")
        ids = []
        for c in cams:
            if str(c) not in index:
                raise InputError(f"{where}: camera {str(c)!r} is not one of the cameras being associated "
                                 f"({', '.join(cameras)}){did_you_mean(str(c), cameras)}")
            ids.append(index[str(c)])
        if ids[0] == ids[1]:
            raise InputError(f"{where}: links a camera to itself; returns to one camera need no link")
        lo, hi = _transit(link.get("transit"), where)
        key = (min(ids), max(ids))
        if key in out:
            raise InputError(f"{where}: the pair {cams[0]}-{cams[1]} is listed twice")
        out[key] = (lo, hi)
    return out


def _transit(value: Any, where: str) -> tuple[float, float]:
    if value is None:
        return -math.inf, math.inf
    if not isinstance(value, list) or len(value) != 2:
        raise InputError(f"{where}: 'transit' must be [min, max] seconds, found {value!r}")
    lo = -math.inf if value[0] is None else value[0]
    hi = math.inf if value[1] is None else value[1]
    if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in (lo, hi)):
        raise InputError(f"{where}: 'transit' must be two numbers of seconds, found {value!r}")
    if lo > hi:
        raise InputError(f"{where}: transit min {lo} is larger than max {hi}")
    return float(lo), float(hi)


@dataclass
class Cluster:
    """Members ordered by (start, index); per camera, member spans ordered by start (disjoint)."""

    members: list[int]
    by_camera: dict[int, list[int]] = field(default_factory=dict)


class Constraints:
    """The constraints of one :class:`TrackSet`; :meth:`check` tests merging two clusters."""

    def __init__(self, tracks: TrackSet, topology: str | Path | Mapping[str, Any] | None = None,
                 max_gap: float | None = None, revisit_gap: float | None = None,
                 motion: Endpoints | None = None, cannot: Sequence[tuple[int, int]] = (),
                 must: Sequence[tuple[int, int, int]] = ()) -> None:
        for flag, v in (("--max-gap", max_gap), ("--revisit-gap", revisit_gap)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0):
                raise InputError(f"{flag} {v!r}: expected a non-negative number of seconds")
        self.tracks = tracks
        self.start = tracks.start.tolist()
        self.end = tracks.end.tolist()
        self.camera = tracks.camera.tolist()
        self.links = parse_topology(topology, tracks.cameras) if topology is not None else None
        self.max_gap = float(max_gap) if max_gap is not None else None
        self.revisit_gap = float(revisit_gap) if revisit_gap is not None else None
        self.motion = motion if motion is not None and motion.known.any() else None
        self.must = list(must)  # (row, row, decision index): one person, from the reviewer's corrections
        self.cannot: dict[int, set[int]] = {}  # row -> rows it may never share a cluster with
        for a, b in cannot:
            self.cannot.setdefault(a, set()).add(b)
            self.cannot.setdefault(b, set()).add(a)

    def add_track(self, start: float, end: float, camera: int) -> int:
        """One more track, its row (live association, :mod:`trackreid.associate.live`): :meth:`check` and
        :meth:`violation` see it; :attr:`tracks` (read by :meth:`overlapping` and :meth:`describe`) does not."""
        self.start.append(float(start))
        self.end.append(float(end))
        self.camera.append(int(camera))
        return len(self.start) - 1

    def with_topology(self, topology: str | Path | Mapping[str, Any] | None) -> Constraints:
        """The same constraints with another topology (the motion endpoints are shared, not re-read)."""
        return Constraints(self.tracks, topology, self.max_gap, self.revisit_gap, self.motion,
                           [(a, b) for a, bs in self.cannot.items() for b in bs if a < b], self.must)

    def without_corrections(self) -> Constraints:
        """The same constraints without a reviewer's must- and cannot-links (to say what they changed)."""
        out = copy.copy(self)
        out.cannot, out.must = {}, []
        return out

    def describe(self) -> dict[str, Any]:
        cams = self.tracks.cameras
        links = None if self.links is None else [
            {"cameras": [cams[a], cams[b]], "transit": [None if math.isinf(lo) else lo, None if math.isinf(hi) else hi]}
            for (a, b), (lo, hi) in sorted(self.links.items())]
        motion = None if self.motion is None else {
            "slack_heights": MOTION_SLACK, "heights_per_second": MOTION_RATE,
            "tracks_with_boxes": int(self.motion.known.sum()), "tracks": len(self.motion.known)}
        return {"same_camera_overlap": True, "topology": links, "max_gap": self.max_gap,
                "revisit_gap": self.revisit_gap, "motion": motion,
                "cannot_link": sum(len(v) for v in self.cannot.values()) // 2, "must_link": len(self.must)}

    # ----------------------------------------------------------------- pairs of tracks

    def overlapping(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Vectorised: tracks ``i`` and ``j`` are of one camera and share a moment (never one person)."""
        return self.tracks.same_moment(i, j)

    # ----------------------------------------------------------------- clusters

    def singleton(self, i: int) -> Cluster:
        return Cluster([i], {self.camera[i]: [i]})

    def check(self, a: Cluster, b: Cluster) -> str | None:
        """None if ``a`` and ``b`` may be one person; else the first reason (one of :data:`REASONS`)."""
        small, large = (a, b) if len(a.by_camera) <= len(b.by_camera) else (b, a)
        for cam, xs in small.by_camera.items():
            ys = large.by_camera.get(cam)
            if ys is not None and self._spans_overlap(xs, ys):
                return "same_camera_overlap"
        if self.cannot and self._cannot_link(a, b):
            return "cannot_link"
        if self.revisit_gap is not None or self.motion is not None:
            for cam, xs in small.by_camera.items():
                ys = large.by_camera.get(cam)
                if ys is not None:
                    reason = self._consecutive(xs, ys)
                    if reason is not None:
                        return reason
        if self.links is None and self.max_gap is None:
            return None
        return self._path(self._merge_sorted(a.members, b.members), set(a.members))

    def violation(self, members: list[int] | np.ndarray) -> str | None:
        """None if the whole cluster ``members`` may be one person; else the first reason broken.

        Checked on the finished cluster in time order (as :meth:`check` checks a merge), so the order
        in which the members are given does not matter: A-B-C linked A-B and B-C is valid even when
        A and C alone are not.
        """
        start, end = self.start, self.end
        ordered = sorted((int(m) for m in members), key=lambda m: (start[m], m))
        by_camera: dict[int, list[int]] = {}
        for m in ordered:
            by_camera.setdefault(self.camera[m], []).append(m)
        for spans in by_camera.values():
            reach = -math.inf
            for m in spans:
                if start[m] <= reach:
                    return "same_camera_overlap"
                reach = max(reach, end[m])
        if self.revisit_gap is not None or self.motion is not None:
            for spans in by_camera.values():
                reason = self._consecutive(spans, [])
                if reason is not None:
                    return reason
        return self._path(ordered)

    def _path(self, merged: list[int], side: set[int] | None = None) -> str | None:
        """Max gap and topology along a cluster's members in time order: the first reason broken, or None.

        ``side``: the members of one of the two clusters being merged; then only the topology steps
        the merge adds (between the two sides) are checked: a step inside one cluster was allowed
        when it formed, or by a reviewer's must-link."""
        if self.max_gap is not None:
            reach = self.end[merged[0]]
            for m in merged[1:]:
                if self.start[m] - reach > self.max_gap:
                    return "max_gap"
                reach = max(reach, self.end[m])
        if self.links is not None:
            for p, q in zip(merged[:-1], merged[1:], strict=True):
                cp, cq = self.camera[p], self.camera[q]
                if cp == cq or (side is not None and (p in side) == (q in side)):
                    continue
                window = self.links.get((cp, cq) if cp < cq else (cq, cp))
                if window is None:
                    return "topology_not_linked"
                transit = self.start[q] - self.end[p]
                if not window[0] <= transit <= window[1]:
                    return "topology_transit"
        return None

    def must_check(self, a: Cluster, b: Cluster) -> str | None:
        """What refuses a reviewer's must-link between ``a`` and ``b``: only what can never be one person
        (a moment shared in one camera, a cannot-link); the other constraints yield to the reviewer."""
        reason = self.check(a, b)  # these two are checked first
        return reason if reason in ("same_camera_overlap", "cannot_link") else None

    def _cannot_link(self, a: Cluster, b: Cluster) -> bool:
        small, large = (a, b) if len(a.members) <= len(b.members) else (b, a)
        marked = [m for m in small.members if m in self.cannot]
        if not marked:
            return False
        others = set(large.members)
        return any(not self.cannot[m].isdisjoint(others) for m in marked)

    def merge(self, a: Cluster, b: Cluster) -> Cluster:
        """The union of two clusters (call after :meth:`check` allowed it)."""
        big, small = (a, b) if len(a.members) >= len(b.members) else (b, a)
        by_camera = big.by_camera
        for cam, xs in small.by_camera.items():
            ys = by_camera.get(cam)
            by_camera[cam] = xs if ys is None else self._merge_sorted(ys, xs)
        return Cluster(self._merge_sorted(a.members, b.members), by_camera)

    def _merge_sorted(self, xs: list[int], ys: list[int]) -> list[int]:
        if not xs:
            return list(ys)
        if not ys:
            return list(xs)
        start = self.start
        if (start[xs[-1]], xs[-1]) <= (start[ys[0]], ys[0]):
            return xs + ys
        if (start[ys[-1]], ys[-1]) <= (start[xs[0]], xs[0]):
            return ys + xs
        return sorted(xs + ys, key=lambda m: (start[m], m))

    def _consecutive(self, xs: list[int], ys: list[int]) -> str | None:
        """Two start-ordered lists of disjoint spans of one camera, merged: does a step between consecutive
        spans break the revisit gap or the motion gate? The first reason, or None. With ``ys`` given, only
        the steps between the two lists count (a step inside one cluster was allowed when it formed, or by
        a reviewer's must-link); with ``ys`` empty, every step of ``xs`` (a whole cluster)."""
        limit, motion = self.revisit_gap, self.motion
        start, end = self.start, self.end
        spans = self._merge_sorted(xs, ys)
        side = set(xs) if ys else None
        for p, q in zip(spans[:-1], spans[1:], strict=True):
            if side is not None and (p in side) == (q in side):
                continue
            gap = start[q] - end[p]
            if limit is not None and gap > limit:
                return "revisit_gap"
            if motion is not None and not motion.allows(p, q, gap):
                return "motion"
        return None

    def _spans_overlap(self, xs: list[int], ys: list[int]) -> bool:
        """Two start-ordered lists of disjoint spans: does any span of one meet a span of the other?"""
        start, end = self.start, self.end
        if end[xs[-1]] < start[ys[0]] or end[ys[-1]] < start[xs[0]]:
            return False
        i = j = 0
        while i < len(xs) and j < len(ys):
            x, y = xs[i], ys[j]
            if start[x] <= end[y] and start[y] <= end[x]:
                return True
            if end[x] < end[y]:
                i += 1
            else:
                j += 1
        return False
