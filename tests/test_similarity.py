"""Track similarity: matrix files, top-k lists, clustering order, heatmap, several cameras."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from trackreid.analysis.similarity import cluster_order, most_similar, track_similarity, write_similarity
from trackreid.analysis.tracks import combine_tracks, load_tracks
from trackreid.cli.main import main
from trackreid.errors import InputError, OutputError
from trackreid.io.features import TrackFeatures, write_features


def synthetic_tracks(n_tracks: int, n_ids: int, seed: int = 0, dim: int = 32, first_id: int = 1,
                     crops: int = 4) -> TrackFeatures:
    """Tracks of ``n_ids`` people (track i shows person i % n_ids), non-negative like OSNet."""
    rng = np.random.default_rng(seed)
    centers = np.abs(rng.normal(size=(n_ids, dim))) * 2
    items = []
    for t in range(n_tracks):
        allf = np.abs(centers[t % n_ids] + 0.3 * rng.normal(size=(crops, dim)))
        items.append((first_id + t, allf.mean(axis=0), allf, np.arange(crops) * 3 + t))
    return TrackFeatures.from_tracks(items)


def test_matrix_is_the_cosine_similarity_in_track_order(tmp_path: Path) -> None:
    tf = synthetic_tracks(7, 3)
    res = track_similarity(combine_tracks([("cam", tf)]), k=2)
    f = tf.features / np.linalg.norm(tf.features, axis=1, keepdims=True)
    np.testing.assert_allclose(res.matrix, f @ f.T, atol=1e-6)
    assert np.array_equal(res.matrix, res.matrix.T) and np.all(np.diag(res.matrix) == 1)
    assert res.labels == [str(t) for t in tf.track_ids]
    written = write_similarity(res, tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(["similarity.npy", "similarity.csv", "similarity_tracks.json",
                                                       "top_k.csv", "top_k.json", "heatmap.png"])
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "similarity.npy"), res.matrix)
    rows = list(csv.reader((tmp_path / "out" / "similarity.csv").open()))
    assert rows[0] == ["track", *res.labels]
    assert [r[0] for r in rows[1:]] == res.labels
    np.testing.assert_allclose(np.array([r[1:] for r in rows[1:]], float), res.matrix, atol=1e-6)
    index = json.loads((tmp_path / "out" / "similarity_tracks.json").read_text())
    assert [e["track_id"] for e in index] == tf.track_ids.tolist()


def test_top_k_lists_the_most_similar_other_tracks(tmp_path: Path) -> None:
    tf = synthetic_tracks(9, 3)  # tracks 1, 4, 7 are one person, and so on
    res = track_similarity(combine_tracks([("cam", tf)]), k=2)
    for i, matches in enumerate(res.top_k):
        others = [j for j in range(9) if j != i]
        best = sorted(others, key=lambda j: -res.matrix[i, j])[:2]
        assert [j for j, _ in matches] == best
        assert {j % 3 for j, _ in matches} == {i % 3}  # the same person's other tracks
    write_similarity(res, tmp_path)
    rows = list(csv.DictReader((tmp_path / "top_k.csv").open()))
    assert len(rows) == 18 and rows[0]["track"] == "1" and rows[0]["rank"] == "1"
    assert {rows[0]["match"], rows[1]["match"]} == {"4", "7"}
    top = json.loads((tmp_path / "top_k.json").read_text())
    assert top["k"] == 2 and [e["track"] for e in top["tracks"]["1"]] == [rows[0]["match"], rows[1]["match"]]


def test_ties_in_top_k_keep_the_lower_index_first() -> None:
    sim = np.array([[1.0, 0.5, 0.5], [0.5, 1.0, 0.2], [0.5, 0.2, 1.0]], np.float32)
    assert [j for j, _ in most_similar(sim, 2)[0]] == [1, 2]
    with pytest.raises(InputError, match="--top-k"):
        most_similar(sim, 0)


def test_cluster_order_makes_each_person_a_block() -> None:
    tf = synthetic_tracks(12, 4, seed=1)
    order = cluster_order(track_similarity(combine_tracks([("cam", tf)])).matrix)
    assert sorted(order.tolist()) == list(range(12))
    people = [i % 4 for i in order]
    # contiguous blocks: the person changes exactly 3 times along the order
    assert sum(a != b for a, b in zip(people, people[1:], strict=False)) == 3


def test_several_cameras_are_labelled_camera_track(tmp_path: Path) -> None:
    a, b = synthetic_tracks(4, 4, seed=2), synthetic_tracks(3, 3, seed=2, first_id=10)
    write_features(a, tmp_path / "north")
    write_features(b, tmp_path / "south", pkl=False)
    tracks = load_tracks([tmp_path / "north" / "track_features.pkl", f"S={tmp_path / 'south'}"])
    assert tracks.labels == ["north:1", "north:2", "north:3", "north:4", "S:10", "S:11", "S:12"]
    res = track_similarity(tracks, k=2, cross_camera=True)
    for i, matches in enumerate(res.top_k):
        assert all(tracks.cameras[j] != tracks.cameras[i] for j, _ in matches)
    # the same seed gives the same people: north:1 is S:10, north:2 is S:11, ...
    assert [res.labels[m[0][0]] for m in res.top_k[:3]] == ["S:10", "S:11", "S:12"]
    write_similarity(res, tmp_path / "out")
    header = next(csv.reader((tmp_path / "out" / "top_k.csv").open()))
    assert header[-1] == "same_camera"


def test_camera_name_clashes_and_dimension_mismatch(tmp_path: Path) -> None:
    tf = synthetic_tracks(3, 3)
    write_features(tf, tmp_path / "a" / "cam")
    write_features(tf, tmp_path / "b" / "cam")
    with pytest.raises(InputError, match="NAME=PATH"):
        load_tracks([tmp_path / "a" / "cam", tmp_path / "b" / "cam"])
    with pytest.raises(InputError, match="different dimensions"):
        combine_tracks([("x", tf), ("y", synthetic_tracks(3, 3, dim=16))])
    with pytest.raises(InputError, match="at least two cameras"):
        track_similarity(combine_tracks([("x", tf)]), cross_camera=True)


def test_existing_outputs_are_not_overwritten(tmp_path: Path) -> None:
    res = track_similarity(combine_tracks([("cam", synthetic_tracks(3, 2))]))
    write_similarity(res, tmp_path, heatmap=False)
    before = (tmp_path / "similarity.csv").read_bytes()
    with pytest.raises(OutputError, match="--overwrite"):
        write_similarity(res, tmp_path, heatmap=False)
    write_similarity(res, tmp_path, heatmap=False, overwrite=True)
    assert (tmp_path / "similarity.csv").read_bytes() == before
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("n_tracks", [15, 300])
def test_heatmap_size_scales_and_stays_bounded(tmp_path: Path, n_tracks: int) -> None:
    res = track_similarity(combine_tracks([("cam", synthetic_tracks(n_tracks, max(2, n_tracks // 5), crops=1))]))
    write_similarity(res, tmp_path)
    img = cv2.imread(str(tmp_path / "heatmap.png"))
    assert img is not None
    h, w = img.shape[:2]
    assert 500 <= h <= 1700 and 500 <= w <= 1900


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_features(synthetic_tracks(6, 2), tmp_path / "run")
    out = tmp_path / "sim"
    assert main(["similarity", "--features", str(tmp_path / "run" / "track_features.pkl"), "--output-dir", str(out),
                 "--top-k", "1"]) == 0
    text = capsys.readouterr().out
    assert "6 tracks" in text and "1 -> 3" in text
    assert (out / "heatmap.png").is_file()
    assert main(["similarity", "--features", str(tmp_path / "run"), "--output-dir", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["similarity", "--features", str(tmp_path / "nothing.npz"), "--output-dir", str(out)]) == 2
    assert "no such features file" in capsys.readouterr().err
