"""k-reciprocal re-ranking: time and peak memory, vectorised vs the straightforward reference.

The reference is the widely copied implementation (dense (Q+G)^2 matrices, full argsort,
a Python loop per item, an inverted index for the Jaccard step), run on the same features in
the same process; it is skipped above --ref-max items. Features are synthetic: identities as
Gaussian clusters in 512-D, like ReID features in structure (the speed does not depend on
the values). Peak memory is numpy's traced allocation peak (tracemalloc) during the call.

    python benchmarks/rerank_bench.py            # a few minutes on 2 cores
    python benchmarks/rerank_bench.py --large    # adds 10,000 + 50,000
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from trackreid.embed.preprocess import l2_normalize
from trackreid.rerank import k_reciprocal_rerank, rerank_memory_bytes


def reference_rerank(q: np.ndarray, g: np.ndarray, k1: int = 20, k2: int = 6, lam: float = 0.3) -> np.ndarray:
    f = l2_normalize(np.concatenate([q, g]))
    nq, n = len(q), len(f)
    dist = (1.0 - f @ f.T).astype(np.float32)
    dist = np.transpose(dist / np.max(dist, axis=0))
    v = np.zeros_like(dist)
    rank = np.argsort(dist).astype(np.int32)
    half = int(np.around(k1 / 2))
    for i in range(n):
        fwd = rank[i, :k1 + 1]
        recip = fwd[np.where(rank[fwd, :k1 + 1] == i)[0]]
        exp = recip
        for c in recip:
            cf = rank[c, :half + 1]
            cr = cf[np.where(rank[cf, :half + 1] == c)[0]]
            if len(np.intersect1d(cr, recip)) > 2 / 3 * len(cr):
                exp = np.append(exp, cr)
        exp = np.unique(exp)
        w = np.exp(-dist[i, exp])
        v[i, exp] = w / w.sum()
    dist = dist[:nq]
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    inv = [np.where(v[:, i] != 0)[0] for i in range(n)]
    jac = np.zeros((nq, n), dtype=np.float32)
    for i in range(nq):
        tmin = np.zeros(n, dtype=np.float32)
        nz = np.where(v[i] != 0)[0]
        for k in nz:
            tmin[inv[k]] += np.minimum(v[i, k], v[inv[k], k])
        jac[i] = 1 - tmin / (2 - tmin)
    return (jac * (1 - lam) + dist * lam)[:, nq:]


def features(n: int, rng: np.random.Generator, centers: np.ndarray) -> np.ndarray:
    return (centers[rng.integers(0, len(centers), n)] + 1.2 * rng.normal(size=(n, centers.shape[1]))).astype(
        np.float32)


def measure(fn, *args):  # type: ignore[no-untyped-def]
    tracemalloc.start()
    t = time.perf_counter()
    out = fn(*args)
    sec = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, sec, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--large", action="store_true", help="also 10,000 query + 50,000 gallery")
    ap.add_argument("--ref-max", type=int, default=4000, help="largest Q+G the reference runs on")
    args = ap.parse_args()
    sizes = [(451, 487), (1000, 3000), (3368, 15913)] + ([(10000, 50000)] if args.large else [])
    print("| query + gallery | reference: time, peak | vectorised: time, peak | estimate | max abs diff |")
    print("|---|---|---|---|---|")
    for nq, ng in sizes:
        rng = np.random.default_rng(0)
        centers = rng.normal(size=(max(2, (nq + ng) // 12), 512)).astype(np.float32)
        q, g = features(nq, rng, centers), features(ng, rng, centers)
        out, sec, peak = measure(k_reciprocal_rerank, q, g)
        ref_cell, diff = "skipped (too large)", "-"
        if nq + ng <= args.ref_max:
            ref, rsec, rpeak = measure(reference_rerank, q, g)
            ref_cell = f"{rsec:.1f} s, {rpeak / 1e9:.2f} GB"
            diff = f"{np.abs(ref - out).max():.1e}"
        print(f"| {nq:,} + {ng:,} | {ref_cell} | {sec:.1f} s, {peak / 1e9:.2f} GB | "
              f"{rerank_memory_bytes(nq, ng) / 1e9:.2f} GB | {diff} |", flush=True)


if __name__ == "__main__":
    main()
