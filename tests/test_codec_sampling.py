"""Codec-aware sampling: crops move off unreferenced frames, within the track, and every decoder agrees."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.builders import tiny_weights
from trackreid.embed.factory import build_embedder
from trackreid.extract import ExtractConfig, extract
from trackreid.io.mot import Tracks
from trackreid.io.video import VideoFileSource
from trackreid.sampling import SamplingConfig, assess_boxes, mot_to_xyxy, plan_samples

W, H, FRAMES = 320, 192, 120


def _random_tracks(rng: np.random.Generator, frames: int) -> Tracks:
    """Tracks of every length (1 box to the whole clip), some with gaps, some boxes tiny (unusable)."""
    rows = []
    for tid in range(1, 41):
        first = int(rng.integers(1, frames))
        last = min(frames, first + int(rng.choice([0, 3, 9, 12, 25, 60, 200])))
        for k in range(first, last + 1):
            if rng.random() < 0.15:
                continue  # a gap in the track
            h = 60.0 if rng.random() > 0.2 else 20.0  # 20 px: below min_height, usable only as a top-up
            rows.append((k, tid, float(rng.integers(1, W - 40)), float(rng.integers(1, H - 70)), 25.0, h))
    a = np.array(rows, dtype=np.float64)
    n = len(a)
    return Tracks(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2:6], np.ones(n, np.float32),
                  np.ones(n, np.float32))


def _referenced(rng: np.random.Generator, frames: int) -> np.ndarray:
    """x264-like reference structure: runs of 1-3 unreferenced B-frames between referenced frames."""
    ref = np.ones(frames, dtype=bool)
    k = 1
    while k < frames:
        run = int(rng.integers(0, 4))
        ref[k:k + run] = False
        k += run + 1
    return ref


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("strategy", ["quality", "even"])
def test_snapped_sampling_stays_in_the_track_and_never_repeats_a_frame(seed: int, strategy: str) -> None:
    rng = np.random.default_rng(seed)
    trk = _random_tracks(rng, FRAMES)
    ref = _referenced(rng, FRAMES)
    cfg = SamplingConfig(max_crops_per_track=6, strategy=strategy, max_shift=2)
    plain = plan_samples(trk, W, H, cfg)
    snapped = plan_samples(trk, W, H, cfg, referenced=ref)
    assert snapped.shift is not None and plain.shift is None
    assert snapped.stats["crops_moved_to_decoded_frames"] > 0
    q = assess_boxes(trk.frame, mot_to_xyxy(trk.xywh), W, H, cfg)
    usable_box = {(int(t), int(k)): bool(u) for t, k, u in zip(trk.track_id, trk.frame, q.usable, strict=True)}
    for tid, boxes in snapped.track_rows.items():
        mine, theirs = snapped.track_id == tid, plain.track_id == tid
        got, orig, shift = snapped.frame[mine], plain.frame[theirs], snapped.shift[mine]
        assert len(got) == len(orig)  # as many crops as without moving
        assert len(set(got.tolist())) == len(got)  # never the same frame twice in a track
        assert set(got.tolist()) <= set(boxes.tolist())  # only frames where the track has a box: inside its life
        assert np.all(np.abs(shift) <= cfg.max_shift)
        assert sorted((got - shift).tolist()) == sorted(orig.tolist())  # the shift undoes the move
        for k, d in zip(got.tolist(), shift.tolist(), strict=True):
            if usable_box[(tid, k - d)]:
                assert usable_box[(tid, k)]  # a usable crop moves to a usable box only
        taken = set(got.tolist())
        for k, d in zip(got.tolist(), shift.tolist(), strict=True):
            if ref[k - 1]:
                continue  # on a frame decoded anyway
            # left on an unreferenced frame: no free box as good on a referenced frame near where it was
            free = [j for j in range(k - d - 2, k - d + 3) if 1 <= j <= FRAMES and ref[j - 1] and j not in taken
                    and (tid, j) in usable_box and usable_box[(tid, j)] >= usable_box[(tid, k - d)]]
            assert not free, (tid, k, d, free)
    unref_frames = {int(k) for k in snapped.frame if not ref[k - 1]}
    assert snapped.stats["unreferenced_frames_decoded_for_crops"] == len(unref_frames)
    assert len(unref_frames) < len({int(k) for k in plain.frame if not ref[k - 1]})


def test_no_shift_without_reference_information_or_with_max_shift_zero() -> None:
    rng = np.random.default_rng(0)
    trk, ref = _random_tracks(rng, FRAMES), _referenced(rng, FRAMES)
    plain = plan_samples(trk, W, H, SamplingConfig())
    off = plan_samples(trk, W, H, SamplingConfig(max_shift=0), referenced=ref)
    assert np.array_equal(plain.frame, off.frame) and off.shift is None


def _stamp(img: np.ndarray, k: int) -> None:
    for b in range(7):
        img[0:24, 32 * b:32 * b + 24] = 235 if k >> b & 1 else 16


def _read_stamp(img: np.ndarray) -> int:
    return sum(1 << b for b in range(7) if img[4:20, 32 * b + 4:32 * b + 20].mean() > 128)


# Codecs with unreferenced pictures, as encoders make them by default (x264 medium: 3 B-frames
# with b-pyramid; x265: B-frames; MPEG-4 Part 2 with B-VOPs).
ENCODERS = {
    "h264-medium": ("libx264", {"preset": "medium", "g": "250", "crf": "20"}, {}),
    "hevc": ("libx265", {"preset": "fast", "x265-params": "log-level=error", "crf": "20"}, {}),
    "mpeg4-bframes": ("mpeg4", {"qscale": "3"}, {"max_b_frames": 2}),
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """One clip per encoder: frame k shows its number; 6 tracks of textured boxes that move."""
    if os.environ.get("CI") is None:
        av = pytest.importorskip("av")
    else:
        import av
    root = tmp_path_factory.mktemp("codec-sampling")
    rng = np.random.default_rng(0)
    textures = [rng.integers(0, 255, (70, 28, 3), dtype=np.uint8) for _ in range(6)]
    rows = []
    frames = []
    for k in range(1, FRAMES + 1):
        img = np.full((H, W, 3), 90, np.uint8)
        _stamp(img, k)
        for tid in range(1, 7):
            if not (tid * 8 <= k <= FRAMES - tid * 5):
                continue  # tracks begin and end at different times
            x0, y0 = 50 * (tid - 1) + k % 20, 40 + 12 * (tid % 4)  # side by side, never overlapping
            img[y0:y0 + 70, x0:x0 + 28] = textures[tid - 1]
            rows.append(f"{k},{tid},{x0 + 1},{y0 + 1},28,70,1,-1,-1,-1")
        frames.append(img)
    tracks = root / "tracks.txt"
    tracks.write_text("\n".join(rows) + "\n")
    out = {}
    for name, (codec, options, attrs) in ENCODERS.items():
        video = root / f"{name}.mp4"
        with av.open(str(video), "w") as c:
            s = c.add_stream(codec, rate=25, options=options)
            s.width, s.height, s.pix_fmt = W, H, "yuv420p"
            for a, v in attrs.items():
                setattr(s.codec_context, a, v)
            for img in frames:
                for p in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        out[name] = (video, tracks)
    return out


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_snapped_crops_are_the_same_whichever_decoder_runs(clips: dict[str, tuple[Path, Path]], name: str,
                                                          tmp_path: Path) -> None:
    video, tracks = clips[name]
    ref = VideoFileSource(video).referenced_frames()
    assert ref is not None and len(ref) == FRAMES and 0 < int((~ref).sum()) < FRAMES
    emb = build_embedder(tiny_weights(tmp_path / "tiny.safetensors"), device="cpu", backend="torch", batch_size=8)
    cfg = SamplingConfig(max_crops_per_track=12)
    fast = extract(video, tracks, emb, None, ExtractConfig(sampling=cfg))  # PyAV, unreferenced frames skipped
    full = extract(video, tracks, emb, None, ExtractConfig(sampling=cfg, seek=False))  # OpenCV, every frame
    plain = extract(video, tracks, emb, None, ExtractConfig(sampling=SamplingConfig(12, max_shift=0)))
    assert np.array_equal(fast.features.frame_indices, full.features.frame_indices)
    assert np.allclose(fast.features.all_features, full.features.all_features, atol=1e-5)
    st = fast.metadata["stats"]
    assert st["crops_moved_to_decoded_frames"] > 0
    assert st["crops_on_unreferenced_frames"] < plain.metadata["stats"]["crops_embedded"] // 4
    assert st["frames_decoded"] < plain.metadata["stats"]["frames_decoded"]
    # decoded: the referenced frames up to the last crop, and the unreferenced frames crops still need
    last = int(fast.features.frame_indices.max())
    assert st["frames_decoded"] <= int(ref[:last].sum()) + st["unreferenced_frames_decoded_for_crops"]
    moved = 0
    for entry in fast.metadata["tracks"].values():
        assert len(entry["frame_shifts"]) == entry["num_crops"]
        moved += sum(d != 0 for d in entry["frame_shifts"])
        for k in entry["frame_indices"]:
            assert entry["first_frame"] <= k <= entry["last_frame"]
    assert moved == st["crops_moved_to_decoded_frames"]
    wanted = sorted(set(fast.features.frame_indices.tolist()))
    for k, img in VideoFileSource(video).frames(wanted):
        assert _read_stamp(img) == k  # the frames numbered as the tracks file numbers them


def test_a_repeated_box_never_gives_a_track_two_crops_of_one_frame() -> None:
    """A tracks file may repeat a (track, frame) box; a moved crop never lands on a frame already cropped."""
    frames = np.repeat(np.arange(1, 41), 2)  # every box twice
    n = len(frames)
    xywh = np.tile([10.0, 10.0, 30.0, 80.0], (n, 1))
    trk = Tracks(frames.astype(np.int64), np.ones(n, np.int64), xywh, np.ones(n, np.float32), np.ones(n, np.float32))
    ref = np.arange(1, 41) % 3 == 0  # two unreferenced frames out of three
    plain = plan_samples(trk, W, H, SamplingConfig(max_crops_per_track=20))
    snapped = plan_samples(trk, W, H, SamplingConfig(max_crops_per_track=20), referenced=ref)
    assert snapped.stats["crops_moved_to_decoded_frames"] > 0
    moved = snapped.frame[snapped.shift != 0]
    assert len(set(moved.tolist())) == len(moved)
    assert not set(moved.tolist()) & set(snapped.frame[snapped.shift == 0].tolist())
    assert len(snapped) == len(plain)
