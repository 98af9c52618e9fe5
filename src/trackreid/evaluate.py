"""ReID evaluation with the Market-1501 protocol: CMC, mAP and mINP.

For each query, gallery items with the same identity *and* the same camera are ignored;
junk identities (``-1``) in the gallery are ignored too. Queries left with no valid match
are skipped and counted. Distances are computed by the caller (cosine by default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from trackreid.embed.preprocess import l2_normalize


@dataclass(frozen=True)
class ReidMetrics:
    """Percentages, like torchreid and FastReID print them."""

    mAP: float
    rank1: float
    rank5: float
    rank10: float
    mINP: float
    num_query: int
    num_gallery: int
    num_valid_query: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def cosine_distance(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of L2-normalised rows, shape (len(q), len(g))."""
    return 1.0 - l2_normalize(q) @ l2_normalize(g).T


def evaluate_ranking(
    dist: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
) -> ReidMetrics:
    """Market-1501 protocol on a (num_query, num_gallery) distance matrix.

    Ties are broken by gallery order (stable sort), as numpy's argsort in torchreid does.
    """
    dist = np.asarray(dist)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    nq, ng = dist.shape
    order = np.argsort(dist, axis=1, kind="stable")
    g_pids_sorted = g_pids[order]
    matches = g_pids_sorted == q_pids[:, None]
    remove = (matches & (g_camids[order] == q_camids[:, None])) | (g_pids_sorted == -1)
    keep = ~remove
    max_rank = min(max_rank, ng)
    cmc_sum = np.zeros(max_rank)
    aps, inps = [], []
    for i in range(nq):
        m = matches[i][keep[i]]
        if not m.any():
            continue
        pos = np.flatnonzero(m)
        cmc = np.zeros(max_rank)
        if pos[0] < max_rank:
            cmc[pos[0]:] = 1
        cmc_sum += cmc
        aps.append(np.mean(np.arange(1, len(pos) + 1) / (pos + 1)))
        inps.append(len(pos) / (pos[-1] + 1))
    nv = len(aps)
    if nv == 0:
        return ReidMetrics(0.0, 0.0, 0.0, 0.0, 0.0, nq, ng, 0)
    cmc_mean = cmc_sum / nv

    def at(k: int) -> float:
        return float(100 * cmc_mean[min(k, max_rank) - 1])

    return ReidMetrics(float(100 * np.mean(aps)), at(1), at(5), at(10), float(100 * np.mean(inps)), nq, ng, nv)
