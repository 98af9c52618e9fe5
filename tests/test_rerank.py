"""k-reciprocal re-ranking: the vectorised version equals a slow straightforward reference."""

from __future__ import annotations

import numpy as np
import pytest

import trackreid.rerank as rr
from trackreid.embed.preprocess import l2_normalize
from trackreid.errors import InputError
from trackreid.rerank import RerankParams, k_reciprocal_rerank


def reference_rerank(q: np.ndarray, g: np.ndarray, k1: int = 20, k2: int = 6, lam: float = 0.3) -> np.ndarray:
    """Zhong et al.'s reference algorithm, written plainly: dense matrices, Python loops, float64."""
    f = l2_normalize(np.concatenate([q, g])).astype(np.float64)
    nq, n = len(q), len(f)
    dist = 1.0 - f @ f.T
    dist = (dist / dist.max(axis=0)).T
    rank = np.argsort(dist, axis=1, kind="stable")

    def reciprocal(i: int, k: int) -> np.ndarray:
        fwd = rank[i, :k + 1]
        return fwd[[i in rank[j, :k + 1] for j in fwd]]

    v = np.zeros((n, n))
    for i in range(n):
        recip = reciprocal(i, k1)
        expansion = list(recip)
        for c in recip:
            cand = reciprocal(c, int(np.around(k1 / 2)))
            if len(np.intersect1d(cand, recip)) > 2 / 3 * len(cand):
                expansion += list(cand)
        idx = np.unique(expansion)
        w = np.exp(-dist[i, idx])
        v[i, idx] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    jaccard = np.zeros((nq, n))
    for i in range(nq):
        for j in range(n):
            s = np.minimum(v[i], v[j]).sum()
            jaccard[i, j] = 1 - s / (2 - s)
    return ((1 - lam) * jaccard + lam * dist[:nq])[:, nq:]


@pytest.mark.parametrize(("nq", "ng", "dim", "k1", "k2", "lam"), [
    (6, 25, 8, 20, 6, 0.3),  # k1 + 1 close to the number of items
    (15, 40, 16, 5, 3, 0.3),
    (10, 30, 4, 3, 1, 0.5),  # k2 = 1: no query expansion
    (20, 60, 16, 20, 6, 0.0),  # pure Jaccard distance
    (2, 3, 5, 20, 6, 0.3),  # fewer items than k1
])
def test_matches_straightforward_reference(nq: int, ng: int, dim: int, k1: int, k2: int, lam: float) -> None:
    rng = np.random.default_rng(nq * 1000 + ng)
    centers = rng.normal(size=(max(2, (nq + ng) // 5), dim))
    q = centers[rng.integers(0, len(centers), nq)] + 0.5 * rng.normal(size=(nq, dim))
    g = centers[rng.integers(0, len(centers), ng)] + 0.5 * rng.normal(size=(ng, dim))
    out = k_reciprocal_rerank(q, g, RerankParams(k1, k2, lam))
    ref = reference_rerank(q, g, k1, k2, lam)
    assert out.shape == (nq, ng)
    np.testing.assert_allclose(out, ref, atol=2e-6)


def test_block_sizes_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    q, g = rng.normal(size=(17, 12)), rng.normal(size=(45, 12))
    whole = k_reciprocal_rerank(q, g)
    monkeypatch.setattr(rr, "BLOCK_BYTES", 4 * 62 * 3)  # three rows of distances at a time
    monkeypatch.setattr(rr, "PAIR_BUDGET", 50)  # about one query per Jaccard block
    np.testing.assert_allclose(k_reciprocal_rerank(q, g), whole, atol=1e-6)


def test_lambda_one_is_the_row_scaled_cosine_distance() -> None:
    rng = np.random.default_rng(4)
    q, g = rng.normal(size=(5, 6)), rng.normal(size=(9, 6))
    f = l2_normalize(np.concatenate([q, g])).astype(np.float64)
    d = 1 - f @ f.T
    expected = (d / d.max(axis=1, keepdims=True))[:5, 5:]
    np.testing.assert_allclose(k_reciprocal_rerank(q, g, RerankParams(lambda_value=1.0)), expected, atol=1e-6)


def test_reranking_pulls_a_k_reciprocal_neighbour_forward() -> None:
    """A gallery item that shares the query's neighbourhood beats a slightly closer stranger.

    Points on one great circle (angle = position): the query at 0 with its group on the positive
    side, the member at 0.10 beyond the group; the stranger at -0.09 (closer to the query than the
    member), next to a group of its own further out. Cosine distance ranks the stranger first;
    re-ranking must put the member first.
    """
    def on_circle(angles: list[float]) -> np.ndarray:
        x = np.zeros((len(angles), 8))
        x[:, 0], x[:, 1] = np.cos(angles), np.sin(angles)
        return x

    far = np.random.default_rng(5).normal(size=(6, 8))
    far[:, :2] = 0
    q = on_circle([0.0])
    g = np.vstack([on_circle([0.02, -0.02, 0.03, 0.05]), on_circle([0.10]), on_circle([-0.09]),
                   on_circle([-0.15, -0.16, -0.17, -0.18, -0.19]), far])
    member, stranger = 4, 5
    cosine = 1 - l2_normalize(q) @ l2_normalize(g).T
    assert cosine[0, stranger] < cosine[0, member]  # the stranger IS closer before re-ranking
    for params in (RerankParams(k1=4, k2=2), RerankParams(k1=5, k2=2), RerankParams()):
        out = k_reciprocal_rerank(q, g, params)
        assert out[0, member] < out[0, stranger], params


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"k1": 0}, "k1"), ({"k2": 0}, "k2"), ({"lambda_value": 1.5}, "lambda"),
])
def test_bad_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InputError, match=message):
        RerankParams(**kwargs)  # type: ignore[arg-type]


def test_mismatched_features_and_empty_sets() -> None:
    with pytest.raises(InputError, match=r"\(Q, D\)"):
        k_reciprocal_rerank(np.zeros((3, 4)), np.zeros((5, 6)))
    assert k_reciprocal_rerank(np.zeros((0, 4)), np.ones((5, 4))).shape == (0, 5)


def test_refuses_what_does_not_fit_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rr, "available_memory_bytes", lambda: 10_000_000)
    with pytest.raises(InputError, match="GB are available"):
        k_reciprocal_rerank(np.ones((3, 4)), np.ones((5, 4)))


def test_memory_estimate_grows_with_the_result() -> None:
    small = rr.rerank_memory_bytes(3368, 15913)
    big = rr.rerank_memory_bytes(10000, 50000)
    assert 4 * 3368 * 15913 < small < big
    assert big > 2 * 4 * 10000 * 50000
