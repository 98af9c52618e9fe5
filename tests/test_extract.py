"""extract: right frames and pixels, even sampling, the seed's outputs, bad input, real MOT17 frames."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.builders import Scene, make_index_scene, tiny_weights, track_colour
from trackreid.cli.main import main
from trackreid.embed.factory import build_embedder
from trackreid.errors import InputError, OutputError
from trackreid.extract import ExtractConfig, crop_name, extract
from trackreid.io.features import read_features, safe_pickle_load
from trackreid.sampling import SamplingConfig

EVEN = SamplingConfig(max_crops_per_track=5, strategy="even")


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return make_index_scene(tmp_path_factory.mktemp("scene"))


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")


@pytest.fixture(scope="module")
def embedder(weights: Path):  # type: ignore[no-untyped-def]
    return build_embedder(weights, device="cpu", backend="torch", batch_size=7)


def test_crops_come_from_the_right_frames_and_pixels(scene: Scene, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = extract(scene.folder, scene.tracks, embedder, tmp_path / "out",
                  ExtractConfig(sampling=EVEN, save_crops=True))
    crops = tmp_path / "out" / "crops"
    seen = 0
    for i, tid in enumerate(res.features.track_ids):
        for ordinal, frame in enumerate(res.features.frames_of(i)):
            path = crops / crop_name(int(tid), int(frame), ordinal)
            img = cv2.imread(str(path))
            x0, y0, x1, y1 = scene.boxes[(int(tid), int(frame))]
            assert img.shape[:2] == (y1 - y0, x1 - x0)
            centre = img[img.shape[0] // 2, img.shape[1] // 2].astype(int)
            assert np.abs(centre - track_colour(int(tid), int(frame))).max() <= 3  # JPEG q95
            seen += 1
    assert seen == sum(len(list(d.iterdir())) for d in crops.iterdir()) == 15
    assert (crops / "track_0001" / "frame_000001_000.jpg").is_file()


def test_sampling_is_even_over_the_track(scene: Scene, embedder) -> None:  # type: ignore[no-untyped-def]
    res = extract(scene.folder, scene.tracks, embedder, None, ExtractConfig(sampling=EVEN))
    frames = {int(t): res.features.frames_of(i).tolist() for i, t in enumerate(res.features.track_ids)}
    assert frames[1] == [1, 8, 15, 23, 30]  # nearest to 1, 8.25, 15.5, 22.75, 30 (ties go to the earlier)
    assert frames[2] == [5, 9, 12, 16, 20]
    assert frames[3] == [10, 15, 20, 25, 30]


def test_outputs_have_the_seed_structure(scene: Scene, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    extract(scene.folder, scene.tracks, embedder, out, ExtractConfig(sampling=EVEN), command={"x": 1})
    data = safe_pickle_load(out / "track_features.pkl")
    assert sorted(data) == [1, 2, 3]
    assert all(type(k) is int for k in data)  # plain int, as the seed's code indexes it (not numpy.int64)
    for entry in data.values():
        assert set(entry) == {"features", "all_features", "frame_indices"}
        f, allf = entry["features"], entry["all_features"]
        assert f.dtype == np.float32 and f.shape == (128,)
        assert allf.dtype == np.float32 and allf.shape == (5, 128)
        assert np.allclose(np.linalg.norm(allf, axis=1), 1, atol=1e-5)
        mean = allf.mean(0)
        assert np.allclose(f, mean / np.linalg.norm(mean), atol=1e-6)
        assert all(type(i) is int for i in entry["frame_indices"])
    npz = read_features(out / "track_features.npz")
    assert np.array_equal(npz.features[0], data[1]["features"])
    meta = json.loads((out / "track_metadata.json").read_text())
    t1 = meta["tracks"]["1"]
    assert (t1["num_frames"], t1["num_crops"], t1["first_frame"], t1["last_frame"]) == (30, 5, 1, 30)
    assert meta["model"]["arch"] == "osnet_tiny" and len(meta["model"]["weights_sha256"]) == 64
    assert meta["video"]["frame_count"] == 30 and meta["command"] == {"x": 1}
    assert "L2-normalised" in meta["features"]["normalization"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left
    umask = os.umask(0)
    os.umask(umask)
    for name in ("track_features.npz", "track_features.pkl", "track_metadata.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_video_file_and_frame_folder_give_identical_results(scene: Scene, embedder) -> None:  # type: ignore[no-untyped-def]
    a = extract(scene.folder, scene.tracks, embedder, None, ExtractConfig(sampling=EVEN)).features
    b = extract(scene.video, scene.tracks, embedder, None, ExtractConfig(sampling=EVEN)).features
    assert np.array_equal(a.frame_indices, b.frame_indices)
    assert np.allclose(a.all_features, b.all_features, atol=1e-6)


def test_frames_are_counted_from_one_in_decoding_order(scene: Scene) -> None:
    from trackreid.io.video import FrameSource

    forward = FrameSource.open(scene.video, seek=False)
    got = [(k, int(img[0, 0, 0])) for k, img in forward.frames([3, 1, 17, 30])]
    assert got == [(1, 1), (3, 3), (17, 17), (30, 30)]
    assert forward.frames_read == 30
    seeking = FrameSource.open(scene.video)  # OpenCV writes FFV1 with a keyframe every 12 frames
    assert [(k, int(img[0, 0, 0])) for k, img in seeking.frames([3, 1, 17, 30])] == got
    assert seeking.frames_read < forward.frames_read  # 14 of 30 here


def test_boxes_outside_and_past_the_end_are_clipped_skipped_and_counted(scene: Scene, embedder,  # type: ignore[no-untyped-def]
                                                                         tmp_path: Path) -> None:
    tracks = tmp_path / "t.txt"
    tracks.write_text(
        "1 7 -9 -9 20 40 1\n"  # partly outside: 0-based x -10..10, y -10..30 -> 10x30
        "2 7 150 100 30 30 1\n"  # x 149..179, y 99..129 -> clipped to 11x21
        "3 8 200 200 10 10 1\n"  # wholly outside: skipped, counted
        "99 9 10 10 20 40 1\n"  # past the last frame (30)
        "4 -1 10 10 20 40 1\n"  # unconfirmed track: dropped, counted
    )
    res = extract(scene.folder, tracks, embedder, tmp_path / "o", ExtractConfig(sampling=EVEN, save_crops=True))
    st = res.metadata["stats"]
    assert (st["boxes_empty_after_clipping"], st["boxes_past_end_of_video"], st["dropped_negative_id"]) == (1, 1, 1)
    assert res.features.track_ids.tolist() == [7]
    assert cv2.imread(str(tmp_path / "o/crops/track_0007/frame_000001_000.jpg")).shape[:2] == (30, 10)
    assert "skipped" in res.metadata["tracks"]["8"]


@pytest.mark.parametrize(("content", "message"), [
    ("", "holds no rows"),
    ("1,1,10,10\n", r"tracks.txt:1: expected 6 to 10 values"),
    ("1,1,10,10,20,40\n2,1,abc,10,20,40\n", r"tracks.txt:2: 'abc' is not a number"),
    ("1,1,10,10,20,40\n2,1,10,10,20,40,1\n", r"tracks.txt:2: 7 values, but earlier rows have 6"),
    ("0,1,10,10,20,40\n", r"frame 0 < 1.*--frame-offset 1"),
])
def test_bad_tracks_files(scene: Scene, embedder, tmp_path: Path, content: str, message: str) -> None:  # type: ignore[no-untyped-def]
    tracks = tmp_path / "tracks.txt"
    tracks.write_text(content)
    with pytest.raises(InputError, match=message):
        extract(scene.folder, tracks, embedder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_videos(scene: Scene, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="no such video file"):
        extract(tmp_path / "missing.mp4", scene.tracks, embedder)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(InputError, match="cannot open as a video"):
        extract(junk, scene.tracks, embedder)
    broken = tmp_path / "img1"
    shutil.copytree(scene.folder, broken)
    (broken / "000012.png").write_bytes(b"garbage")
    with pytest.raises(InputError, match=r"000012.png: cannot be read as an image"):
        extract(broken, scene.tracks, embedder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_video_that_fails_mid_stream(scene: Scene, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = scene.video.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"decoding stopped at frame \d+ but the file says it has 30 frames"):
        extract(cut, scene.tracks, embedder, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_outputs_are_never_clobbered_or_half_written(scene: Scene, embedder, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        extract(scene.folder, scene.tracks, embedder, afile)
    out = tmp_path / "out"
    extract(scene.folder, scene.tracks, embedder, out, ExtractConfig(sampling=EVEN))
    before = (out / "track_features.pkl").read_bytes()
    with pytest.raises(OutputError, match="--overwrite"):
        extract(scene.folder, scene.tracks, embedder, out)

    def disk_full(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OutputError, match="disk is full"):
        extract(scene.folder, scene.tracks, embedder, out, ExtractConfig(overwrite=True, save_crops=True))
    assert (out / "track_features.pkl").read_bytes() == before  # the old result is intact
    assert sorted(p.name for p in out.iterdir()) == ["track_features.npz", "track_features.pkl",
                                                     "track_metadata.json"]


def test_cli_extract_and_one_line_errors(scene: Scene, weights: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    args = ["extract", "--source", str(scene.video), "--tracks", str(scene.tracks), "--reid-model", str(weights),
            "--output-dir", str(tmp_path / "o"), "--save-crops", "--max-crops-per-track", "3", "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "EXTRACTION SUMMARY" in out and "Total tracks:       3" in out and "Feature dimension:  128" in out
    assert len(list((tmp_path / "o/crops/track_0002").iterdir())) == 3
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--overwrite" in err
    assert main([*args[:4], str(tmp_path / "nope.txt"), *args[5:], "--overwrite"]) == 2
    assert "no such tracks file" in capsys.readouterr().err


def test_demo_without_weights_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    import trackreid.cli.demo as demo

    monkeypatch.setattr(demo, "find_weights", lambda: None)
    assert main(["demo", "--output-dir", str(tmp_path), "-q"]) == 0
    out = capsys.readouterr().out
    assert "UNTRAINED" in out and "trackreid models download" in out and "Total tracks:       6" in out


def test_real_mot17_crops_are_closest_to_their_own_track(shared_data: Path, msmt_pth: Path) -> None:
    """Real frames, real gt tracks, real weights: how often is a crop nearest its own track's mean?"""
    emb = build_embedder(msmt_pth, device="cpu", backend="torch")
    hits = total = 0
    for seq in sorted((shared_data / "mot17-mini" / "train").iterdir()):
        tf = extract(seq / "img1", seq / "gt" / "gt.txt", emb, None).features
        track_of = tf.crop_track_index()
        nearest = np.argmax(tf.all_features @ tf.features.T, axis=1)
        hits += int((nearest == track_of).sum())
        total += len(track_of)
    rate = hits / total
    print(f"MOT17-mini: {hits}/{total} crops nearest to their own track mean ({rate:.1%})")
    assert total > 500
    assert rate >= 0.9


def test_sparse_samples_seek_by_keyframe_and_get_the_same_frames(scene: Scene, tmp_path: Path) -> None:
    """H.264 with a keyframe every 10 frames: a few wanted frames are reached by seeking."""
    import av

    from trackreid.io.video import VideoFileSource

    video = tmp_path / "gop10.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"g": "10", "bf": "2", "crf": "10"})
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for png in sorted(scene.folder.iterdir()):
            for packet in stream.encode(av.VideoFrame.from_ndarray(cv2.imread(str(png)), format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    wanted = [3, 27]  # 2 of 3 groups: not worth seeking; [27] alone: 1 of 3 groups
    seeking, forward = VideoFileSource(video, seek=True), VideoFileSource(video, seek=False)
    a = list(seeking.frames([27]))
    b = list(forward.frames([27]))
    assert [k for k, _ in a] == [k for k, _ in b] == [27]
    assert np.array_equal(a[0][1], b[0][1])
    assert abs(int(a[0][1][0, 0, 0]) - 27) <= 3  # the background encodes the frame number
    assert seeking.frames_read < 10 < forward.frames_read  # only the last group was decoded
    c = list(VideoFileSource(video, seek=True).frames(wanted))
    assert [k for k, _ in c] == wanted
