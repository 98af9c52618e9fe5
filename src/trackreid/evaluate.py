"""ReID evaluation with the Market-1501 protocol: CMC, mAP and mINP.

For each query, gallery items with the same identity *and* the same camera are ignored;
junk items (identity ``-1``) in the gallery are ignored too. Other negative identities
(Market-1501 distractors ``0000``, read as :data:`trackreid.datasets.DISTRACTOR_PID`) are valid
gallery items that match nothing. Queries left with no valid match are skipped and counted.

* :func:`evaluate_ranking`: metrics from a distance matrix.
* :func:`evaluate_features`: distances from features (cosine), optionally after NFC
  centralization and/or k-reciprocal re-ranking, then the metrics.
* :func:`evaluate_model`: embed a query and a gallery image set with any backend, then the above.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.datasets import JUNK_PID, ImageSet
from trackreid.embed.preprocess import l2_normalize
from trackreid.errors import InputError
from trackreid.progress import NullProgress, Progress
from trackreid.rerank import RerankParams, k_reciprocal_rerank

CENTRALIZERS = ("none", "nfc")
#: Distance-matrix cells sorted at once by :func:`evaluate_ranking` (bounds its memory).
RANKING_CELLS = 4_000_000


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

    @property
    def num_skipped_query(self) -> int:
        """Queries without any valid match in the gallery (left out of every metric)."""
        return self.num_query - self.num_valid_query

    def to_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "num_skipped_query": self.num_skipped_query}


def cosine_distance(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of L2-normalised rows, shape (len(q), len(g))."""
    return 1.0 - l2_normalize(q) @ l2_normalize(g).T


def _check_labels(dist: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                  g_camids: np.ndarray) -> None:
    nq, ng = dist.shape
    for name, arr, n in (("q_pids", q_pids, nq), ("q_camids", q_camids, nq), ("g_pids", g_pids, ng),
                         ("g_camids", g_camids, ng)):
        if arr.shape != (n,):
            raise InputError(f"{name}: expected shape ({n},) to match the {nq} x {ng} distances, got {arr.shape}")


def evaluate_ranking(
    dist: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
) -> ReidMetrics:
    """Market-1501 protocol on a (num_query, num_gallery) distance matrix.

    Ties are broken by gallery order (a stable sort): of two equally distant items, the one
    earlier in the gallery ranks first. Negative identities never match; ``-1`` in the gallery
    is junk and ignored. Works through the queries in blocks, so memory stays bounded.
    ``max_rank`` is kept for compatibility; rank-k for k beyond the gallery size equals the
    last rank.
    """
    dist = np.asarray(dist)
    if dist.ndim != 2:
        raise InputError(f"distances: expected a (num_query, num_gallery) matrix, got shape {dist.shape}")
    q_pids, g_pids = np.asarray(q_pids).reshape(-1), np.asarray(g_pids).reshape(-1)
    q_camids, g_camids = np.asarray(q_camids).reshape(-1), np.asarray(g_camids).reshape(-1)
    _check_labels(dist, q_pids, g_pids, q_camids, g_camids)
    nq, ng = dist.shape
    first_hit, aps, inps = [], [], []
    step = max(1, RANKING_CELLS // max(1, ng))
    for s in range(0, nq, step):
        e = min(nq, s + step)
        order = np.argsort(dist[s:e], axis=1, kind="stable")
        gp, gc = g_pids[order], g_camids[order]
        qp, qc = q_pids[s:e, None], q_camids[s:e, None]
        same_id = (gp == qp) & (gp >= 0)
        keep = ~((same_id & (gc == qc)) | (gp == JUNK_PID))
        hit = same_id & keep
        num_hits = hit.sum(axis=1)
        valid = num_hits > 0
        if not valid.any():
            continue
        hit, keep, num_hits = hit[valid], keep[valid], num_hits[valid]
        rank = np.cumsum(keep, axis=1)  # 1-based rank among the items that count
        hits_so_far = np.cumsum(hit, axis=1)
        aps.append(np.where(hit, hits_so_far / np.maximum(rank, 1), 0.0).sum(axis=1) / num_hits)
        rows = np.arange(len(hit))
        first_hit.append(rank[rows, np.argmax(hit, axis=1)])
        last = ng - 1 - np.argmax(hit[:, ::-1], axis=1)
        inps.append(num_hits / rank[rows, last])
    if not aps:
        return ReidMetrics(0.0, 0.0, 0.0, 0.0, 0.0, nq, ng, 0)
    first = np.concatenate(first_hit)

    def at(k: int) -> float:
        return float(100 * np.mean(first <= k))

    return ReidMetrics(float(100 * np.mean(np.concatenate(aps))), at(1), at(5), at(10),
                       float(100 * np.mean(np.concatenate(inps))), nq, ng, len(first))


def centralize_features(features: np.ndarray, method: str | None) -> np.ndarray:
    """Apply a training-free centralization to one set (query or gallery) of features."""
    if method in (None, "none"):
        return features
    if method == "nfc":
        try:
            from trackreid.centralize import nfc
        except ImportError as e:
            raise InputError(f"--centralize nfc needs trackreid.centralize, which this install lacks ({e})") from None
        return np.asarray(nfc(features))
    raise InputError(f"--centralize {method!r}: expected one of {', '.join(CENTRALIZERS)}")


def evaluate_features(
    query: np.ndarray,
    gallery: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    *,
    rerank: RerankParams | None = None,
    centralize: str | None = None,
    progress: Progress | None = None,
) -> ReidMetrics:
    """Metrics for query and gallery features.

    ``centralize='nfc'`` applies neighbour feature centralization to the query and the gallery
    features separately; ``rerank`` replaces the cosine distances with k-reciprocal ones.
    """
    query = np.asarray(query, dtype=np.float32)
    gallery = np.asarray(gallery, dtype=np.float32)
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise InputError(f"features: expected (Q, D) and (G, D), got {query.shape} and {gallery.shape}")
    query = centralize_features(query, centralize)
    gallery = centralize_features(gallery, centralize)
    if rerank is not None:
        dist = k_reciprocal_rerank(query, gallery, rerank, progress)
    else:
        dist = cosine_distance(query, gallery)
    return evaluate_ranking(dist, q_pids, g_pids, q_camids, g_camids)


def read_images(paths: Sequence[Path]) -> list[np.ndarray]:
    """BGR images; an unreadable file is an :class:`InputError` naming it."""
    import cv2

    out = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None or img.size == 0:
            raise InputError(f"{p}: cannot read this image (corrupt or not an image); remove it or fix the file")
        out.append(img)
    return out


def embed_image_set(embedder: Any, images: ImageSet | Sequence[Path], progress: Progress | None = None,
                    description: str = "embed") -> np.ndarray:
    """Embed image files in batches (only one batch of images in memory), with a progress bar."""
    paths = images.paths if isinstance(images, ImageSet) else list(images)
    progress = progress or NullProgress()
    out = np.empty((len(paths), embedder.feature_dim), dtype=np.float32)
    bs = embedder.batch_size
    progress.start(description, len(paths), "images")
    for i in range(0, len(paths), bs):
        chunk = paths[i:i + bs]
        out[i:i + len(chunk)] = embedder.embed(read_images(chunk))
        progress.advance(len(chunk))
    progress.finish()
    return out


@dataclass
class EvaluationReport:
    metrics: ReidMetrics
    model: str
    backend: dict[str, Any]
    rerank: RerankParams | None
    centralize: str | None
    num_gallery_junk: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics.to_dict(), "num_gallery_junk": self.num_gallery_junk, "model": self.model,
                "backend": self.backend, "rerank": asdict(self.rerank) if self.rerank else None,
                "centralize": self.centralize or "none", "seconds": self.seconds}


def evaluate_model(
    reid_model: str | Path,
    query: ImageSet,
    gallery: ImageSet,
    *,
    device: str = "auto",
    backend: str = "auto",
    arch: str | None = None,
    half: bool = False,
    batch_size: int = 64,
    rerank: RerankParams | None = None,
    centralize: str | None = None,
    progress: Progress | None = None,
) -> EvaluationReport:
    """Embed ``query`` and ``gallery`` with ``reid_model`` (any backend) and evaluate."""
    from trackreid.embed.factory import build_embedder

    if len(query) == 0 or len(gallery) == 0:
        raise InputError(f"evaluation needs images in both sets: {len(query)} query, {len(gallery)} gallery")
    if centralize not in (None, *CENTRALIZERS):
        raise InputError(f"--centralize {centralize!r}: expected one of {', '.join(CENTRALIZERS)}")
    t0 = time.perf_counter()
    embedder = build_embedder(reid_model, device=device, backend=backend, arch=arch, half=half,
                              batch_size=batch_size)
    t1 = time.perf_counter()
    fq = embed_image_set(embedder, query, progress, "embed query")
    fg = embed_image_set(embedder, gallery, progress, "embed gallery")
    t2 = time.perf_counter()
    metrics = evaluate_features(fq, fg, query.pids, gallery.pids, query.camids, gallery.camids,
                                rerank=rerank, centralize=centralize, progress=progress)
    t3 = time.perf_counter()
    return EvaluationReport(metrics, str(reid_model), embedder.backend.describe(), rerank,
                            None if centralize == "none" else centralize, gallery.junk,
                            {"load": round(t1 - t0, 3), "embed": round(t2 - t1, 3), "rank": round(t3 - t2, 3)})
