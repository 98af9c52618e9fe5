"""The shared weights reproduce their CUHK03-val reference numbers (../shared/data/README.md)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from trackreid.datasets import cuhk03_query_gallery
from trackreid.embed.factory import build_embedder
from trackreid.evaluate import cosine_distance, evaluate_ranking


def cuhk03_metrics(weights: Path, folder: Path, **kw: object):  # type: ignore[no-untyped-def]
    q, g = cuhk03_query_gallery(folder)
    emb = build_embedder(weights, device="cpu", batch_size=64, **kw)  # type: ignore[arg-type]
    fq = emb.embed([cv2.imread(str(p)) for p in q.paths])
    fg = emb.embed([cv2.imread(str(p)) for p in g.paths])
    return evaluate_ranking(cosine_distance(fq, fg), q.pids, g.pids, q.camids, g.camids)


@pytest.mark.parametrize(("name", "ref_map", "ref_r1"), [
    ("osnet_x0_25_msmt17.pth", 41.0, 40.8),
    ("osnet_x0_25_market1501.pth", 21.2, 20.8),
])
def test_pth_reproduces_reference(shared_data: Path, cuhk03_val: Path, name: str, ref_map: float,
                                  ref_r1: float) -> None:
    m = cuhk03_metrics(shared_data / "weights" / name, cuhk03_val)
    assert (m.num_query, m.num_gallery) == (451, 487)
    assert abs(m.mAP - ref_map) <= 0.5
    assert abs(m.rank1 - ref_r1) <= 0.5
