"""Evaluation: hand-computed metrics, the dataset readers, and the CUHK03-val reference numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import trackreid.evaluate as ev
from trackreid.cli.main import main
from trackreid.datasets import (
    DISTRACTOR_PID,
    ImageSet,
    dataset_query_gallery,
    read_image_set,
    read_query_gallery,
)
from trackreid.errors import InputError
from trackreid.evaluate import evaluate_features, evaluate_ranking
from trackreid.rerank import RerankParams

# --- metrics against hand-computed cases -------------------------------------------------------


def one_query(dist: list[float], g_pids: list[int], g_cams: list[int] | None = None, q_pid: int = 1,
              q_cam: int = 0) -> ev.ReidMetrics:
    cams = g_cams if g_cams is not None else [1] * len(dist)
    return evaluate_ranking(np.array([dist]), np.array([q_pid]), np.array(g_pids), np.array([q_cam]),
                            np.array(cams))


def test_single_query_by_hand() -> None:
    # ranked gallery: 2, 1, 3, 1, 4 -> matches at ranks 2 and 4
    m = one_query([0.1, 0.2, 0.3, 0.4, 0.5], [2, 1, 3, 1, 4])
    assert m.mAP == pytest.approx(100 * (1 / 2 + 2 / 4) / 2)  # 50
    assert (m.rank1, m.rank5, m.rank10) == (0.0, 100.0, 100.0)
    assert m.mINP == pytest.approx(100 * 2 / 4)  # hardest match at rank 4
    assert (m.num_query, m.num_gallery, m.num_valid_query, m.num_skipped_query) == (1, 5, 1, 0)


def test_ranking_follows_distance_not_gallery_order() -> None:
    m = one_query([0.5, 0.4, 0.3, 0.2, 0.1], [4, 1, 3, 1, 2])  # same ranking as above, reversed storage
    assert m.mAP == pytest.approx(50.0)
    assert m.mINP == pytest.approx(50.0)


def test_same_identity_same_camera_is_ignored() -> None:
    # a perfect match from the query's own camera is removed; the rest ranks as in the first case
    m = one_query([0.05, 0.1, 0.2, 0.3, 0.4, 0.5], [1, 2, 1, 3, 1, 4], [0, 1, 1, 1, 1, 1])
    assert m.mAP == pytest.approx(50.0)
    assert m.rank1 == 0.0
    # same camera but another identity is a valid (wrong) answer and still counts
    m = one_query([0.05, 0.1], [7, 1], [0, 1])
    assert m.rank1 == 0.0 and m.mAP == pytest.approx(50.0)


def test_junk_is_ignored_and_distractors_count_as_wrong() -> None:
    junk = one_query([0.1, 0.15, 0.2, 0.3, 0.4, 0.5], [2, -1, 1, 3, 1, 4])
    assert junk.mAP == pytest.approx(50.0) and junk.mINP == pytest.approx(50.0)
    # a distractor (Market 0000) at the same place pushes the matches to ranks 3 and 5
    dis = one_query([0.1, 0.15, 0.2, 0.3, 0.4, 0.5], [2, DISTRACTOR_PID, 1, 3, 1, 4])
    assert dis.mAP == pytest.approx(100 * (1 / 3 + 2 / 5) / 2)
    assert dis.mINP == pytest.approx(100 * 2 / 5)
    assert dis.rank1 == 0.0 and dis.rank5 == 100.0


def test_ties_are_broken_by_gallery_order() -> None:
    first_wrong = one_query([0.2, 0.2, 0.9], [2, 1, 3])
    assert first_wrong.rank1 == 0.0 and first_wrong.mAP == pytest.approx(50.0)
    first_right = one_query([0.2, 0.2, 0.9], [1, 2, 3])
    assert first_right.rank1 == 100.0 and first_right.mAP == pytest.approx(100.0)


def test_queries_without_a_valid_match_are_skipped_and_counted() -> None:
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.4, 0.3, 0.2, 0.1], [0.1, 0.2, 0.3, 0.4, 0.5],
                     [0.3, 0.2, 0.1, 0.4, 0.5]])
    g_pids, g_cams = np.array([2, 1, 3, 1, 4]), np.array([1, 1, 1, 1, 0])
    q_pids = np.array([1, 9, 4, 3])  # 9: not in the gallery; 4: only in its own camera
    q_cams = np.array([0, 0, 0, 0])
    m = evaluate_ranking(dist, q_pids, g_pids, q_cams, g_cams)
    assert (m.num_query, m.num_valid_query, m.num_skipped_query) == (4, 2, 2)
    # query 1: AP 0.5, first hit rank 2; query 3: hit at rank 1
    assert m.mAP == pytest.approx(75.0)
    assert m.rank1 == pytest.approx(50.0)
    assert m.mINP == pytest.approx(100 * (0.5 + 1.0) / 2)


def test_negative_query_identities_never_match() -> None:
    m = one_query([0.1, 0.2], [-1, DISTRACTOR_PID], q_pid=DISTRACTOR_PID)
    assert (m.num_valid_query, m.mAP) == (0, 0.0)


def straightforward_metrics(dist: np.ndarray, qp: np.ndarray, gp: np.ndarray, qc: np.ndarray,
                            gc: np.ndarray) -> tuple[float, float, float, int]:
    """One query at a time, as torchreid's Python evaluation does it."""
    aps, r1, inps = [], [], []
    for i in range(len(dist)):
        order = np.argsort(dist[i], kind="stable")
        keep = ~(((gp[order] == qp[i]) & (gc[order] == qc[i])) | (gp[order] == -1))
        hits = ((gp[order] == qp[i]) & (gp[order] >= 0))[keep]
        if not hits.any():
            continue
        pos = np.flatnonzero(hits)
        aps.append(np.mean(np.arange(1, len(pos) + 1) / (pos + 1)))
        r1.append(pos[0] == 0)
        inps.append(len(pos) / (pos[-1] + 1))
    return 100 * float(np.mean(aps)), 100 * float(np.mean(r1)), 100 * float(np.mean(inps)), len(aps)


def test_blocks_of_queries_match_a_per_query_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    dist = rng.integers(0, 6, size=(40, 30)).astype(float)  # many ties
    qp, gp = rng.integers(0, 6, 40), rng.integers(-2, 6, 30)
    qc, gc = rng.integers(0, 3, 40), rng.integers(0, 3, 30)
    whole = evaluate_ranking(dist, qp, gp, qc, gc)
    assert (whole.mAP, whole.rank1, whole.mINP, whole.num_valid_query) == pytest.approx(
        straightforward_metrics(dist, qp, gp, qc, gc))
    monkeypatch.setattr(ev, "RANKING_CELLS", 70)  # two queries per block
    assert evaluate_ranking(dist, qp, gp, qc, gc) == whole


def test_label_shapes_are_checked() -> None:
    with pytest.raises(InputError, match="g_pids"):
        evaluate_ranking(np.zeros((2, 3)), np.zeros(2), np.zeros(4), np.zeros(2), np.zeros(3))


def test_unknown_centralizer() -> None:
    with pytest.raises(InputError, match="--centralize"):
        evaluate_features(np.ones((2, 3)), np.ones((2, 3)), np.zeros(2), np.zeros(2), np.zeros(2), np.ones(2),
                          centralize="mean")


# --- dataset readers ---------------------------------------------------------------------------


def touch(path: Path, color: int = 128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((16, 8, 3), color, np.uint8))
    return path


def test_market_names_junk_and_distractors(tmp_path: Path) -> None:
    q = tmp_path / "query"
    g = tmp_path / "bounding_box_test"
    touch(q / "0001_c1s1_000151_00.jpg")
    touch(q / "0002_c3s2_000151_00.jpg")
    touch(g / "0001_c2s1_000301_01.jpg")
    touch(g / "0000_c1s1_000001_03.jpg")
    touch(g / "-1_c4s1_000002_01.jpg")
    query, gallery = dataset_query_gallery(tmp_path)
    assert query.pids.tolist() == [1, 2] and query.camids.tolist() == [1, 3]
    assert gallery.pids.tolist() == [DISTRACTOR_PID, 1]  # the junk image is left out...
    assert gallery.camids.tolist() == [1, 2]
    assert gallery.junk == 1  # ...and counted


def test_fastreid_folders_and_camera_sources(tmp_path: Path) -> None:
    touch(tmp_path / "query" / "0003" / "0003_c1_a.jpg")
    touch(tmp_path / "query" / "alice" / "cam2_frame7.jpg")
    touch(tmp_path / "gallery" / "0003" / "x_c2_b.jpg")
    touch(tmp_path / "gallery" / "alice" / "camera1-9.jpg")
    touch(tmp_path / "gallery" / "bob" / "c4.jpg")
    q, g = dataset_query_gallery(tmp_path)
    # numeric folders keep their id; names get ids above them, shared by query and gallery
    assert q.pids.tolist() == [3, 4] and g.pids.tolist() == [3, 4, 5]
    assert q.camids.tolist() == [1, 2] and g.camids.tolist() == [2, 1, 4]
    q, g = read_query_gallery(tmp_path / "query", tmp_path / "gallery", "fastreid", "split")
    assert q.camids.tolist() == [0, 0] and g.camids.tolist() == [1, 1, 1]
    q, g = read_query_gallery(tmp_path / "query", tmp_path / "gallery", "fastreid", r"^(\w)")
    # first letters 0, c | x, c, c: the numeric one keeps its value, the others follow in sorted order
    assert q.camids.tolist() == [0, 1] and g.camids.tolist() == [2, 1, 1]


@pytest.mark.parametrize(("layout", "kwargs", "message"), [
    ({"query/0001/a.jpg": 1, "gallery/0001/b.jpg": 1}, {}, "no camera in the file name"),
    ({"query/0001/a_c1.jpg": 1, "gallery/0001/b_c2.jpg": 1}, {"camera_from": "cam("}, "not a valid regular"),
    ({"query/0001/a_c1.jpg": 1, "gallery/0001/b_c2.jpg": 1}, {"camera_from": "cam"}, "needs one group"),
    ({"query/0001/a_c1.jpg": 1, "gallery/0001/b_c2.jpg": 1, "gallery/loose_c1.jpg": 1}, {"fmt": "fastreid"},
     "sub-folder per identity"),
    ({"query/1.jpg": 1, "gallery/2.jpg": 1}, {}, "cannot tell the name format"),
    ({"query/0001_c1s1_0_00.jpg": 1, "gallery/0001/a_c1.jpg": 1}, {}, "looks like market"),
    ({"query/0001_c1s1_0_00.jpg": 1, "gallery/0001_c2s1_0_00.jpg": 1}, {"camera_from": "c(\\d)"},
     "fastreid only"),
    ({"other/0001_c1s1_0_00.jpg": 1}, {}, "expected query/ and gallery/"),
])
def test_dataset_errors(tmp_path: Path, layout: dict[str, int], kwargs: dict[str, str], message: str) -> None:
    for name in layout:
        touch(tmp_path / name)
    with pytest.raises(InputError, match=message):
        dataset_query_gallery(tmp_path, **kwargs)


def test_bad_market_and_cuhk03_names(tmp_path: Path) -> None:
    touch(tmp_path / "0001_c1s1_000151_00.jpg")
    touch(tmp_path / "0001_00.jpg")
    with pytest.raises(InputError, match="Market-1501 name"):
        read_image_set(tmp_path, "market")
    with pytest.raises(InputError, match="CUHK03 name"):
        read_image_set(tmp_path, "cuhk03")


def test_cuhk03_dataset_split(cuhk03_val: Path) -> None:
    q, g = dataset_query_gallery(cuhk03_val, fmt="cuhk03")
    assert (len(q), len(g)) == (451, 487)
    assert set(q.camids.tolist()) == {0} and set(g.camids.tolist()) == {1}
    assert len(set(q.pids.tolist())) == 100


# --- real weights, real crops ------------------------------------------------------------------


Embedded = tuple[ImageSet, ImageSet, np.ndarray, np.ndarray]


@pytest.fixture
def msmt_embedded(msmt_pth: Path, cuhk03_features) -> Embedded:  # type: ignore[no-untyped-def]
    """CUHK03-val embeddings with the shared msmt17 .pth (conftest computes them once per session)."""
    return cuhk03_features(msmt_pth)  # type: ignore[no-any-return]


def cuhk03_metrics(data: Embedded, **kw: object) -> ev.ReidMetrics:
    q, g, fq, fg = data
    return evaluate_features(fq, fg, q.pids, g.pids, q.camids, g.camids, **kw)  # type: ignore[arg-type]


def test_cuhk03_base_reference(msmt_embedded: Embedded) -> None:
    m = cuhk03_metrics(msmt_embedded)
    assert (m.num_query, m.num_gallery, m.num_valid_query) == (451, 487, 451)
    assert m.mAP == pytest.approx(41.0, abs=0.5)
    assert m.rank1 == pytest.approx(40.8, abs=0.5)


def test_cuhk03_rerank_reference(msmt_embedded: Embedded) -> None:
    m = cuhk03_metrics(msmt_embedded, rerank=RerankParams())
    assert m.mAP == pytest.approx(50.6, abs=0.5)
    assert m.rank1 == pytest.approx(46.6, abs=0.5)


def test_cuhk03_nfc_reference(msmt_embedded: Embedded) -> None:
    m = cuhk03_metrics(msmt_embedded, centralize="nfc")
    assert m.mAP == pytest.approx(47.3, abs=0.5)
    assert m.rank1 == pytest.approx(44.1, abs=0.5)


def market_copy(cuhk03_val: Path, root: Path, identities: int = 8) -> dict[str, str]:
    """A Market-1501-layout copy of part of CUHK03 val in tmp (never in the repo), plus junk and a
    distractor; returns {new name: original name} for the images that are evaluated."""
    names: dict[str, str] = {}
    files = sorted(cuhk03_val.glob("*.jpg"))
    pids = sorted({f.name[:4] for f in files})[:identities]
    for f in files:
        pid, slot = f.stem.split("_")
        if pid not in pids:
            continue
        cam = 1 if int(slot) < 5 else 2
        sub = "query" if cam == 1 else "bounding_box_test"
        new = f"{int(pid) + 1:04d}_c{cam}s1_{int(slot):06d}_00.jpg"
        (root / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, root / sub / new)
        names[f"{sub}/{new}"] = f.name
    other = files[-1]  # an identity not in the set: once as junk, once as a distractor
    shutil.copy(other, root / "bounding_box_test" / "-1_c1s1_000000_00.jpg")
    shutil.copy(other, root / "bounding_box_test" / "0000_c2s1_000000_00.jpg")
    names["bounding_box_test/0000_c2s1_000000_00.jpg"] = other.name
    return names


def test_cli_json_equals_library_on_a_market_layout(
        tmp_path: Path, cuhk03_val: Path, msmt_pth: Path, capsys: pytest.CaptureFixture[str],
        msmt_embedded: Embedded) -> None:
    names = market_copy(cuhk03_val, tmp_path / "market")
    rc = main(["evaluate", "--reid-model", str(msmt_pth), "--dataset", str(tmp_path / "market"), "--json",
               "--rerank", "--k1", "5", "--k2", "2", "--device", "cpu"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("mAP", "rank1", "rank5", "rank10", "mINP", "num_query", "num_gallery"):
        assert key in out
    # the same images' features from the session fixture, labelled the Market way
    q, g, fq, fg = msmt_embedded
    index = {p.name: (fq if p in q.paths else fg)[i] for s in (q, g) for i, p in enumerate(s.paths)}
    qs, gs = dataset_query_gallery(tmp_path / "market")
    feats_q = np.stack([index[names[f"query/{p.name}"]] for p in qs.paths])
    feats_g = np.stack([index[names[f"bounding_box_test/{p.name}"]] for p in gs.paths])
    m = evaluate_features(feats_q, feats_g, qs.pids, gs.pids, qs.camids, gs.camids, rerank=RerankParams(5, 2))
    assert (out["num_query"], out["num_gallery"], out["num_gallery_junk"]) == (len(qs), len(gs), 1)
    assert DISTRACTOR_PID in gs.pids
    for key in ("mAP", "rank1", "rank5", "mINP"):
        assert out[key] == pytest.approx(getattr(m, key), abs=1e-3)
    assert out["rerank"] == {"k1": 5, "k2": 2, "lambda_value": 0.3}


def test_cli_errors_are_one_line(tmp_path: Path, msmt_pth: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--reid-model", str(msmt_pth)]) == 2
    assert "no data" in capsys.readouterr().err
    assert main(["evaluate", "--reid-model", str(msmt_pth), "--dataset", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    touch(tmp_path / "q" / "0001_c1s1_000001_00.jpg")
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "0001_c2s1_000001_00.jpg").write_bytes(b"not a jpeg")
    assert main(["evaluate", "--reid-model", str(msmt_pth), "--query", str(tmp_path / "q"),
                 "--gallery", str(tmp_path / "g"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "cannot read this image" in err and "0001_c2s1_000001_00.jpg" in err


def test_prepared_dataset_views_keep_time_segments_apart(tmp_path: Path) -> None:
    """prepare-data splits a single-camera track in time as c1s1 (query) / c1s2 (gallery)."""
    import cv2
    import numpy as np

    from trackreid.datasets import read_image_set

    img = np.zeros((8, 4, 3), np.uint8)
    for split, name in [("query", "0003_c1s1_000001_00.jpg"), ("gallery", "0003_c1s2_000005_00.jpg"),
                        ("gallery", "0004_c2s1_000001_00.jpg")]:
        (tmp_path / split / name[:4]).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / split / name[:4] / name), img)
    q = read_image_set(tmp_path / "query", "fastreid")
    g = read_image_set(tmp_path / "gallery", "fastreid")
    assert q.camids[0] != g.camids[list(g.pids).index(3)]  # same camera, other segment: a valid match
