"""Sparse k-nearest-neighbour similarity between tracks, with the options worth measuring.

The graph holds, for every track, its ``k`` most similar other tracks (cosine of the track
features), found by blocked matrix products: the one large temporary is a ``block x N``
float32 array, never the ``N x N`` matrix (above 20,000 tracks the search runs in a 64-d PCA
projection and its candidates are re-scored in full dimension, see :func:`knn`). Edges are the
union of those neighbour lists, one per unordered pair.

Options (measured in docs/associate.md):

* ``debias``: subtract each camera's mean feature from its tracks and re-normalise (removes
  what a camera adds to everyone it sees: light, angle, background).
* ``centralize="nfc"``: Pose2ID's neighbour feature centralization over all tracks
  (:func:`trackreid.centralize.nfc`), after de-biasing.
* ``set_similarity``: the similarity of two tracks is the mean, over the crops of each track,
  of the best match among the other's crops (symmetrised), instead of the cosine of the
  track means.
* ``rerank``: k-reciprocal re-ranking (Zhong et al. 2017) on the track graph, sparse: the
  k-reciprocal encodings come from :mod:`trackreid.rerank`; the Jaccard distance is computed
  only for the pairs that are asked for. ``similarity = 1 - distance``.

:meth:`Graph.similarity` gives the same final similarity for any pairs (the auto threshold
uses it for pairs outside the graph).

**Hubness correction** (``scale_k``, off by default in ``associate``, on in ``adapt``): every
similarity ``s(i, j)`` becomes ``s(i, j) - (r_i + r_j) / 2``, where ``r_i`` is the mean of
track ``i``'s ``scale_k`` best other-camera similarities among the graph's edges
(cross-domain similarity local scaling, CSLS). A "hub" (a common pose, dark clothes) is close
to everyone in the other cameras and would otherwise win every nearest-neighbour contest.
Edges, :meth:`Graph.similarity` and the null all carry it. ``hub_per_camera=True`` (what
``associate --hub-k`` uses) is CSLS proper, per target camera: ``s(i, j) - (r_i(cam j) +
r_j(cam i)) / 2``, with ``r_i(c)`` the mean of track ``i``'s ``scale_k`` best feature cosines
with the tracks of camera ``c`` (other than itself), found by one more blocked pass over all
tracks (``N x N`` products, like the exact search; memory ``N x cameras``). Pooled over the
edges, a track seen by two other cameras has both its true matches in ``r_i`` and a track's
few other-camera edges stand for a whole camera; per camera neither happens
(docs/associate.md measures both).

**Same-camera margin** (``same_camera_margin``; ``associate --same-camera-margin``): every
similarity of two tracks of ONE camera (edges and :meth:`Graph.similarity`) is lowered by this
much, after any other option. Joining two tracks of one camera (pieces of one visit the tracker
broke, allowed by the revisit gap) then needs more evidence than a cross-camera link: two people
in one camera share background and light and look alike. The null is cross-camera and does not
move, so neither does the ``chance`` cut.

**The null** (``Graph.null_sims``, ``Graph.null``): the final similarity of cross-camera pairs
of tracks drawn at random (every such pair on a small site, else a uniform sample of
``NULL_PAIRS``), and its robust Gaussian fit (median, 1.4826 x MAD). A random cross-camera
pair is almost always two people (on the real-pixel synth sites 3-4 % of them are one person;
at 100k tracks of 100 cameras 0.01 %), and the robust fit ignores that minority. It is what
two different people look like with these features and options: the auto threshold cuts in
its upper tail (:mod:`trackreid.associate.threshold`) and average linkage counts pairs that
are not edges at its median (:mod:`trackreid.associate.cluster`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trackreid.associate.blocks import BLOCK_BYTES, rescore
from trackreid.associate.tracks import TrackSet
from trackreid.embed.preprocess import l2_normalize
from trackreid.errors import InputError
from trackreid.progress import NullProgress, Progress

log = logging.getLogger(__name__)

#: At most this many crops per track enter the set-to-set similarity (evenly spaced).
MAX_SET_CROPS = 10
RERANK_K1, RERANK_K2, RERANK_LAMBDA = 20, 6, 0.3
#: Up to this many tracks the neighbour search is exact; above, candidates come from a PCA projection.
EXACT_LIMIT = 20_000
#: Dimensions of that projection.
SEARCH_DIMS = 64
#: Random cross-camera pairs that estimate the null (all of them when a site has fewer).
NULL_PAIRS = 20_000


@dataclass(frozen=True)
class Window:
    """Compare only tracks within ``seconds`` of each other (:mod:`trackreid.associate.shards`)."""

    seconds: float
    start: np.ndarray  # (N,) the tracks' spans, seconds
    end: np.ndarray
    shard_seconds: float | None = None  # core length of a shard (default: trackreid.associate.shards); inf: one
    engine: str = "local"  # "local" (this process) or "ray" (one task per shard)


@dataclass
class Graph:
    """Undirected edges ``(i, j)`` with ``i < j`` and their final similarity."""

    i: np.ndarray  # (E,) int64
    j: np.ndarray  # (E,) int64
    sim: np.ndarray  # (E,) float32
    features: np.ndarray  # (N, D) the track features after de-biasing / NFC
    knn: np.ndarray  # (N, k) int64, each track's nearest other tracks (by the feature cosine)
    info: dict[str, Any] = field(default_factory=dict)
    null_sims: np.ndarray | None = None  # (M,) float32 similarities of random cross-camera pairs (module docstring)
    null: tuple[float, float] | None = None  # their robust (median, sd); None: no cross-camera pairs
    _crops: tuple[np.ndarray, np.ndarray] | None = None  # (N, C, D) padded crops, (N, C) mask
    _rerank: Any = None  # (V csr, rowmax) for re-ranking
    _hub: np.ndarray | None = None  # (N,) r_i, or (N, cameras) r_i(c), of the hubness correction (module docstring)
    _camera: np.ndarray | None = None  # (N,) camera of each track, for the per-camera correction and the margin
    _same_camera_margin: float = 0.0  # subtracted from every same-camera similarity (module docstring)

    def similarity(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Final similarity of arbitrary pairs of tracks (same options as the edges)."""
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        out = np.empty(len(i), dtype=np.float32)
        step = 65536
        for s in range(0, len(i), step):
            out[s:s + step] = self._pairs(i[s:s + step], j[s:s + step])
        if self._hub is not None:
            out -= self._hub_pairs(i, j)
        if self._same_camera_margin:
            out -= self._margin_pairs(i, j)
        return out

    def _margin_pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        assert self._camera is not None
        return (np.float32(self._same_camera_margin) * (self._camera[i] == self._camera[j])).astype(np.float32)

    def _hub_pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        assert self._hub is not None
        if self._hub.ndim == 1:
            return (self._hub[i] + self._hub[j]) / 2
        assert self._camera is not None
        return (self._hub[i, self._camera[j]] + self._hub[j, self._camera[i]]) / 2

    def _pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        if self._crops is not None:
            base = _set_similarity(self._crops, i, j)
        else:
            base = np.einsum("ij,ij->i", self.features[i], self.features[j])
        if self._rerank is None:
            return base.astype(np.float32)
        v, rowsum, rowmax = self._rerank
        l1 = np.asarray(abs(v[i] - v[j]).sum(axis=1)).ravel()
        overlap = np.clip((rowsum[i] + rowsum[j] - l1) / 2.0, 0.0, None)
        jaccard = 1.0 - overlap / (2.0 - overlap)
        dist = (1.0 - RERANK_LAMBDA) * jaccard + RERANK_LAMBDA * (1.0 - base) / rowmax[i]
        return (1.0 - dist).astype(np.float32)


def robust_gaussian(values: np.ndarray) -> tuple[float, float]:
    """(median, 1.4826 x median absolute deviation): a Gaussian's mean and sd, unmoved by a minority tail."""
    med = float(np.median(values))
    return med, max(1e-6, 1.4826 * float(np.median(np.abs(values - med))))


def cross_camera_pairs(tracks: TrackSet, limit: int = NULL_PAIRS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)``, ``i < j``, of tracks of different cameras: all of them, or a uniform sample of ``limit``."""
    n = len(tracks)
    cam = tracks.camera
    rng = np.random.default_rng(seed)
    if n * (n - 1) // 2 <= 4 * limit:
        i, j = np.triu_indices(n, 1)
        keep = np.flatnonzero(cam[i] != cam[j])
        if len(keep) > limit:
            keep = np.sort(rng.choice(keep, limit, replace=False))
        return i[keep].astype(np.int64), j[keep].astype(np.int64)
    got_i: list[np.ndarray] = []
    got_j: list[np.ndarray] = []
    have = 0
    for _ in range(20):  # rejection sampling; a site where nearly all pairs share a camera needs several rounds
        a = rng.integers(0, n, 2 * limit)
        b = rng.integers(0, n, 2 * limit)
        keep = cam[a] != cam[b]
        got_i.append(np.minimum(a, b)[keep])
        got_j.append(np.maximum(a, b)[keep])
        have += int(keep.sum())
        if have >= limit:
            break
    return np.concatenate(got_i)[:limit].astype(np.int64), np.concatenate(got_j)[:limit].astype(np.int64)


def camera_means(features: np.ndarray, camera: np.ndarray, n_cameras: int) -> np.ndarray:
    """(cameras, D) each camera's mean feature; zero for a camera with one track (it would become zero)."""
    means = np.zeros((n_cameras, features.shape[1]), np.float32)
    counts = np.bincount(camera, minlength=n_cameras)
    for c in np.flatnonzero(counts > 1).tolist():
        means[c] = features[camera == c].mean(axis=0)
    return means


def debiased(tracks: TrackSet) -> tuple[np.ndarray, np.ndarray]:
    """(track features, camera means) with each camera's mean feature subtracted, re-normalised."""
    means = camera_means(tracks.features, tracks.camera, len(tracks.cameras))
    out = np.empty((len(tracks), tracks.feature_dim), np.float32)
    for s in range(0, len(tracks), 65536):  # in blocks: one more (N, D) array, not three
        out[s:s + 65536] = l2_normalize(tracks.features[s:s + 65536] - means[tracks.camera[s:s + 65536]])
    return out, means


def knn(features: np.ndarray, k: int, progress: Progress | None = None, exact_limit: int = EXACT_LIMIT,
        with_rowmin: bool = True, window: Window | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices (N, k'), similarities (N, k'), row minimum similarity (N,)) of each row's nearest other rows.

    ``k' = min(k, N - 1)``; neighbours ordered by similarity. Up to ``exact_limit`` rows the
    search is exact (blocked products, memory ``BLOCK_BYTES``). Above, the ``2k`` candidates of
    each row come from the same exact search in a ``SEARCH_DIMS``-dimensional PCA projection
    (8x fewer operations at 512 dimensions; real OSNet features keep 80-82 % of their variance
    and nearly all their retrieval accuracy in 64 dimensions, docs/benchmarks.md), then are
    re-scored with the full features; the row minimum is then the projection's.

    ``window``: each row's neighbours only among the tracks within the window's seconds, searched shard
    by shard (:mod:`trackreid.associate.shards`; linear in N at a fixed density); a row with fewer
    candidates than ``k'`` is padded with ``-1`` (similarity ``-inf``); no row minimum (ones).
    """
    progress = progress or NullProgress()
    n = len(features)
    kk = min(int(k), n - 1)
    idx = np.zeros((n, max(kk, 0)), np.int64)
    sims = np.zeros((n, max(kk, 0)), np.float32)
    rowmin = np.ones(n, np.float32)
    if kk <= 0:
        return idx, sims, rowmin
    project = n > exact_limit and features.shape[1] > SEARCH_DIMS
    if window is not None:
        from trackreid.associate.shards import windowed_knn

        search = _projection(features, SEARCH_DIMS) if project else None
        idx, sims = windowed_knn(features, window.start, window.end, window.seconds, kk, search=search,
                                 shard_seconds=window.shard_seconds, engine=window.engine, progress=progress)
        return idx, sims, rowmin
    if project:
        # Candidates (2k) from an exact search in a PCA projection, re-scored in full dimension.
        proj = _projection(features, SEARCH_DIMS)
        cand, _, rowmin = _exact_knn(proj, min(n - 1, 2 * kk), progress, with_rowmin)
        idx, sims = rescore(np.ascontiguousarray(features, dtype=np.float32), cand, kk)
        return idx, sims, rowmin
    return _exact_knn(features, kk, progress, with_rowmin)


def _similarity_blocks(features: np.ndarray) -> Iterator[tuple[int, int, Any]]:
    """Row blocks ``(start, end, cosines)`` of the N x N cosine matrix (``BLOCK_BYTES`` each), self at -inf.

    Call inside ``torch.inference_mode()``.
    """
    import torch

    n = len(features)
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    block = max(1, min(n, BLOCK_BYTES // (4 * n)))
    for s in range(0, n, block):
        e = min(n, s + block)
        sim = x[s:e] @ x.T
        rows = torch.arange(e - s)
        sim[rows, rows + s] = -torch.inf
        yield s, e, sim


def _exact_knn(features: np.ndarray, kk: int, progress: Progress,
               with_rowmin: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import torch

    n = len(features)
    idx = np.zeros((n, kk), np.int64)
    sims = np.zeros((n, kk), np.float32)
    rowmin = np.ones(n, np.float32)
    progress.start("associate: nearest neighbours", n, "tracks")
    with torch.inference_mode():
        for s, e, sim in _similarity_blocks(features):
            v, ix = torch.topk(sim, kk, dim=1, largest=True, sorted=True)
            if with_rowmin:  # only re-ranking needs it
                rows = torch.arange(e - s)
                sim[rows, rows + s] = torch.inf
                rowmin[s:e] = sim.min(dim=1).values.numpy()
            idx[s:e] = ix.numpy()
            sims[s:e] = v.numpy()
            progress.advance(e - s)
    progress.finish()
    return idx, sims, rowmin


def _projection(features: np.ndarray, dims: int, sample: int = 50_000, seed: int = 0) -> np.ndarray:
    """Rows centred, projected on their ``dims`` principal axes (fitted on a sample), L2-normalised."""
    rng = np.random.default_rng(seed)
    rows = features if len(features) <= sample else features[rng.choice(len(features), sample, replace=False)]
    mean = rows.mean(axis=0, dtype=np.float64).astype(np.float32)
    centred = rows - mean
    cov = (centred.T @ centred).astype(np.float64) / max(1, len(rows) - 1)
    _, vecs = np.linalg.eigh(cov)
    axes = vecs[:, ::-1][:, :dims].astype(np.float32)
    out = np.empty((len(features), dims), np.float32)
    for s in range(0, len(features), 65536):
        out[s:s + 65536] = (features[s:s + 65536] - mean) @ axes
    return l2_normalize(out)


def _padded_crops(tracks: TrackSet, means: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    if tracks.crop_features is None or tracks.crop_offsets is None:
        raise InputError("set-to-set similarity needs the crop features (all_features) of every track")
    counts = np.diff(tracks.crop_offsets)
    c = int(min(MAX_SET_CROPS, max(1, counts.max(initial=1))))
    n, d = len(tracks), tracks.feature_dim
    crops = np.zeros((n, c, d), np.float32)
    mask = np.zeros((n, c), bool)
    for t in range(n):
        m = int(counts[t])
        if m == 0:
            crops[t, 0] = tracks.features[t]
            mask[t, 0] = True
            continue
        take = np.linspace(0, m - 1, min(m, c)).round().astype(np.int64)
        rows = tracks.crop_features[tracks.crop_offsets[t] + take]
        if means is not None:
            rows = rows - means[tracks.camera[t]]
        crops[t, :len(take)] = l2_normalize(rows)
        mask[t, :len(take)] = True
    return crops, mask


def _set_similarity(crops: tuple[np.ndarray, np.ndarray], i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Mean over each track's crops of the best cosine among the other's crops, averaged both ways."""
    x, mask = crops
    s = np.einsum("ecd,efd->ecf", x[i], x[j])
    mi, mj = mask[i], mask[j]
    s = np.where(mi[:, :, None] & mj[:, None, :], s, -np.inf)
    best_i = np.where(mi, s.max(axis=2), 0.0).sum(axis=1) / mi.sum(axis=1)
    best_j = np.where(mj, s.max(axis=1), 0.0).sum(axis=1) / mj.sum(axis=1)
    return ((best_i + best_j) / 2.0).astype(np.float32)


def _rerank_state(features: np.ndarray, knn_idx: np.ndarray, rowmin: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
    """The k-reciprocal encodings ``V`` (sparse, with query expansion), their row sums and row max distances."""
    from trackreid.rerank import knn_indicator, reciprocal_encoding

    n = len(features)
    ranks = np.concatenate([np.arange(n)[:, None], knn_idx], axis=1)  # self first, as the reference
    rowmax = np.maximum(1.0 - rowmin, 1e-6).astype(np.float32)
    k1 = min(RERANK_K1, ranks.shape[1] - 1)
    v = reciprocal_encoding(features, rowmax, ranks, k1)
    k2 = min(RERANK_K2, ranks.shape[1])
    if k2 > 1:
        v = (knn_indicator(ranks[:, :k2], n, 1.0 / k2) @ v).tocsr()
    rowsum = np.asarray(v.sum(axis=1)).ravel()
    return v, rowsum, rowmax


def hub_scores(camera: np.ndarray, i: np.ndarray, j: np.ndarray, sim: np.ndarray, k: int) -> np.ndarray:
    """(N,) mean of each track's ``k`` best other-camera similarities among the edges ``(i, j, sim)`` (0: none)."""
    n = len(camera)
    other = camera[i] != camera[j]
    node = np.concatenate([i[other], j[other]])
    s = np.concatenate([sim[other], sim[other]]).astype(np.float64)
    order = np.lexsort((-s, node))  # by node, then the most similar first
    node, s = node[order], s[order]
    rank = np.arange(len(node)) - np.searchsorted(node, np.arange(n))[node]
    keep = rank < k
    total = np.bincount(node[keep], s[keep], minlength=n)
    count = np.bincount(node[keep], minlength=n)
    return np.divide(total, count, out=np.zeros(n), where=count > 0).astype(np.float32)


def camera_hub_scores(features: np.ndarray, camera: np.ndarray, n_cameras: int, k: int) -> np.ndarray:
    """(N, cameras) mean of each track's ``k`` best cosines with the tracks of each camera (itself left out; 0: none).

    Blocked products over all tracks (memory ``BLOCK_BYTES``), as in the exact neighbour search.
    """
    import torch

    n = len(features)
    out = np.zeros((n, n_cameras), np.float32)
    if n < 2 or k < 1:
        return out
    cols = [torch.from_numpy(np.flatnonzero(camera == c)) for c in range(n_cameras)]
    with torch.inference_mode():
        for s, e, sim in _similarity_blocks(features):
            for c, idx in enumerate(cols):
                kk = min(k, len(idx))
                if kk == 0:
                    continue
                top = torch.topk(sim[:, idx], kk, dim=1).values
                top = torch.where(torch.isinf(top), torch.nan, top)  # itself, when its camera has <= k tracks
                out[s:e, c] = torch.nan_to_num(top.nanmean(dim=1), nan=0.0).numpy()
    return out


def build_graph(tracks: TrackSet, k: int = 20, debias: bool = True, centralize: str | None = None,
                set_similarity: bool = False, rerank: bool = False, scale_k: int = 0,
                hub_per_camera: bool = False, same_camera_margin: float = 0.0,
                progress: Progress | None = None, window: float | None = None,
                shard_seconds: float | None = None, engine: str = "local") -> Graph:
    """The sparse similarity graph of ``tracks`` with the chosen options.

    ``window``: seconds; a track's neighbours only among the tracks within that time of it, searched in time
    shards of ``shard_seconds`` on ``engine`` (:mod:`trackreid.associate.shards`). The options that compare
    every track with every other (re-ranking, NFC, the per-camera hubness correction) refuse it.
    """
    if k < 1:
        raise InputError(f"k {k!r}: expected at least 1 neighbour per track")
    if not np.isfinite(same_camera_margin) or same_camera_margin < 0:
        raise InputError(f"same-camera margin {same_camera_margin!r}: expected a similarity >= 0 such as 0.1 (0: off)")
    if centralize not in (None, "nfc"):
        raise InputError(f"centralize {centralize!r}: expected None or 'nfc'")
    from trackreid.associate.shards import check_window

    window = check_window(window)
    if window is not None:
        whole = [name for name, on in (("re-ranking", rerank), ("NFC", centralize is not None),
                                        ("the per-camera hubness correction", scale_k > 0 and hub_per_camera)) if on]
        if whole:
            raise InputError(f"--window {window:g}: {' and '.join(whole)} compare every track with every other "
                             "track; drop them, or drop --window")
    n = len(tracks)
    means = None
    feats = tracks.features
    if debias:
        feats, means = debiased(tracks)
    if centralize == "nfc" and n > 2:
        from trackreid.centralize import nfc

        feats = nfc(feats)
    k_search = max(k, RERANK_K1) if rerank else k
    times = None if window is None else Window(window, tracks.start, tracks.end, shard_seconds, engine)
    idx, sims, rowmin = knn(feats, k_search, progress, with_rowmin=rerank, window=times)
    graph = Graph(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), feats, idx,
                  {"k": int(k), "debias": bool(debias), "centralize": centralize,
                   "set_similarity": bool(set_similarity), "rerank": bool(rerank), "scale_k": int(scale_k),
                   "hub_per_camera": bool(hub_per_camera and scale_k > 0),
                   "same_camera_margin": float(same_camera_margin)})
    if window is not None:
        graph.info["window"] = window
    if set_similarity:
        graph._crops = _padded_crops(tracks, means)
    if rerank and n > 1:
        graph._rerank = _rerank_state(feats, idx, rowmin)
    if n < 2:
        return graph
    kk = idx.shape[1] if k_search == k else min(k, idx.shape[1])
    a = np.repeat(np.arange(n, dtype=np.int64), kk)
    b = idx[:, :kk].ravel()
    flat = sims[:, :kk].ravel()
    if window is not None:  # fewer candidates than k in a window: padded with -1
        found = b >= 0
        a, b, flat = a[found], b[found], flat[found]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key, first = np.unique(lo * n + hi, return_index=True)
    graph.i, graph.j = key // n, key % n
    if set_similarity or rerank:
        graph.sim = graph.similarity(graph.i, graph.j)  # in blocks: never E x D at once
    else:  # the search computed the cosines already
        graph.sim = flat[first].astype(np.float32)
    if scale_k > 0 and hub_per_camera:
        graph._hub = camera_hub_scores(feats, tracks.camera, len(tracks.cameras), scale_k)
        graph._camera = tracks.camera
    elif scale_k > 0:
        graph._hub = hub_scores(tracks.camera, graph.i, graph.j, graph.sim, scale_k)
    if graph._hub is not None:
        graph.sim = (graph.sim - graph._hub_pairs(graph.i, graph.j)).astype(np.float32)
    if same_camera_margin > 0:
        graph._camera = tracks.camera
        graph._same_camera_margin = float(same_camera_margin)
        graph.sim = (graph.sim - graph._margin_pairs(graph.i, graph.j)).astype(np.float32)
    graph.info["edges"] = len(graph.i)
    ni, nj = cross_camera_pairs(tracks)
    if len(ni):
        graph.null_sims = graph.similarity(ni, nj)
        graph.null = robust_gaussian(graph.null_sims)
        graph.info["null"] = {"pairs": len(ni), "median": round(graph.null[0], 5), "sd": round(graph.null[1], 5)}
    return graph
