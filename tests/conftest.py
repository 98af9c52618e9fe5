"""Shared fixtures: the real data in ../shared/data (or $TRACKREID_DATA) and small builders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path | None:
    env = os.environ.get("TRACKREID_DATA")
    for cand in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        if (cand / "weights").is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = data_dir()
    if d is None:
        skip_or_fail("shared data not found (../shared/data or $TRACKREID_DATA)")
    return d


@pytest.fixture(scope="session")
def msmt_pth(shared_data: Path) -> Path:
    return shared_data / "weights" / "osnet_x0_25_msmt17.pth"


@pytest.fixture(scope="session")
def market_pth(shared_data: Path) -> Path:
    return shared_data / "weights" / "osnet_x0_25_market1501.pth"


@pytest.fixture(scope="session")
def msmt_onnx(shared_data: Path) -> Path:
    return shared_data / "weights" / "osnet_x0_25_msmt17.onnx"


@pytest.fixture(scope="session")
def cuhk03_val(shared_data: Path) -> Path:
    return shared_data / "cuhk03" / "val"


@pytest.fixture(scope="session")
def cuhk03_split(cuhk03_val: Path):  # type: ignore[no-untyped-def]
    """(query ImageSet, gallery ImageSet, query images, gallery images) of CUHK03 val, read once."""
    import cv2

    from trackreid.datasets import cuhk03_query_gallery

    q, g = cuhk03_query_gallery(cuhk03_val)
    return q, g, [cv2.imread(str(p)) for p in q.paths], [cv2.imread(str(p)) for p in g.paths]


@pytest.fixture(scope="session")
def cuhk03_features(cuhk03_split):  # type: ignore[no-untyped-def]
    """``get(weights_path, backend="torch")`` -> (q, g, query features, gallery features), cached per session.

    Embedding CUHK03 val takes 5-10 s per model on 2 cores; every test that needs it shares one run.
    """
    from trackreid.embed.factory import build_embedder

    q, g, qi, gi = cuhk03_split
    cache: dict[tuple[str, str], tuple] = {}

    def get(weights: Path, backend: str = "torch"):  # type: ignore[no-untyped-def]
        key = (str(weights), backend)
        if key not in cache:
            emb = build_embedder(weights, device="cpu", backend=backend, batch_size=64)
            cache[key] = (q, g, emb.embed(qi), emb.embed(gi))
        return cache[key]

    return get


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep tests out of the user's ~/.cache/trackreid (the auto backend caches ONNX exports there)."""
    old = os.environ.get("TRACKREID_HOME")
    os.environ["TRACKREID_HOME"] = str(tmp_path_factory.mktemp("trackreid_home"))
    yield
    if old is None:
        os.environ.pop("TRACKREID_HOME", None)
    else:
        os.environ["TRACKREID_HOME"] = old
