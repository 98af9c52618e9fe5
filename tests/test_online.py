"""Online extraction: the same crops and outputs as extract, embedded during the loop, flat memory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.builders import Scene, make_index_scene, tiny_weights
from trackreid.embed.factory import build_embedder
from trackreid.errors import InputError
from trackreid.extract import ExtractConfig, extract
from trackreid.io.features import safe_pickle_load
from trackreid.io.mot import read_mot
from trackreid.online import OnlineCollector, OnlineConfig
from trackreid.sampling import SamplingConfig


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return build_embedder(tiny_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors"), device="cpu",
                          backend="torch", batch_size=8)


def _replay(folder: Path, tracks_path: Path, collector: OnlineCollector) -> None:
    """A tracking loop: frames in order, each with its tracks (here read from a MOT file)."""
    tracks = read_mot(tracks_path)
    for k, path in enumerate(sorted(folder.iterdir()), start=1):
        collector.update_mot(k, cv2.imread(str(path)), tracks)


def test_online_gives_offline_crops_on_real_mot17(shared_data: Path, msmt_pth: Path) -> None:
    """Real frames and ground truth: tracks with at most 2N boxes get exactly the offline crops and
    features (MOT17-05: 6 frames); longer ones nearby frames and close features (MOT17-04: 8 frames)."""
    emb = build_embedder(msmt_pth, device="cpu", backend="torch", batch_size=32)
    n = 3
    sampling = SamplingConfig(max_crops_per_track=n)
    exact = close = 0
    for name in ("MOT17-05-FRCNN", "MOT17-04-FRCNN"):
        seq = shared_data / "mot17-mini" / "train" / name
        gt = seq / "gt" / "gt.txt"
        off = extract(seq / "img1", gt, emb, None, ExtractConfig(sampling=sampling))
        col = OnlineCollector(emb, None, OnlineConfig(sampling=sampling, idle_frames=2), tracks_file=str(gt))
        _replay(seq / "img1", gt, col)
        on = col.finish()
        a, b = off.features, on.features
        assert a.track_ids.tolist() == b.track_ids.tolist()
        for i, tid in enumerate(a.track_ids):
            fa, fb = a.frames_of(i), b.frames_of(i)
            assert len(fb) == len(fa)
            if off.metadata["tracks"][str(tid)]["num_frames"] <= 2 * n:  # every box a candidate: the same choice
                assert fa.tolist() == fb.tolist()
                assert np.allclose(a.crops_of(i), b.crops_of(i), atol=1e-4)
                exact += 1
            else:
                assert np.abs(fa - fb).max() <= 2  # the candidate grid has a step of 2 here
                close += 1
        cos = np.sum(a.features * b.features, axis=1)
        assert cos.min() > 0.95 and np.median(cos) > 0.99
        assert set(on.metadata) == set(off.metadata)
        for tid, entry in off.metadata["tracks"].items():
            got = on.metadata["tracks"][tid]
            assert (got["num_frames"], got["first_frame"], got["last_frame"]) == (
                entry["num_frames"], entry["first_frame"], entry["last_frame"])
        assert on.metadata["stats"]["crops_embedded"] == len(b.frame_indices)  # only chosen crops were embedded
    assert exact >= 8 and close >= 20  # both cases are exercised


@pytest.fixture(scope="module")
def short_scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    # lengths 10, 16, 19 with 10 crops per track: at most 2 x 10 boxes, so online = offline exactly
    return make_index_scene(tmp_path_factory.mktemp("short"), frames=30, tracks={1: (1, 10), 2: (5, 20), 3: (12, 30)})


def test_online_writes_exactly_what_extract_writes(short_scene: Scene, tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = SamplingConfig(max_crops_per_track=10)
    extract(short_scene.folder, short_scene.tracks, tiny, tmp_path / "off", ExtractConfig(sampling=cfg,
                                                                                          save_crops=True))
    col = OnlineCollector(tiny, tmp_path / "on", OnlineConfig(sampling=cfg, save_crops=True, idle_frames=3),
                          source=str(short_scene.folder), tracks_file=str(short_scene.tracks))
    tracks = read_mot(short_scene.tracks)
    for k, path in enumerate(sorted(short_scene.folder.iterdir()), start=1):
        col.update_mot(k, cv2.imread(str(path)), tracks)
        if k == 20:  # track 1 ended at frame 10 (idle for 3 frames): its 10 crops are chosen, one batch embedded
            assert len(col.tracks[1].candidates()) == 10
            assert sum(c.feature is not None for c in col.tracks[1].candidates()) == 8
    col.finish()
    off, on = tmp_path / "off", tmp_path / "on"
    files = sorted(p.relative_to(off).as_posix() for p in off.rglob("*"))
    assert files == sorted(p.relative_to(on).as_posix() for p in on.rglob("*"))
    for f in files:
        if f.endswith(".jpg"):
            assert (off / f).read_bytes() == (on / f).read_bytes()
    pa, pb = safe_pickle_load(off / "track_features.pkl"), safe_pickle_load(on / "track_features.pkl")
    assert sorted(pa) == sorted(pb) == [1, 2, 3]
    for tid in pa:
        assert pa[tid]["frame_indices"] == pb[tid]["frame_indices"]
        assert np.allclose(pa[tid]["all_features"], pb[tid]["all_features"], atol=1e-5)
        assert np.allclose(pa[tid]["features"], pb[tid]["features"], atol=1e-5)
    ma = json.loads((off / "track_metadata.json").read_text())
    mb = json.loads((on / "track_metadata.json").read_text())
    assert set(ma) == set(mb)
    assert set(ma["stats"]) <= set(mb["stats"])
    assert ma["tracks"] == mb["tracks"]
    assert mb["video"]["kind"] == "stream" and set(mb["video"]) == set(ma["video"])


def test_a_track_that_comes_back_keeps_consistent_crops(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    scene = make_index_scene(tmp_path / "s", frames=40, tracks={1: (1, 40), 2: (1, 40)})
    rows = [r for r in scene.tracks.read_text().splitlines() if not (r.split(",")[1] == "1" and
                                                                     12 <= int(r.split(",")[0]) <= 25)]
    gappy = tmp_path / "gappy.txt"
    gappy.write_text("\n".join(rows) + "\n")
    col = OnlineCollector(tiny, tmp_path / "o", OnlineConfig(sampling=SamplingConfig(4), save_crops=True,
                                                             idle_frames=5))
    _replay(scene.folder, gappy, col)
    res = col.finish()
    entry = res.metadata["tracks"]["1"]
    assert entry["num_frames"] == 26 and entry["num_crops"] == 4
    written = sorted(p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o/crops/track_0001").iterdir())
    assert written == sorted(entry["crops"])
    assert entry["frame_indices"] == sorted(entry["frame_indices"]) and entry["frame_indices"][-1] > 25


def test_bad_frames_are_refused(tiny) -> None:  # type: ignore[no-untyped-def]
    col = OnlineCollector(tiny)
    img = np.zeros((60, 80, 3), np.uint8)
    col.update(1, img, [[1, 10, 5, 30, 55]])
    with pytest.raises(InputError, match="increasing order"):
        col.update(1, img, [])
    with pytest.raises(InputError, match="80x60"):
        col.update(2, np.zeros((61, 80, 3), np.uint8), [])
    with pytest.raises(InputError, match="BGR uint8"):
        col.update(3, np.zeros((60, 80), np.uint8), [])
    assert col.finish().features.track_ids.tolist() == [1]


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident set size from /proc")
def test_memory_stays_flat_over_a_long_stream(tiny) -> None:  # type: ignore[no-untyped-def]
    """20,000 frames, 4 people at a time, 100 tracks: what is held grows with the tracks' embeddings
    (a few hundred bytes per crop), not with frames (18 KB each) or crops (96 KB each)."""
    frames, life, step = 20_000, 800, 200
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (96, 64, 3), dtype=np.uint8)
    col = OnlineCollector(tiny, None, OnlineConfig(sampling=SamplingConfig(4), idle_frames=10))
    marks = {}
    for k in range(1, frames + 1):
        first = max(0, (k - life) // step + 1)
        rows = [[t, 2 + 10 * (t % 4), 2 + k % 40, 2 + 10 * (t % 4) + 20, 2 + k % 40 + 45]
                for t in range(first, (k - 1) // step + 1)]
        col.update(k, img.copy(), rows)  # a fresh frame each time, as a decoder gives
        if k in (4_000, frames):
            marks[k] = _rss()
    res = col.finish()
    assert len(res.features) == frames // step
    growth = marks[frames] - marks[4_000]
    # 80 more finished tracks x 4 embeddings: ~0.2 MB. Holding every frame would add 295 MB, holding
    # the crops of finished tracks 31 MB.
    print(f"RSS growth from frame 4,000 to {frames:,}: {growth / 1e6:.2f} MB")
    assert growth < 15_000_000, growth
