"""Blocked similarity primitives shared by the all-pairs search (:mod:`.graph`) and the time shards (:mod:`.shards`)."""

from __future__ import annotations

import numpy as np

#: Bytes of the similarity block computed at once (rows x N float32).
BLOCK_BYTES = 256 * 1024 * 1024


def rescore(features: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each row's candidates by the full-dimension cosine (a candidate ``-1``: none, ``-inf``)."""
    n = len(features)
    idx = np.empty((n, k), np.int64)
    sims = np.empty((n, k), np.float32)
    step = max(1, (64 * 1024 * 1024) // (4 * cand.shape[1] * features.shape[1]))
    for s in range(0, n, step):
        e = min(n, s + step)
        c = cand[s:e]
        sim = np.einsum("rd,rcd->rc", features[s:e], features[np.maximum(c, 0)])
        sim[c < 0] = -np.inf  # no candidate (a time window with fewer than k tracks: trackreid.associate.shards)
        top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        idx[s:e] = np.take_along_axis(cand[s:e], top, axis=1)
        sims[s:e] = np.take_along_axis(sim, top, axis=1)
    return idx, sims
