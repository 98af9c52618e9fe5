"""Constrained agglomerative clustering over the sparse similarity graph.

Greedy merging from a priority queue (the most similar pair of clusters first) with a
union-find of tracks, as in hierarchical clustering, but only along the graph's edges: the
similarity of two clusters is computed from the edges between them (``average``: the mean over
all pairs of their tracks, ``single``: the largest edge, ``complete``: the smallest edge).

Average linkage and the pairs that are not edges: a pair of tracks outside both tracks' ``k``
nearest neighbours counts at the graph's null median (:attr:`Graph.null`: the typical
similarity of two different people, about 0 after de-biasing), as in the dense average over
all pairs. The first version averaged over the edges alone; then one stray edge between two
large clusters of different people was their whole "average", and the clustering chained:
1,000 synthetic tracks of 100 cameras at threshold 0.276 gave 57 clusters (ARI 0.50) where
sklearn's dense average linkage gives the 100 identities, and at 100,000 tracks any cut below
about 0.45 joined thousands of people (docs/associate.md, "Scale"). With every pair in the
graph (``k >= N - 1``) this is exactly dense average linkage. A cluster pair's score changes
whenever either cluster grows, so every neighbour of a grown cluster is queued again.

A reviewer's must-links (``Constraints.must``) are merged before anything else, whatever their
similarity, unless their two clusters share a moment in one camera or hold a cannot-link (then
the must-link is refused and reported); everything else then goes on from those clusters.

Merging stops when no pair of clusters left is at least ``threshold`` similar. Every merge is
checked against all members of both clusters (:meth:`Constraints.check`); a pair that shares a
moment in one camera is blocked for good (clusters only grow, so it stays impossible), and so
is a pair refused by the revisit gap or the motion gate (a third cluster could fill the gap
later, but the pair stays apart: the conservative choice); a pair refused by the topology or
the maximum gap is dropped until one of the two clusters changes.

Memory is a few hundred bytes per edge (Python dicts of the clusters' neighbours), time
``O(E log E)`` plus the constraint checks: never the dense ``N x N`` matrix. Only the edges
inside the connected components of the edges that may merge enter those dicts
(:func:`within_reach`): no merge crosses two components, so the others never count.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trackreid.associate.config import LINKAGES
from trackreid.associate.constraints import REASONS, Constraints
from trackreid.associate.graph import Graph, build_graph
from trackreid.associate.tracks import TrackSet
from trackreid.errors import InputError
from trackreid.progress import NullProgress, Progress

log = logging.getLogger(__name__)

_BLOCKED = -(1 << 40)  # an edge count this negative marks a pair that can never merge


@dataclass
class ClusterResult:
    labels: np.ndarray  # (N,) int64, 0..G-1 in order of each cluster's first track
    merges: list[tuple[int, int, float]]  # (track of cluster a, track of cluster b, cluster similarity)
    rejections: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)  # must-link decision index -> the reason it was refused


def cluster(tracks: TrackSet, threshold: float, constraints: Constraints | None = None, k: int = 20,
            linkage: str = "average", graph: Graph | None = None, progress: Progress | None = None) -> np.ndarray:
    """(N,) int64 labels 0..G-1: one per person; the constraints hold on every whole cluster.

    ``graph`` defaults to :func:`build_graph` (``k`` neighbours, default options).
    """
    return cluster_graph(tracks, graph if graph is not None else build_graph(tracks, k, progress=progress),
                         threshold, constraints, linkage, progress).labels


def _combine(x: complex, y: complex, linkage: str) -> complex:
    if linkage == "average":
        return x + y
    pick = max if linkage == "single" else min
    return complex(pick(x.real, y.real), x.imag + y.imag)


def cluster_graph(tracks: TrackSet, graph: Graph, threshold: float, constraints: Constraints | None = None,
                  linkage: str = "average", progress: Progress | None = None) -> ClusterResult:
    """Cluster along ``graph``'s edges; see the module docstring."""
    if linkage not in LINKAGES:
        raise InputError(f"linkage {linkage!r}: expected one of {', '.join(LINKAGES)}")
    if not np.isfinite(threshold):
        raise InputError(f"threshold {threshold!r}: expected a finite similarity")
    progress = progress or NullProgress()
    n = len(tracks)
    cons = constraints if constraints is not None else Constraints(tracks)
    rejections = dict.fromkeys(REASONS, 0)
    blocked_edges = cons.overlapping(graph.i, graph.j)
    # neighbours of each cluster (keyed by its root track): root -> complex(sum|max|min, edge count)
    nbr: list[dict[int, complex]] = [{} for _ in range(n)]
    heap: list[tuple[float, int, int, int, int]] = []
    thr = float(threshold)
    # average linkage: pairs that are not edges count at the null's median (module docstring)
    fill = float(graph.null[0]) if linkage == "average" and graph.null is not None else None
    keep_edges = np.flatnonzero(within_reach(n, graph.i, graph.j, graph.sim, blocked_edges, thr, cons.must)
                                if fill is None or fill < thr else np.ones(len(graph.i), bool))
    for a, b, s, bad in zip(graph.i[keep_edges].tolist(), graph.j[keep_edges].tolist(),
                            graph.sim[keep_edges].tolist(), blocked_edges[keep_edges].tolist(), strict=True):
        if s != s:  # NaN
            continue
        v = complex(s, _BLOCKED) if bad else complex(s, 1)
        nbr[a][b] = v
        nbr[b][a] = v
        if not bad and s >= thr:
            heap.append((-s, a, b, 0, 0))
    heapq.heapify(heap)
    clusters = [cons.singleton(i) for i in range(n)]
    size = [1] * n

    def score(w: complex, x: int, y: int) -> float:
        if fill is None:
            return w.real / w.imag if average else w.real
        pairs = size[x] * size[y]
        return (w.real + (pairs - w.imag) * fill) / pairs

    parent = list(range(n))
    alive = [True] * n
    # Topology and max-gap refusals can be lifted by a later merge (a third camera in between):
    # then every neighbour of a grown cluster is queued again, not only those whose score changed.
    requeue_all = cons.links is not None or cons.max_gap is not None
    average = linkage == "average"
    if fill is not None:
        requeue_all = True  # a grown cluster changes its score with every neighbour
    merges: list[tuple[int, int, float]] = []

    def join(a: int, b: int, sim: float) -> None:
        """Merge cluster ``b`` into ``a`` (or the other way: the smaller neighbourhood into the larger)."""
        keep, gone = (a, b) if len(nbr[a]) >= len(nbr[b]) else (b, a)
        merges.append((keep, gone, sim))
        clusters[keep] = cons.merge(clusters[keep], clusters[gone])
        clusters[gone] = None  # type: ignore[call-overload]
        size[keep] += size[gone]
        parent[gone] = keep
        alive[gone] = False
        nk, ng = nbr[keep], nbr[gone]
        nk.pop(gone, None)
        ng.pop(keep, None)
        changed = []
        for c, v in ng.items():
            nc = nbr[c]
            del nc[gone]
            w = nk.get(c)
            w = v if w is None else _combine(w, v, linkage)
            nk[c] = w
            nc[keep] = w
            changed.append(c)
        nbr[gone] = {}
        for c in (nk if requeue_all else changed):
            w = nk[c]
            if w.imag > 0:
                sc = score(w, keep, c)
                if sc >= thr:
                    heapq.heappush(heap, (-sc, keep, c, 0, 0))

    def root(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    # a reviewer's must-links first (trackreid.associate.corrections): their tracks start as one cluster
    refused: dict[int, str] = {}
    for a, b, decision in cons.must:
        ra, rb = root(a), root(b)
        if ra == rb:
            continue
        reason = cons.must_check(clusters[ra], clusters[rb])
        if reason is not None:
            refused.setdefault(decision, reason)
            continue
        w = nbr[ra].get(rb)
        join(ra, rb, score(w, ra, rb) if w is not None and w.imag > 0 else float("nan"))
    progress.start("associate: clustering", None, "merges")
    while heap:
        neg, a, b, _, _ = heapq.heappop(heap)
        if not (alive[a] and alive[b]):
            continue
        w = nbr[a].get(b)
        if w is None or w.imag <= 0 or -neg != score(w, a, b):
            continue  # stale: the score changed since this entry was queued
        reason = cons.check(clusters[a], clusters[b])
        if reason is not None:
            rejections[reason] += 1
            if reason in ("same_camera_overlap", "cannot_link", "revisit_gap", "motion"):  # block the pair for good
                v = complex(w.real, _BLOCKED)
                nbr[a][b] = nbr[b][a] = v
            continue
        join(a, b, -neg)
        progress.advance(1)
    progress.finish()
    labels = _labels(parent)
    return ClusterResult(labels, merges, rejections, {"linkage": linkage, "threshold": thr, "merges": len(merges)},
                         refused)


def within_reach(n: int, i: np.ndarray, j: np.ndarray, sim: np.ndarray, blocked: np.ndarray, threshold: float,
                 must: list[tuple[int, int, int]]) -> np.ndarray:
    """(E,) bool: the edges whose two tracks are joined by a path of edges that may merge (similarity at least
    ``threshold``, not blocked) or must-links: the only edges the clustering needs.

    Two clusters merge only along a pair of tracks of similarity >= ``threshold`` (single linkage: the
    largest edge; complete: the smallest; average: a mean of edges and of the null median, which is below
    the threshold whenever this is called), so no merge ever crosses two such components: each is
    clustered as if alone, and an edge between two of them never counts. Keeping only the edges inside
    components is what makes a site of a million tracks fit in memory (most of a track's ``k``
    neighbours are other people, below the threshold, in other components), and what lets time shards
    be joined exactly: a person whose tracks straddle a seam is one component whichever shard found
    its edges (:mod:`trackreid.associate.shards`).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    link = (sim >= threshold) & ~blocked  # NaN: never
    a = np.concatenate([i[link], np.array([m[0] for m in must], np.int64)])
    b = np.concatenate([j[link], np.array([m[1] for m in must], np.int64)])
    _, comp = connected_components(coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n)), directed=False)
    return comp[i] == comp[j]


def _labels(parent: list[int]) -> np.ndarray:
    n = len(parent)
    root = np.empty(n, np.int64)
    for i in range(n):
        r = i
        while parent[r] != r:
            r = parent[r]
        x = i
        while parent[x] != r:  # path compression
            parent[x], x = r, parent[x]
        root[i] = r
    # relabel 0..G-1 in order of each cluster's first (lowest-index) track
    _, first, inverse = np.unique(root, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.int64)
