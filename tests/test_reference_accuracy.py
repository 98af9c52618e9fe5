"""The shared weights reproduce their CUHK03-val reference numbers (../shared/data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trackreid.evaluate import cosine_distance, evaluate_ranking


@pytest.mark.parametrize(("name", "ref_map", "ref_r1"), [
    ("osnet_x0_25_msmt17.pth", 41.0, 40.8),
    ("osnet_x0_25_market1501.pth", 21.2, 20.8),
])
def test_pth_reproduces_reference(shared_data: Path, cuhk03_features, name: str, ref_map: float,  # type: ignore[no-untyped-def]
                                  ref_r1: float) -> None:
    q, g, fq, fg = cuhk03_features(shared_data / "weights" / name)
    m = evaluate_ranking(cosine_distance(fq, fg), q.pids, g.pids, q.camids, g.camids)
    assert (m.num_query, m.num_gallery) == (451, 487)
    assert abs(m.mAP - ref_map) <= 0.5
    assert abs(m.rank1 - ref_r1) <= 0.5
