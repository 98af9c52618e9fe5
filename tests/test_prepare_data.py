"""prepare-data: crops folders per camera -> train/ query/ gallery/ with camera ids, split by identity."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from trackreid.cli.main import main
from trackreid.errors import InputError, OutputError
from trackreid.prepare_data import CameraSource, prepare_dataset, read_identity_map, read_manifest
from trackreid.train.data import read_dataset


def make_crops(root: Path, tracks: dict[int, int], first_frame: int = 1) -> Path:
    """``root/track_NNNN/frame_FFFFFF_III.jpg``: ``tracks`` maps track id -> number of crops."""
    for tid, n in tracks.items():
        d = root / f"track_{tid:04d}"
        d.mkdir(parents=True)
        for i in range(n):
            img = np.full((40, 20, 3), (tid * 37 + i) % 255, np.uint8)
            cv2.imwrite(str(d / f"frame_{first_frame + 5 * i:06d}_{i:03d}.jpg"), img)
    return root


@pytest.fixture
def two_cameras(tmp_path: Path) -> tuple[list[CameraSource], Path]:
    a = make_crops(tmp_path / "camA" / "crops", {1: 6, 2: 6, 3: 5, 4: 2, 5: 8, 6: 6})
    b = make_crops(tmp_path / "camB" / "crops", {1: 5, 2: 6, 7: 6}, first_frame=100)
    idmap = tmp_path / "ids.csv"
    idmap.write_text("camera,track,person\nA,1,alice\nB,1,alice\nA,2,bob\nB,0002,bob\n")
    return [CameraSource("A", a), CameraSource("B", b)], idmap


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))


def test_split_cameras_and_time(two_cameras: tuple[list[CameraSource], Path], tmp_path: Path) -> None:
    sources, idmap_path = two_cameras
    idmap = read_identity_map(idmap_path, ["A", "B"])
    out = tmp_path / "dataset" / "mine"
    s = prepare_dataset(sources, out, identity_map=idmap, test_ratio=0.5, seed=3, min_images=4)
    # identities: alice (A1+B1, 11), bob (A2+B2, 12), A3, A5, A6, B7; A4 has 2 crops -> left out
    assert s.identities_total == 7 and s.dropped_identities == 1 and s.dropped_images == 2
    assert s.splits["train"].identities == 3 and s.query_by_camera + s.query_by_time == 3
    assert sum(sc.images for sc in s.splits.values()) == 6 + 6 + 5 + 8 + 6 + 5 + 6 + 6
    ds = read_dataset(out)
    assert ds.query is not None and ds.gallery is not None
    for pid in np.unique(ds.query.pids):
        q_views = set(ds.query.camids[ds.query.pids == pid].tolist())
        g_views = set(ds.gallery.camids[ds.gallery.pids == pid].tolist())
        assert q_views and g_views and not q_views & g_views  # never the same camera and segment
    cams = {p.name.split("_")[1][:2] for p in out.rglob("*.jpg")}
    assert cams == {"c1", "c2"}  # camera ids recorded Market-style
    summary = json.loads((out / "prepare_summary.json").read_text())
    merged = [v for v in summary["identities"].values() if len(v) == 2]
    assert sorted(merged) == [["A/1", "B/1"], ["A/2", "B/2"]]
    # deterministic: same seed, same layout; another seed, another split
    again = prepare_dataset(sources, tmp_path / "again", identity_map=idmap, test_ratio=0.5, seed=3)
    assert files(tmp_path / "again") == files(out) and again.splits == s.splits
    prepare_dataset(sources, tmp_path / "other", identity_map=idmap, test_ratio=0.5, seed=4)
    assert files(tmp_path / "other") != files(out)


def test_sources_are_linked_never_moved(two_cameras: tuple[list[CameraSource], Path], tmp_path: Path) -> None:
    sources, _ = two_cameras
    before = files(sources[0].crops_dir)
    out = tmp_path / "linked"
    s = prepare_dataset(sources, out, test_ratio=0.0, min_images=1)
    assert files(sources[0].crops_dir) == before
    assert s.link_mode == "hardlink" and s.splits["query"].images == 0
    src = sources[0].crops_dir / "track_0001" / "frame_000001_000.jpg"
    assert any(os.path.samefile(src, p) for p in out.rglob("*.jpg"))
    copied = prepare_dataset(sources, tmp_path / "copied", test_ratio=0.0, min_images=1, mode="copy")
    assert copied.link_mode == "copy"
    assert not any(os.path.samefile(src, p) for p in (tmp_path / "copied").rglob("*.jpg"))


def test_without_map_every_track_is_an_identity_and_single_camera_splits_in_time(tmp_path: Path) -> None:
    crops = make_crops(tmp_path / "crops", {i: 6 for i in range(1, 11)})
    s = prepare_dataset([CameraSource("cam1", crops)], tmp_path / "ds", test_ratio=0.3, seed=0)
    assert s.splits["train"].identities == 7 and s.query_by_time == 3 and s.query_by_camera == 0
    ds = read_dataset(tmp_path / "ds")
    assert ds.query is not None and ds.gallery is not None
    assert set(ds.query.camids.tolist()) == {1001} and set(ds.gallery.camids.tolist()) == {1002}
    # query holds the earlier half of each track
    q_frames = [int(p.stem.split("_")[2]) for p in ds.query.paths]
    g_frames = [int(p.stem.split("_")[2]) for p in ds.gallery.paths]
    assert max(q_frames) < min(g_frames)


def test_refusals(two_cameras: tuple[list[CameraSource], Path], tmp_path: Path) -> None:
    sources, _ = two_cameras
    out = tmp_path / "ds"
    prepare_dataset(sources, out)
    with pytest.raises(OutputError, match="--overwrite"):
        prepare_dataset(sources, out)
    prepare_dataset(sources, out, overwrite=True, seed=1)
    with pytest.raises(InputError, match="no such crops folder"):
        prepare_dataset([CameraSource("x", tmp_path / "nope")], tmp_path / "y")
    with pytest.raises(InputError, match="given twice"):
        prepare_dataset([sources[0], CameraSource("A", sources[1].crops_dir)], tmp_path / "z")
    with pytest.raises(InputError, match="min-images 50"):
        prepare_dataset(sources, tmp_path / "w", min_images=50)
    assert not (tmp_path / "w").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("camera,track,person\nA,1,alice\nC,2,bob\n")
    with pytest.raises(InputError, match=r"bad.csv:3: camera 'C' is not one of the given cameras"):
        read_identity_map(bad, ["A", "B"])
    bad.write_text("cam,id\n")
    with pytest.raises(InputError, match=r"bad.csv:1: expected the header"):
        read_identity_map(bad, ["A"])


def test_cli_with_cameras_and_manifest(two_cameras: tuple[list[CameraSource], Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    sources, idmap = two_cameras
    out = tmp_path / "cli"
    argv = ["prepare-data", "--crops-dir", str(sources[0].crops_dir), "--camera", "A",
            "--crops-dir", str(sources[1].crops_dir), "--camera", "B", "--identity-map", str(idmap),
            "--output-dir", str(out), "--test-ratio", "0.5"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "train" in text and "query" in text and "gallery" in text and "left out" in text
    manifest = tmp_path / "cams.yml"
    manifest.write_text(f"cameras:\n  - {{name: A, crops_dir: {sources[0].crops_dir}}}\n"
                        f"  - {{name: B, crops_dir: {sources[1].crops_dir}}}\nidentity_map: ids.csv\n")
    assert read_manifest(manifest)[1] == tmp_path / "ids.csv"
    assert main(["prepare-data", "--manifest", str(manifest), "--output-dir", str(tmp_path / "m"),
                 "--test-ratio", "0.5"]) == 0
    assert files(tmp_path / "m") == files(out)
    assert main(["prepare-data", "--crops-dir", "a", "--crops-dir", "b", "--camera", "A",
                 "--output-dir", str(tmp_path / "q")]) == 2
    assert "2 --crops-dir but 1 --camera" in capsys.readouterr().err
