"""The neighbour search in time windows and time shards: linear in the tracks at a fixed density.

With a ``window`` of ``W`` seconds (``associate --window``) a track is compared only with the
tracks whose spans come within ``W`` seconds of its own: ``j`` is a candidate of ``i`` unless
``start_j > end_i + W`` or ``end_j < start_i - W`` (overlapping spans always are): its ``k``
neighbours in the similarity graph are the ``k`` most similar of those. A person's tracks are
minutes apart; on a site where they all lie within ``W`` of each other the graph loses nothing,
and at a fixed number of tracks per camera-hour each track has a fixed number of candidates, so
the search grows linearly with the day (the exact search over all tracks grows with its square: docs/scale.md).

**Shards.** The tracks are ordered by start; a shard's *core* is the tracks that start in one
stretch of ``shard_seconds``, its *candidates* every track that could be within ``W`` of a
core track (core +- the window: shards overlap by the window on each side). A core track's
candidates are all in its shard, and the search masks every pair farther apart than ``W``, so
each track's neighbours are exactly those of the unsharded windowed search, whatever the seams
(tests/test_associate_shards.py). The shards' neighbour lists are joined into one graph and
everything after the search (threshold, constrained clustering) sees the whole site: a person
whose tracks straddle a seam is judged on all of them, with the same exact constraints as
anywhere else. Each shard is one task: :func:`shard_neighbours` in this process, or one Ray task
each (:func:`windowed_knn` with ``engine="ray"``).

Inside a shard the rows go in blocks (``BLOCK_BYTES`` of similarities), and each block compares
only with the candidates of its own time range: the one large temporary is ``block x
candidates``, never ``N x N``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from trackreid.associate.blocks import BLOCK_BYTES, rescore
from trackreid.errors import InputError
from trackreid.progress import NullProgress, Progress

#: Default shard length, in windows: a shard of 8 windows searches about (8 + 2) / 8 of its own tracks' candidates.
SHARD_WINDOWS = 8


@dataclass(frozen=True)
class Shard:
    """One stretch of the site's time: the rows it finds neighbours for, and every row they may be compared with."""

    core: np.ndarray  # (C,) int64 rows, ordered by start
    candidates: np.ndarray  # (M,) int64 rows, ordered by start; a superset of ``core``
    span: tuple[float, float]  # [t0, t1) of the core's starts


def check_window(window: Any, flag: str = "--window") -> float | None:
    """``window`` as seconds (> 0), or None (off); one clear error otherwise."""
    if window is None:
        return None
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not math.isfinite(window) or window <= 0:
        raise InputError(f"{flag} {window!r}: expected a positive number of seconds such as 900 (a person's tracks "
                         "all lie within it), or none")
    return float(window)


def plan_shards(start: np.ndarray, end: np.ndarray, window: float,
                shard_seconds: float | None = None) -> list[Shard]:
    """The shards of tracks with spans ``[start, end]``: cores of ``shard_seconds`` (default
    ``SHARD_WINDOWS`` windows; ``inf``: one shard, the unsharded search) and their candidates."""
    n = len(start)
    if n == 0:
        return []
    length = float(shard_seconds) if shard_seconds is not None else SHARD_WINDOWS * window
    if not length > 0:
        raise InputError(f"shard length {shard_seconds!r}: expected a positive number of seconds")
    order = np.lexsort((np.arange(n), start))
    starts = start[order]
    longest = float(np.max(end - start, initial=0.0))
    t_first, t_last = float(starts[0]), float(starts[-1])
    count = 1 if not math.isfinite(length) else int((t_last - t_first) // length) + 1
    out = []
    for s in range(count):
        t0 = t_first + s * length if count > 1 else t_first
        t1 = t_first + (s + 1) * length if s < count - 1 else math.inf
        lo, hi = np.searchsorted(starts, [t0, t1], side="left")
        if lo == hi:
            continue
        core = order[lo:hi]
        reach = float(end[core].max()) + window
        c_lo = int(np.searchsorted(starts, t0 - window - longest, side="left"))
        c_hi = int(np.searchsorted(starts, reach, side="right"))
        cand = order[c_lo:c_hi]
        cand = cand[end[cand] >= t0 - window]
        out.append(Shard(core.astype(np.int64), cand.astype(np.int64), (t0, t1)))
    return out


def shard_neighbours(features: np.ndarray, start: np.ndarray, end: np.ndarray, shard: Shard, window: float,
                     k: int, block_bytes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rows (C, k), similarities (C, k)) of each core track's ``k`` most similar candidates within the window,
    most similar first; ``-1`` and ``-inf`` where a track has fewer than ``k``.

    ``features``, ``start``, ``end``: the whole site's (or any arrays indexed by the shard's rows).
    """
    import torch


    block_bytes = block_bytes or BLOCK_BYTES
    core, cand = shard.core, shard.candidates
    idx = np.full((len(core), k), -1, np.int64)
    sims = np.full((len(core), k), -np.inf, np.float32)
    if k < 1 or len(cand) == 0:
        return idx, sims
    c_start, c_end = start[cand], end[cand]
    longest = float(np.max(c_end - c_start, initial=0.0))
    # each core row's column among the candidates (both ordered by start, then row)
    pos = np.searchsorted(c_start, start[core], side="left")
    for r in np.flatnonzero(cand[np.minimum(pos, len(cand) - 1)] != core):  # ties of start: step to the row
        while cand[pos[r]] != core[r]:
            pos[r] += 1
    x = torch.from_numpy(np.ascontiguousarray(features[cand], dtype=np.float32))
    ts, te = torch.from_numpy(c_start), torch.from_numpy(c_end)
    s = 0
    with torch.inference_mode():
        while s < len(core):
            # as many rows as fit in block_bytes with the candidates of their own time range (ordered by start)
            r0 = core[s]
            width = np.searchsorted(c_start, [start[r0] - window - longest, end[r0] + window], side="left")
            block = max(1, block_bytes // (8 * max(1, int(width[1] - width[0]))))
            rows = core[s:s + block]
            r_start, r_end = start[rows], end[rows]
            lo = int(np.searchsorted(c_start, r_start.min() - window - longest, side="left"))
            hi = int(np.searchsorted(c_start, r_end.max() + window, side="right"))
            sim = torch.from_numpy(np.ascontiguousarray(features[rows], dtype=np.float32)) @ x[lo:hi].T
            # far apart (start_j > end_i + W or end_j < start_i - W), tested only on the columns where it can
            # happen: those starting after some row's end + W, and those starting before some row's start - W
            late, early = torch.from_numpy(r_end + window)[:, None], torch.from_numpy(r_start - window)[:, None]
            t0 = lo + int(np.searchsorted(c_start[lo:hi], float(late.min()), side="right"))
            sim[:, t0 - lo:].masked_fill_(ts[t0:hi][None, :] > late, -torch.inf)
            t1 = lo + int(np.searchsorted(c_start[lo:hi], float(early.max()), side="left"))
            sim[:, :t1 - lo].masked_fill_(te[lo:t1][None, :] < early, -torch.inf)
            sim[torch.arange(len(rows)), torch.from_numpy(pos[s:s + len(rows)] - lo)] = -torch.inf  # itself
            kq = min(k, hi - lo)
            v, ix = torch.topk(sim, kq, dim=1, largest=True, sorted=True)
            got = torch.isfinite(v).numpy()
            found = cand[lo + ix.numpy()]
            idx[s:s + len(rows), :kq] = np.where(got, found, -1)
            sims[s:s + len(rows), :kq] = np.where(got, v.numpy(), -np.inf)
            s += len(rows)
    return idx, sims


def windowed_knn(features: np.ndarray, start: np.ndarray, end: np.ndarray, window: float, k: int,
                 search: np.ndarray | None = None, shard_seconds: float | None = None, engine: str = "local",
                 progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(rows (N, k'), similarities (N, k')) of every track's nearest tracks within ``window`` seconds, shard by
    shard (module docstring); ``k' = min(k, N - 1)``; ``-1``/``-inf`` pad a track with fewer candidates.

    ``search``: the features the candidates are found in (a projection, see :func:`.graph.knn`); then each
    track's ``2k'`` best there are re-scored with ``features``. ``engine="ray"``: one Ray task per shard
    (``ray.init`` must have been called, or is called with its defaults).
    """

    progress = progress or NullProgress()
    n = len(features)
    kk = min(int(k), n - 1)
    if kk <= 0:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
    space = features if search is None else search
    kq = kk if search is None else min(n - 1, 2 * kk)
    shards = plan_shards(start, end, window, shard_seconds)
    progress.start("associate: nearest neighbours (time shards)", n, "tracks")
    cand = np.full((n, kq), -1, np.int64)
    for shard, (ix, _) in zip(shards, _run_shards(space, start, end, shards, window, kq, engine), strict=True):
        cand[shard.core] = ix
        progress.advance(len(shard.core))
    progress.finish()
    # re-scored row by row in full dimension even without a projection: a similarity then does not depend on
    # the shape of the block product that found it, so sharded and unsharded graphs are equal to the bit
    return rescore(np.ascontiguousarray(features, dtype=np.float32), cand, kk)


def _run_shards(space: np.ndarray, start: np.ndarray, end: np.ndarray, shards: list[Shard], window: float,
                k: int, engine: str) -> Any:
    if engine == "local":
        return (shard_neighbours(space, start, end, s, window, k) for s in shards)
    if engine != "ray":
        raise InputError(f"engine {engine!r}: expected 'local' or 'ray'")
    import ray

    if not ray.is_initialized():
        ray.init()
    task = ray.remote(_ray_shard)
    refs = [task.remote(space[s.candidates], start[s.candidates], end[s.candidates], s, window, k) for s in shards]
    return (ray.get(r) for r in refs)


def _ray_shard(space: np.ndarray, start: np.ndarray, end: np.ndarray, shard: Shard, window: float,
               k: int) -> tuple[np.ndarray, np.ndarray]:
    """One shard on a Ray worker: it gets its candidates' rows only (the shard's rows renumbered locally)."""
    local = {int(r): i for i, r in enumerate(shard.candidates.tolist())}
    core = np.array([local[int(r)] for r in shard.core.tolist()], np.int64)
    sub = Shard(core, np.arange(len(shard.candidates), dtype=np.int64), shard.span)
    ix, v = shard_neighbours(space, start, end, sub, window, k)
    return np.where(ix >= 0, shard.candidates[np.maximum(ix, 0)], -1), v
