"""2-D maps of track features: layouts that keep people apart, colours from labels, thumbnails."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.ci import skip_or_fail
from tests.test_similarity import synthetic_tracks
from trackreid.analysis.tracks import combine_tracks
from trackreid.analysis.visualize import crop_files, embed_2d, read_label_file, visualize_tracks
from trackreid.cli.main import main
from trackreid.errors import InputError, OutputError
from trackreid.io.features import write_features


def blobs(n_per: int = 10, k: int = 3, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)) * 5
    y = np.repeat(np.arange(k), n_per)
    return centers[y] + rng.normal(size=(len(y), dim)), y


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_layout_keeps_groups_apart(method: str) -> None:
    x, y = blobs()
    pts = embed_2d(x, method)
    assert pts.shape == (30, 2) and np.isfinite(pts).all()
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    np.fill_diagonal(d, np.inf)
    assert np.all(y[d.argmin(axis=1)] == y)  # every point's nearest neighbour is in its group


def test_too_few_points_and_unknown_method() -> None:
    with pytest.raises(InputError, match="--method pca"):
        embed_2d(np.ones((2, 4)), "tsne")
    with pytest.raises(InputError, match="at least 2"):
        embed_2d(np.ones((1, 4)), "pca")
    with pytest.raises(InputError, match="--method"):
        embed_2d(np.ones((5, 4)), "mds")
    with pytest.raises(InputError, match="perplexity"):
        embed_2d(np.random.default_rng(0).normal(size=(5, 4)), "tsne", perplexity=10)


def test_umap_missing_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` fail
    with pytest.raises(InputError, match=r'pip install "trackreid\[umap\]"'):
        embed_2d(blobs()[0], "umap")


def test_umap_when_installed() -> None:
    if importlib.util.find_spec("umap") is None:
        skip_or_fail("umap-learn is an optional extra: pip install 'trackreid[umap]'")
    x, y = blobs(n_per=15)
    pts = embed_2d(x, "umap")
    assert pts.shape == (45, 2) and np.isfinite(pts).all()


def test_label_file_colours_by_identity(tmp_path: Path) -> None:
    tracks = combine_tracks([("cam", synthetic_tracks(6, 3))])
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text("track,identity,camera\n1,alice,c1\n2,bob,c1\n4,alice,c2\n5,bob,c2\n")
    labels = read_label_file(labels_csv, tracks)
    assert labels["4"] == {"identity": "alice", "camera": "c2"}
    res = visualize_tracks(tracks, tmp_path / "map.png", method="pca", labels=labels)
    assert res.color_by == "identity"
    assert res.groups == ["alice", "bob", "(no label)", "alice", "bob", "(no label)"]
    res = visualize_tracks(tracks, tmp_path / "cam.png", method="pca", labels=labels, color_by="camera")
    assert res.groups[:2] == ["c1", "c1"] and res.groups[3] == "c2"
    assert cv2.imread(str(tmp_path / "map.png")) is not None


@pytest.mark.parametrize(("text", "message"), [
    ("track,person\n1,a\n", "'identity' and/or"),
    ("track,identity\n99,a\n", "line 2: track '99' is not in the features"),
    ("", "found nothing"),
])
def test_bad_label_files(tmp_path: Path, text: str, message: str) -> None:
    tracks = combine_tracks([("cam", synthetic_tracks(3, 3))])
    p = tmp_path / "labels.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=message):
        read_label_file(p, tracks)


def test_all_crops_mode_and_multi_camera_colours(tmp_path: Path) -> None:
    a, b = synthetic_tracks(4, 2, seed=3, crops=5), synthetic_tracks(3, 3, seed=4, crops=2, first_id=7)
    tracks = combine_tracks([("north", a), ("south", b)])
    res = visualize_tracks(tracks, tmp_path / "all.png", method="pca", all_crops=True)
    assert len(res.points) == 4 * 5 + 3 * 2
    assert res.color_by == "camera" and res.groups.count("north") == 20
    assert res.point_track.tolist() == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5 + [4, 4, 5, 5, 6, 6]


def magenta_crops(root: Path, tf_ids: list[int], frames: dict[int, list[int]]) -> Path:
    for tid in tf_ids:
        for k, f in enumerate(frames[tid]):
            p = root / "crops" / f"track_{tid:04d}" / f"frame_{f:06d}_{k:03d}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            img = np.zeros((128, 64, 3), np.uint8)
            img[:] = (255, 0, 255)
            cv2.imwrite(str(p), img)
    return root


def count_magenta(path: Path) -> int:
    img = cv2.imread(str(path)).astype(int)
    return int(((img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] > 200)).sum())


@pytest.mark.parametrize("all_crops", [False, True])
def test_thumbnails_are_drawn_from_the_crops_folder(tmp_path: Path, all_crops: bool) -> None:
    tf = synthetic_tracks(5, 5, crops=3)
    tracks = combine_tracks([("cam", tf)])
    frames = {int(t): tf.frames_of(i).tolist() for i, t in enumerate(tf.track_ids)}
    crops = magenta_crops(tmp_path / "run", tf.track_ids.tolist(), frames)
    assert sorted(crop_files(crops)) == tf.track_ids.tolist()
    plain = visualize_tracks(tracks, tmp_path / "plain.png", method="pca", all_crops=all_crops)
    thumbs = visualize_tracks(tracks, tmp_path / "thumbs.png", method="pca", all_crops=all_crops,
                              crops_dirs=[crops], max_thumbnails=4)
    assert count_magenta(plain.path) == 0
    assert count_magenta(thumbs.path) > 4 * 300  # four thumbnails of about 48 x 24 px


def test_output_rules(tmp_path: Path) -> None:
    tracks = combine_tracks([("cam", synthetic_tracks(4, 2))])
    with pytest.raises(InputError, match=".png"):
        visualize_tracks(tracks, tmp_path / "map.jpg", method="pca")
    (tmp_path / "map.png").write_bytes(b"old")
    with pytest.raises(OutputError, match="--overwrite"):
        visualize_tracks(tracks, tmp_path / "map.png", method="pca")
    assert (tmp_path / "map.png").read_bytes() == b"old"
    with pytest.raises(InputError, match="--crops-dir"):
        visualize_tracks(tracks, tmp_path / "x.png", method="pca", crops_dirs=[tmp_path, tmp_path])
    with pytest.raises(InputError, match="track_NNNN"):
        visualize_tracks(tracks, tmp_path / "x.png", method="pca", crops_dirs=[tmp_path])
    with pytest.raises(InputError, match="needs --labels"):
        visualize_tracks(tracks, tmp_path / "x.png", method="pca", color_by="identity")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_features(synthetic_tracks(8, 4), tmp_path / "run")
    out = tmp_path / "tsne.png"
    assert main(["visualize", "--features", str(tmp_path / "run"), "--method", "tsne", "--output", str(out)]) == 0
    assert "8 points (tracks), coloured by track" in capsys.readouterr().out
    assert cv2.imread(str(out)) is not None
    assert main(["visualize", "--features", str(tmp_path / "run"), "--output", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
