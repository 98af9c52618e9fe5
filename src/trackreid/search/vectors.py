"""The index's vectors in FAISS: exact inner product when small, IVF-PQ (compressed, approximate) when large.

Vectors are L2-normalised track features, so inner product is cosine similarity. Vector id
``i`` is row ``i`` of the tracks table (:mod:`trackreid.search.store`). The file is FAISS's
own binary format (``faiss.write_index`` / ``read_index``), no pickle.

The rule (measured in docs/search.md): below :data:`APPROX_FROM` tracks the exact flat index
answers a query within milliseconds on two cores and is kept; from there on ``ivfpq``
(``IVF<nlist>,PQ<m>,Refine(SQ8)``: ``nprobe`` lists searched with 64-byte PQ codes, then the
``k_factor`` x k best candidates re-ranked with 8-bit scalar-quantised vectors: 576 bytes a
track instead of 2048; PQ alone found only 0.84 of the exact top 10 at 100k tracks and 0.34 at
1M, the re-ranking brings it back).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.errors import InputError

KINDS = ("auto", "flat", "ivfpq", "hnsw")
#: From this many vectors ``auto`` builds IVF-PQ instead of the exact flat index (docs/search.md).
APPROX_FROM = 200_000
PQ_M = 64  # sub-quantizers: 64 bytes per vector
NPROBE = 32
K_FACTOR = 10  # candidates re-ranked with the 8-bit vectors: k_factor x k
REFINE = "SQ8"
MAX_NLIST = 1024
MIN_TRAIN = 39 * 256  # PQ's 256 centroids per sub-quantizer want 39 points each
TRAIN_SAMPLE = 65_536  # vectors the IVF and PQ k-means train on
TRAIN_ITERATIONS = 10
HNSW_M = 32
HNSW_EF_SEARCH = 128


def require_faiss() -> Any:
    # faiss logs at INFO which of its CPU builds it loaded (after failing the others): noise for users
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    try:
        import faiss
    except ImportError:
        raise InputError("the search index needs FAISS, which is not installed; install it with "
                         "`pip install trackreid[search]` (faiss-cpu)") from None
    return faiss


def choose_kind(kind: str, n: int) -> str:
    if kind not in KINDS:
        raise InputError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return "ivfpq" if n >= APPROX_FROM else "flat"


def nlist_for(n: int) -> int:
    """Inverted lists for ``n`` vectors: about sqrt(n), at most 1024 and n / 39 (FAISS wants 39 training points
    each)."""
    return int(max(1, min(int(np.sqrt(max(n, 1))), MAX_NLIST, n // 39)))


def build(vectors: np.ndarray, kind: str) -> tuple[Any, dict[str, Any]]:
    """A FAISS index of ``vectors`` (N, D) float32 of the given kind ('flat', 'ivfpq', 'hnsw'), and its settings."""
    faiss = require_faiss()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = x.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
        index.add(x)
        return index, {"kind": "flat", "factory": "Flat", "metric": "inner_product"}
    if kind == "ivfpq":
        if n < MIN_TRAIN:
            raise InputError(f"--kind ivfpq needs at least {MIN_TRAIN} tracks to train its codebooks, the index would "
                             f"hold {n}; use --kind flat (exact) or auto")
        nlist = nlist_for(n)
        m = PQ_M if d % PQ_M == 0 else next(k for k in (32, 16, 8, 4, 2, 1) if d % k == 0)
        factory = f"IVF{nlist},PQ{m},Refine({REFINE})"
        index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        # k-means cost is points x centroids x D x iterations: a sample and 10 iterations keep a 1M-track build
        # within minutes on two cores (docs/search.md)
        ivf.cp.niter = faiss.downcast_index(index.base_index).pq.cp.niter = TRAIN_ITERATIONS
        rng = np.random.default_rng(0)
        size = min(n, TRAIN_SAMPLE)
        train = x if size == n else x[np.sort(rng.choice(n, size, replace=False))]
        index.train(train)
        index.add(x)
        settings = {"kind": "ivfpq", "factory": factory, "metric": "inner_product", "nprobe": NPROBE,
                    "k_factor": K_FACTOR}
        apply_settings(index, settings)
        return index, settings
    if kind == "hnsw":
        factory = f"HNSW{HNSW_M},Flat"
        index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = HNSW_EF_SEARCH
        index.add(x)
        return index, {"kind": "hnsw", "factory": factory, "metric": "inner_product", "ef_search": HNSW_EF_SEARCH}
    raise InputError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")


def all_vectors(index: Any) -> np.ndarray:
    """Every stored vector (exact for flat and HNSW; the 8-bit re-ranking vectors, decoded, for IVF-PQ)."""
    return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)


def vector(index: Any, i: int) -> np.ndarray:
    return np.asarray(index.reconstruct(int(i)), dtype=np.float32)


def apply_settings(index: Any, settings: dict[str, Any]) -> None:
    """Search parameters FAISS does not keep in the file (nprobe, efSearch, the re-ranking's k_factor)."""
    faiss = require_faiss()
    if isinstance(index, faiss.IndexRefine):
        index.k_factor = float(settings.get("k_factor", K_FACTOR))
        faiss.extract_index_ivf(index).nprobe = int(settings.get("nprobe", NPROBE))
    elif hasattr(index, "hnsw"):
        index.hnsw.efSearch = int(settings.get("ef_search", HNSW_EF_SEARCH))


def search(index: Any, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, ids) of the ``k`` best vectors per query; ``allowed`` restricts to those ids (-1: no result)."""
    faiss = require_faiss()
    q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, index.d)
    k = max(1, min(int(k), int(index.ntotal)))
    if allowed is None:
        return index.search(q, k)
    sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
    if isinstance(index, faiss.IndexRefine):
        ivf = faiss.SearchParametersIVF(sel=sel, nprobe=faiss.extract_index_ivf(index).nprobe)
        params: Any = faiss.IndexRefineSearchParameters(k_factor=index.k_factor, base_index_params=ivf)
    elif hasattr(index, "hnsw"):
        params = faiss.SearchParametersHNSW(sel=sel, efSearch=index.hnsw.efSearch)
    else:
        params = faiss.SearchParameters(sel=sel)
    return index.search(q, k, params=params)


def write(index: Any, path: Path) -> None:
    require_faiss().write_index(index, str(path))


def read(path: Path) -> Any:
    faiss = require_faiss()
    if not path.is_file():
        raise InputError(f"{path}: missing; the index is incomplete: rebuild it with `trackreid index build`")
    try:
        return faiss.read_index(str(path))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"{path}: not a readable FAISS index ({first}); rebuild it with `trackreid index build`") \
            from None
