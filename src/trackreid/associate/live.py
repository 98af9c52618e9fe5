"""Live association: a global identity for each track as soon as it ends, revised as evidence grows.

:class:`LiveAssociator` takes each finished track of a site (:meth:`~LiveAssociator.add`: camera,
feature, time span, and the motion at both ends of its boxes when known) and answers at once:

* **Now** (``assigned``): the track joins the existing identity it is most similar to (average
  cosine over the identity's tracks, features de-biased by their camera's mean as offline), if that
  similarity reaches the current threshold and the constraints allow it
  (:meth:`Constraints.check <trackreid.associate.constraints.Constraints.check>` on the whole
  identity, exactly as a merge is checked offline); otherwise it starts a new identity.
* **Later** (``merged``, ``split``): a revision re-associates every track seen so far with the
  offline code (:func:`~trackreid.associate.graph.build_graph`,
  :func:`~trackreid.associate.threshold.auto_threshold`,
  :func:`~trackreid.associate.cluster.cluster_graph`, the same :class:`Constraints`), and the
  difference from the current answer becomes events: an identity whose tracks the revision puts
  apart is ``split`` (the largest part keeps its number), identities it puts together are
  ``merged`` (into the number of the one with the most tracks: the fewest tracks change number).
  Each event is applied alone and every identity it leaves
  is checked whole (:meth:`Constraints.violation`); a change whose intermediate state would
  break a constraint is not applied (counted in :attr:`LiveAssociator.stats`), so the
  constraints hold exactly after every event. Tracks that ended while a revision ran stay with
  the part that keeps their identity's number when the constraints allow it, else become their
  own identity (a ``split``).

Revisions run in a separate process (``revise="background"``: ``add`` never waits for one; a
finished revision is applied at the next ``add`` or :meth:`~LiveAssociator.poll`), or in-line
every ``revise_every`` tracks (``revise="every"``: deterministic, for tests and benchmarks), or
never (``"off"``). :meth:`~LiveAssociator.finish` runs a last revision over every track, so the
final answer is the offline answer on the same features (up to changes refused as above).

State: with ``state=PATH`` every track, identity and event is kept in a SQLite file, each
``add`` and each revision one transaction (WAL journal); an associator opened on an existing
file continues where the last one stopped (a revision in flight when it was killed is simply
run again).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.associate.cluster import cluster_graph
from trackreid.associate.config import AssociateConfig
from trackreid.associate.constraints import Cluster, Constraints
from trackreid.associate.graph import build_graph, camera_means
from trackreid.associate.motion import Endpoints
from trackreid.associate.threshold import auto_threshold
from trackreid.associate.tracks import TrackSet
from trackreid.errors import InputError
from trackreid.suggest import did_you_mean

log = logging.getLogger(__name__)

__all__ = ["EVENTS", "LiveAssociator", "LiveTrack", "revision_labels"]

EVENTS = ("assigned", "merged", "split")
REVISE = ("background", "every", "off")
#: Fewer tracks than this: no revision (the automatic cut needs a few cross-camera pairs); each track
#: stays its own identity unless a fixed threshold is given.
MIN_REVISION_TRACKS = 20
#: Identities tried per new track, most similar first, before it starts its own.
CANDIDATES = 20
_MOTION_FIELDS = 10  # start_xy(2) start_v(2) start_h end_xy(2) end_v(2) end_h
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tracks (row INTEGER PRIMARY KEY, camera INTEGER NOT NULL, track_id INTEGER NOT NULL,
    start REAL NOT NULL, end REAL NOT NULL, feature BLOB NOT NULL, motion BLOB, identity INTEGER NOT NULL,
    first_identity INTEGER NOT NULL, UNIQUE (camera, track_id));
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, event TEXT NOT NULL);
"""


@dataclass
class LiveTrack:
    """One finished track: its per-camera id, span in seconds on the site clock (first and last frame,
    inclusive), track feature and, when its boxes are known, its motion at both ends (10 numbers:
    foot point, velocity and box height at its start, then at its end; see :mod:`trackreid.associate.motion`)."""

    track_id: int
    start: float
    end: float
    feature: np.ndarray
    motion: np.ndarray | None = None

    @classmethod
    def from_boxes(cls, track_id: int, frames: np.ndarray, xywh: np.ndarray, feature: np.ndarray,
                   fps: float, time_offset: float = 0.0) -> LiveTrack:
        """From the track's boxes (1-based frame numbers, MOT ``left, top, width, height``) at ``fps``: its span
        in seconds (``(frame - 1) / fps + time_offset``, as offline) and its end motion."""
        from trackreid.io.extract_meta import frame_seconds
        from trackreid.io.mot import Tracks

        frames = np.asarray(frames, np.int64).reshape(-1)
        if not len(frames):
            raise InputError(f"track {track_id}: no boxes")
        n = len(frames)
        boxes = Tracks(frames, np.full(n, int(track_id), np.int64), np.asarray(xywh, np.float64).reshape(n, 4),
                       np.ones(n, np.float32), np.ones(n, np.float32))
        ep = Endpoints.empty(1)
        ep.fill(np.array([0]), np.array([int(track_id)]), boxes, float(fps))
        span = frame_seconds(np.array([frames.min(), frames.max()], np.float64), float(fps), float(time_offset))
        return cls(int(track_id), float(span[0]), float(span[1]), np.asarray(feature, np.float32),
                   _motion_row(ep, 0))


_CONTROLLER: list[Any] = []


def _one_blas_thread() -> Any:
    """A context with BLAS on one thread: a (N, D) x (D,) product between idle gaps is about 4x faster so on a
    busy machine (threads sleep between calls and take milliseconds to wake)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def _motion_row(ep: Endpoints, r: int) -> np.ndarray:
    return np.concatenate([ep.start_xy[r], ep.start_v[r], [ep.start_h[r]], ep.end_xy[r], ep.end_v[r],
                           [ep.end_h[r]]]).astype(np.float64)


def _endpoints(motion: np.ndarray, known: np.ndarray) -> Endpoints:
    """Endpoints over rows of ``motion`` (R, 10); views, so rows written later are seen."""
    return Endpoints(motion[:, 0:2], motion[:, 2:4], motion[:, 4], motion[:, 5:7], motion[:, 7:9], motion[:, 9],
                     known)


def revision_labels(tracks: TrackSet, endpoints: Endpoints | None, config: AssociateConfig) -> tuple[
        np.ndarray, float]:
    """(labels, threshold): the offline association of ``tracks`` (the same graph, threshold, constraints and
    clustering code as :func:`trackreid.associate.associate`, without corrections or a learned topology)."""
    cons = Constraints(tracks, config.topology, config.max_gap, config.revisit_gap,
                       endpoints if config.motion_gate else None)
    graph = build_graph(tracks, config.k, debias=config.debias, centralize=config.centralize,
                        set_similarity=False, rerank=config.rerank, scale_k=config.hub_k, hub_per_camera=True,
                        same_camera_margin=config.same_camera_margin)
    if config.threshold == "auto":
        threshold = float(auto_threshold(tracks, cons, graph, method=config.threshold_method)[0])
    else:
        threshold = float(config.threshold)
    return cluster_graph(tracks, graph, threshold, cons, config.linkage).labels, threshold


def _bipartite_components(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The connected component of each edge ``(left[k], right[k])`` of a bipartite graph."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not len(left):
        return np.zeros(0, np.int64)
    lv, li = np.unique(left, return_inverse=True)
    rv, ri = np.unique(right, return_inverse=True)
    size = len(lv) + len(rv)
    adj = coo_matrix((np.ones(len(li)), (li, len(lv) + ri)), shape=(size, size))
    return connected_components(adj, directed=False)[1][li]


def _revision_process() -> None:
    """The revision process yields to the associator's (``add`` must answer at once): lower priority, one thread."""
    from trackreid.run.worker import setup_worker

    with contextlib.suppress(OSError):  # not permitted: the priority stays
        os.nice(10)
    setup_worker(1)


def _revise_job(snapshot: dict[str, Any]) -> tuple[int, np.ndarray, float, float]:
    """What the revision process runs: (rows covered, labels, threshold, seconds)."""
    t = time.perf_counter()
    ts = TrackSet(snapshot["cameras"], snapshot["camera"], snapshot["track_id"], snapshot["start"], snapshot["end"],
                  snapshot["features"])
    ep = _endpoints(snapshot["motion"], snapshot["known"]) if snapshot["known"].any() else None
    labels, thr = revision_labels(ts, ep, AssociateConfig(**snapshot["config"]))
    return len(ts), labels, thr, time.perf_counter() - t


class LiveAssociator:
    """Global identities for tracks as they end; see the module docstring.

    ``cameras``: the site's camera names (fixed for the associator's life; a state file remembers them).
    ``config``: the offline options (:class:`AssociateConfig`), except a learned topology
    (``topology="auto"``), set-to-set similarity and corrections, which need the whole day.
    ``on_event``: called with each event (a dict, see :data:`EVENTS`) once it is stored.
    """

    def __init__(self, cameras: Sequence[str], config: AssociateConfig | None = None, *,
                 state: str | Path | None = None, revise: str = "background", revise_every: int = 1,
                 on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        config = config or AssociateConfig()
        if config.learns_topology:
            raise InputError("topology: auto learns transit windows from a whole association; live association "
                             "needs a topology file (or none)")
        if config.set_similarity:
            raise InputError("set_similarity needs every crop's feature; live association uses track features")
        if config.corrections is not None:
            raise InputError("corrections apply to a finished association (trackreid associate --corrections)")
        if revise not in REVISE:
            raise InputError(f"revise {revise!r}: expected one of {', '.join(REVISE)}")
        if revise_every < 1:
            raise InputError(f"revise_every {revise_every!r}: expected at least 1 track")
        cameras = [str(c) for c in cameras]
        if not cameras or len(set(cameras)) != len(cameras):
            raise InputError(f"cameras {cameras!r}: expected distinct camera names")
        self.cameras = cameras
        self.index = {c: i for i, c in enumerate(cameras)}
        self.config = config
        self.revise_mode, self.revise_every = revise, int(revise_every)
        self.on_event = on_event
        self.dim = 0
        self.n = 0
        self._alloc(0, 0)
        self.identity = np.zeros(0, np.int64)
        self.first_identity = np.zeros(0, np.int64)
        self.keys: dict[tuple[int, int], int] = {}
        empty = TrackSet(cameras, np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0), np.zeros(0),
                         np.zeros((0, 1), np.float32))
        self.cons = Constraints(empty, config.topology, config.max_gap, config.revisit_gap)
        self.clusters: dict[int, Cluster] = {}
        self.next_identity = 1
        self.threshold: float | None = None if config.threshold == "auto" else float(config.threshold)
        self.revised_rows = 0  # tracks covered by the last revision applied
        self.seq = 0
        self.stats = {"revisions": 0, "revision_seconds": 0.0, "changes_refused": 0, "late_tracks_split": 0,
                      "revisions_failed": 0}
        self._pool: ProcessPoolExecutor | None = None
        self._future: Future[tuple[int, np.ndarray, float, float]] | None = None
        self._db: sqlite3.Connection | None = None
        if state is not None:
            self._open(Path(state))
            if revise == "every" and self.n - self.revised_rows >= self.revise_every:
                self.revise()  # killed between a track and its revision: catch up, as an unbroken run would

    # ------------------------------------------------------------------ storage of the arrays
    def _alloc(self, cap: int, dim: int) -> None:
        def grow(old: np.ndarray | None, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
            new = np.zeros(shape, dtype)
            if old is not None and len(old):
                new[: len(old)] = old[: shape[0]]
            return new

        g = getattr
        self.cap = cap
        self.feat = grow(g(self, "feat", None) if dim == self.dim else None, (cap, dim), np.float32)
        self.debiased = grow(g(self, "debiased", None) if dim == self.dim else None, (cap, dim), np.float32)
        self.camera = grow(g(self, "camera", None), (cap,), np.int32)
        self.track_id = grow(g(self, "track_id", None), (cap,), np.int64)
        self.start = grow(g(self, "start", None), (cap,), np.float64)
        self.end = grow(g(self, "end", None), (cap,), np.float64)
        self.motion = grow(g(self, "motion", None), (cap, _MOTION_FIELDS), np.float64)
        self.known = grow(g(self, "known", None), (cap,), bool)
        self.dim = dim
        if hasattr(self, "cons") and self.config.motion_gate:
            self.cons.motion = _endpoints(self.motion, self.known)

    def _open(self, path: Path) -> None:
        fresh = not path.exists()
        try:
            db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise InputError(f"{path}: not a live state file ({e}); give a new --state path") from None
        self._db = db
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        want = {"cameras": json.dumps(self.cameras), "config": json.dumps(self.config.to_dict(), sort_keys=True,
                                                                          default=str)}
        if fresh or not meta:
            with self._tx() as cur:
                assert cur is not None
                cur.executemany("INSERT INTO meta VALUES (?, ?)", [*want.items(), ("next_identity", "1"),
                                                                   ("threshold", "null"), ("revised_rows", "0")])
            return
        for key in ("cameras", "config"):
            if meta.get(key) != want[key]:
                raise InputError(f"{path}: this state was made for other {key} ({meta.get(key)}); continue with the "
                                 "same site and options, or give a new state file")
        rows = db.execute("SELECT row, camera, track_id, start, end, feature, motion, identity, first_identity "
                          "FROM tracks ORDER BY row").fetchall()
        for r in rows:
            feature = np.frombuffer(r[5], np.float32)
            motion = np.frombuffer(r[6], np.float64) if r[6] is not None else None
            self._append(int(r[1]), LiveTrack(int(r[2]), float(r[3]), float(r[4]), feature, motion))
        self.identity = np.array([r[7] for r in rows], np.int64)
        self.first_identity = np.array([r[8] for r in rows], np.int64)
        self._refresh_debiased()
        self._rebuild_clusters(set(self.identity.tolist()))
        self.next_identity = int(meta["next_identity"])
        self.threshold = json.loads(meta["threshold"]) if self.config.threshold == "auto" else self.threshold
        self.revised_rows = int(meta["revised_rows"])
        self.seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0])
        log.info("live: %s: continuing with %d tracks, %d identities", path, self.n, len(self.clusters))

    class _Tx:
        def __init__(self, db: sqlite3.Connection | None) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Cursor | None:
            if self.db is None:
                return None
            self.db.execute("BEGIN IMMEDIATE")
            return self.db.cursor()

        def __exit__(self, exc_type: object, *exc: object) -> None:
            if self.db is not None:
                self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")

    def _tx(self) -> LiveAssociator._Tx:
        return LiveAssociator._Tx(self._db)

    # ------------------------------------------------------------------ tracks
    def _check(self, camera: str, track: LiveTrack) -> tuple[int, np.ndarray]:
        c = self.index.get(str(camera))
        if c is None:
            raise InputError(f"camera {camera!r} is not one of the site's cameras ({', '.join(self.cameras)})"
                             f"{did_you_mean(str(camera), self.cameras)}")
        f = np.asarray(track.feature, np.float32).reshape(-1)
        if not len(f) or not np.isfinite(f).all() or not np.linalg.norm(f) > 0:
            raise InputError(f"{camera}:{track.track_id}: the feature is empty, zero or not finite")
        if self.dim and len(f) != self.dim:
            raise InputError(f"{camera}:{track.track_id}: feature of {len(f)} dimensions, earlier tracks have "
                             f"{self.dim}; every camera must use the same model")
        if not (math.isfinite(track.start) and math.isfinite(track.end)) or track.end < track.start:
            raise InputError(f"{camera}:{track.track_id}: span {track.start}..{track.end} s is not a time span")
        if (c, int(track.track_id)) in self.keys:
            raise InputError(f"{camera}:{track.track_id} was added already; a track is added once, when it ends")
        if track.motion is not None and np.asarray(track.motion).shape != (_MOTION_FIELDS,):
            raise InputError(f"{camera}:{track.track_id}: motion must hold {_MOTION_FIELDS} numbers "
                             "(LiveTrack.from_boxes computes it)")
        return c, f / np.linalg.norm(f)

    def _append(self, c: int, track: LiveTrack) -> int:
        f = np.asarray(track.feature, np.float32).reshape(-1)
        if not self.dim:
            self._alloc(max(64, self.cap), len(f))
        if self.n == self.cap:
            self._alloc(2 * self.cap, self.dim)
        r = self.n
        self.feat[r] = f / np.linalg.norm(f)
        self.camera[r], self.track_id[r] = c, int(track.track_id)
        self.start[r], self.end[r] = float(track.start), float(track.end)
        if track.motion is not None:
            self.motion[r] = np.asarray(track.motion, np.float64)
            self.known[r] = True
        self.cons.add_track(self.start[r], self.end[r], c)
        self.keys[(c, int(track.track_id))] = r
        self.n += 1
        return r

    def label(self, r: int) -> str:
        return f"{self.cameras[int(self.camera[r])]}:{int(self.track_id[r])}"

    def _debias(self, rows: np.ndarray) -> np.ndarray:
        out = self.feat[rows] - self._means[self.camera[rows]]
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norm, 1e-12)

    def _refresh_debiased(self) -> None:
        """Camera means, as :func:`~trackreid.associate.graph.debiased` takes them."""
        n = self.n
        if not n:
            self._means = np.zeros((len(self.cameras), max(self.dim, 1)), np.float32)
            return
        self._means = camera_means(self.feat[:n], self.camera[:n], len(self.cameras))
        self.debiased[:n] = self._debias(np.arange(n))

    def add(self, camera: str, track: LiveTrack) -> int:
        """The ended ``track`` of ``camera``: its global identity now (an ``assigned`` event)."""
        c, _ = self._check(camera, track)
        self.poll()
        r = self._append(c, track)
        if not hasattr(self, "_means") or (r & (r - 1)) == 0 or r % 256 == 0:  # camera means move less and less
            self._refresh_debiased()
        self.debiased[r] = self._debias(np.array([r]))[0]
        g = self._place(r)
        joined = g in self.clusters
        if joined:
            self.clusters[g] = self.cons.merge(self.clusters[g], self.cons.singleton(r))
        else:
            self.clusters[g] = self.cons.singleton(r)
            self.next_identity = max(self.next_identity, g + 1)
        self.identity = np.append(self.identity, g)
        self.first_identity = np.append(self.first_identity, g)
        event = {"event": "assigned", "identity": g, "tracks": [self.label(r)], "new_identity": not joined,
                 "span": [float(self.start[r]), float(self.end[r])]}
        with self._tx() as cur:
            if cur is not None:
                m = self.motion[r].tobytes() if self.known[r] else None
                cur.execute("INSERT INTO tracks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (r, c, int(self.track_id[r]), float(self.start[r]), float(self.end[r]),
                             self.feat[r].tobytes(), m, g, g))
                cur.execute("UPDATE meta SET value = ? WHERE key = 'next_identity'", (str(self.next_identity),))
            stored = self._store_events(cur, [event])
        self._emit(stored)
        if self.revise_mode == "every" and self.n - self.revised_rows >= self.revise_every:
            self.revise()
        elif self.revise_mode == "background":
            self._submit()
        return g

    def _place(self, r: int) -> int:
        """The identity row ``r`` joins now: the most similar one (average linkage) at or above the threshold
        that the constraints allow, else a new one."""
        if r == 0 or self.threshold is None:
            return self.next_identity
        with _one_blas_thread():  # waking BLAS threads for one product costs more than the product
            sims = np.dot(self.debiased[:r], self.debiased[r])
        margin = self.config.same_camera_margin
        if margin > 0:
            sims = sims - margin * (self.camera[:r] == self.camera[r])
        ids = self.identity[:r]
        total = np.bincount(ids, sims, minlength=self.next_identity)
        count = np.bincount(ids, minlength=self.next_identity)
        score = np.divide(total, count, out=np.full(len(total), -np.inf), where=count > 0)
        order = np.argsort(-score, kind="stable")[:CANDIDATES]
        me = self.cons.singleton(r)
        for g in order.tolist():
            if score[g] < self.threshold:
                break
            if self.cons.check(self.clusters[g], me) is None:
                return int(g)
        return self.next_identity

    # ------------------------------------------------------------------ revisions
    def _snapshot(self) -> dict[str, Any]:
        n = self.n
        return {"cameras": self.cameras, "camera": self.camera[:n].copy(), "track_id": self.track_id[:n].copy(),
                "start": self.start[:n].copy(), "end": self.end[:n].copy(), "features": self.feat[:n].copy(),
                "motion": self.motion[:n].copy(), "known": self.known[:n].copy(),
                "config": {k: getattr(self.config, k) for k in self.config.__dataclass_fields__}}

    def _submit(self) -> None:
        if self._future is not None or self.n <= self.revised_rows or self.n < MIN_REVISION_TRACKS:
            return
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_revision_process)
        self._future = self._pool.submit(_revise_job, self._snapshot())

    def poll(self) -> list[dict[str, Any]]:
        """Apply a finished background revision (and start the next one); the events it made."""
        out: list[dict[str, Any]] = []
        if self._future is not None and self._future.done():
            fut, self._future = self._future, None
            try:
                n0, labels, thr, seconds = fut.result()
            except Exception as e:  # noqa: BLE001 - the answers stand; the next revision tries again
                self.stats["revisions_failed"] += 1
                log.error("live: a revision failed (%s: %s); the identities stand, the next revision tries again",
                          type(e).__name__, e)
                self._pool = None  # a broken pool (its process killed) is replaced
            else:
                out = self._apply(n0, labels, thr, seconds)
        if self.revise_mode == "background":
            self._submit()
        return out

    def revise(self, force: bool = False) -> list[dict[str, Any]]:
        """Re-associate every track now, in this process; the events it made. Below
        :data:`MIN_REVISION_TRACKS` tracks (with the automatic threshold) only when ``force``."""
        if self.n < 2 or (self.n < MIN_REVISION_TRACKS and self.config.threshold == "auto" and not force):
            return []
        n0, labels, thr, seconds = _revise_job(self._snapshot())
        return self._apply(n0, labels, thr, seconds)

    def finish(self) -> list[dict[str, Any]]:
        """Wait for a background revision, then one last revision over every track; the events."""
        out = []
        if self._future is not None:
            self._future.result()
            out += self.poll()
        if self.n > self.revised_rows:
            out += self.revise(force=True)
        return out

    def _apply(self, n0: int, labels: np.ndarray, thr: float, seconds: float) -> list[dict[str, Any]]:
        """Turn the revision (``labels`` of rows ``0..n0-1``) into split and merge events, each checked whole."""
        self.stats["revisions"] += 1
        self.stats["revision_seconds"] += seconds
        self.threshold = thr
        self.revised_rows = n0
        self._refresh_debiased()
        old = self.identity[:n0]
        late_of: dict[int, list[int]] = {}
        for r in range(n0, self.n):
            late_of.setdefault(int(self.identity[r]), []).append(r)
        # components of the bipartite graph old identity <-> new label (vectorised: N may be 10,000s)
        width = int(labels.max(initial=0)) + 1
        key = old * width + labels
        order = np.argsort(key, kind="stable")
        uniq, first = np.unique(key[order], return_index=True)
        bounds = np.r_[first, len(order)]
        pair_g, pair_l = (uniq // width).tolist(), (uniq % width).tolist()
        inv = np.unique(uniq // width, return_inverse=True)[1]
        n_old = np.bincount(inv)[inv]  # labels each pair's identity meets
        n_new = np.bincount(uniq % width)[uniq % width]  # identities each pair's label meets
        moving = np.flatnonzero((n_old > 1) | (n_new > 1))  # pairs of changed identities
        comp_of = _bipartite_components(uniq[moving] // width, uniq[moving] % width).tolist()
        comps: dict[int, list[tuple[int, int]]] = {}
        rows_of: dict[tuple[int, int], list[int]] = {}
        for k, comp in zip(moving.tolist(), comp_of, strict=True):
            comps.setdefault(comp, []).append((pair_g[k], pair_l[k]))
            rows_of[(pair_g[k], pair_l[k])] = sorted(order[bounds[k]:bounds[k + 1]].tolist())
        events: list[dict[str, Any]] = []
        changes: dict[int, int] = {}  # row -> new identity
        for comp in sorted(comps.values()):
            olds = sorted({g for g, _ in comp})
            plan = self._plan(olds, comp, rows_of, late_of)
            if plan is None:
                self.stats["changes_refused"] += 1
                continue
            events += self._commit_plan(plan, changes)
        with self._tx() as cur:
            if cur is not None:
                cur.executemany("UPDATE tracks SET identity = ? WHERE row = ?", [(g, r) for r, g in changes.items()])
                cur.executemany("UPDATE meta SET value = ? WHERE key = ?",
                                [(str(self.next_identity), "next_identity"), (json.dumps(thr), "threshold"),
                                 (str(n0), "revised_rows")])
            stored = self._store_events(cur, events)
        self._emit(stored)
        return stored

    def _plan(self, olds: list[int], comp: list[tuple[int, int]], rows_of: dict[tuple[int, int], list[int]],
              late_of: dict[int, list[int]]) -> list[tuple[str, Any]] | None:
        """The split and merge steps that take identities ``olds`` to the revision's clusters, each state valid;
        None when some step would break a constraint."""
        steps: list[tuple[str, Any]] = []
        piece_label: dict[int, list[tuple[int, list[int]]]] = {}  # label -> [(identity, rows)]
        next_id = self.next_identity
        for g in olds:
            parts = sorted(((lab, rows_of[(gg, lab)]) for gg, lab in comp if gg == g),
                           key=lambda p: (-len(p[1]), p[1][0]))
            late = late_of.get(g, [])
            keep_rows = parts[0][1] + late
            if late and self.cons.violation(keep_rows) is not None:
                # late tracks that no longer fit: each its own identity
                keep_rows = parts[0][1]
                lone = [r for r in late]
            else:
                lone = []
            if len(parts) == 1 and not lone:
                piece_label.setdefault(parts[0][0], []).append((g, keep_rows))
                continue
            into: dict[int, list[int]] = {}
            if self.cons.violation(keep_rows) is not None:
                return None
            piece_label.setdefault(parts[0][0], []).append((g, keep_rows))
            for lab, rows in parts[1:]:
                if self.cons.violation(rows) is not None:
                    return None
                into[next_id] = rows
                piece_label.setdefault(lab, []).append((next_id, rows))
                next_id += 1
            for r in lone:
                into[next_id] = [r]
                next_id += 1
                self.stats["late_tracks_split"] += 1
            steps.append(("split", (g, keep_rows, into)))
        for lab in sorted(piece_label):
            pieces = piece_label[lab]
            if len(pieces) < 2:
                continue
            pieces.sort(key=lambda p: (-len(p[1]), p[0]))  # the largest keeps its number: fewest tracks renamed
            union = sorted(r for _, rows in pieces for r in rows)
            if self.cons.violation(union) is not None:  # with late tracks, the union may not hold: keep them apart
                self.stats["changes_refused"] += 1
                continue
            steps.append(("merge", (pieces[0][0], [p[0] for p in pieces[1:]], union,
                                    [r for _, rows in pieces[1:] for r in rows])))
        self.next_identity = next_id
        return steps

    def _commit_plan(self, steps: list[tuple[str, Any]], changes: dict[int, int]) -> list[dict[str, Any]]:
        events = []
        for kind, step in steps:
            if kind == "split":
                g, keep_rows, into = step
                self.clusters[g] = self._cluster(keep_rows)
                for h, rows in into.items():
                    self.clusters[h] = self._cluster(rows)
                    for r in rows:
                        self.identity[r] = h
                        changes[r] = h
                events.append({"event": "split", "identity": g,
                               "into": {str(h): [self.label(r) for r in rows] for h, rows in into.items()},
                               "tracks": [self.label(r) for rows in into.values() for r in rows]})
            else:
                g, absorbed, union, moved = step
                for h in absorbed:
                    self.clusters.pop(h, None)
                self.clusters[g] = self._cluster(union)
                for r in moved:
                    self.identity[r] = g
                    changes[r] = g
                events.append({"event": "merged", "identity": g, "absorbed": absorbed,
                               "tracks": [self.label(r) for r in moved]})
        return events

    def _cluster(self, rows: list[int]) -> Cluster:
        start = self.cons.start
        members = sorted((int(r) for r in rows), key=lambda m: (start[m], m))
        by_camera: dict[int, list[int]] = {}
        for m in members:
            by_camera.setdefault(int(self.camera[m]), []).append(m)
        return Cluster(members, by_camera)

    def _rebuild_clusters(self, ids: set[int]) -> None:
        rows: dict[int, list[int]] = {}
        for r, g in enumerate(self.identity.tolist()):
            if g in ids:
                rows.setdefault(g, []).append(r)
        for g in ids:
            self.clusters[g] = self._cluster(rows[g])

    # ------------------------------------------------------------------ events
    def _store_events(self, cur: sqlite3.Cursor | None, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        now = time.time()
        out = []
        for e in events:
            self.seq += 1
            e = {"seq": self.seq, "time": round(now, 3), **e}
            if cur is not None:
                cur.execute("INSERT INTO events VALUES (?, ?)", (self.seq, json.dumps(e)))
            out.append(e)
        return out

    def _emit(self, events: list[dict[str, Any]]) -> None:
        if self.on_event is not None:
            for e in events:
                self.on_event(e)

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        """Stored events after sequence number ``since`` (needs a state file)."""
        if self._db is None:
            raise InputError("events() reads the state file; open the associator with state=PATH")
        return [json.loads(t) for (t,) in self._db.execute("SELECT event FROM events WHERE seq > ? ORDER BY seq",
                                                            (since,))]

    # ------------------------------------------------------------------ answers
    def has(self, camera: str, track_id: int) -> bool:
        """Was track ``track_id`` of ``camera`` added already (e.g. before a restart)?"""
        c = self.index.get(str(camera))
        return c is not None and (c, int(track_id)) in self.keys

    def global_ids(self) -> dict[str, dict[int, int]]:
        """camera -> track id -> global identity, now."""
        out: dict[str, dict[int, int]] = {c: {} for c in self.cameras}
        for r in range(self.n):
            out[self.cameras[int(self.camera[r])]][int(self.track_id[r])] = int(self.identity[r])
        return out

    def first_ids(self) -> dict[str, dict[int, int]]:
        """camera -> track id -> the identity it was first assigned."""
        out: dict[str, dict[int, int]] = {c: {} for c in self.cameras}
        for r in range(self.n):
            out[self.cameras[int(self.camera[r])]][int(self.track_id[r])] = int(self.first_identity[r])
        return out

    def tracks(self) -> tuple[TrackSet, Endpoints | None]:
        """Every track so far as a :class:`TrackSet` (rows in the order added) and its motion endpoints."""
        n = self.n
        ts = TrackSet(self.cameras, self.camera[:n].copy(), self.track_id[:n].copy(), self.start[:n].copy(),
                      self.end[:n].copy(), self.feat[:n].copy() if n else np.zeros((0, max(self.dim, 1)), np.float32))
        ep = _endpoints(self.motion[:n].copy(), self.known[:n].copy()) if self.known[:n].any() else None
        return ts, ep

    def close(self) -> None:
        """Stop the revision process and close the state file (what is stored stays)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._future = None
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> LiveAssociator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
