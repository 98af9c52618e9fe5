"""Offline extract decodes less: crops converted from YUV, unreferenced H.264 pictures skipped, exact numbering."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.builders import tiny_weights
from trackreid.embed.factory import build_embedder
from trackreid.extract import ExtractConfig, extract
from trackreid.io.video import VideoFileSource
from trackreid.sampling import SamplingConfig

FRAMES, W, H = 90, 320, 192


def _stamp(img: np.ndarray, k: int) -> None:
    """Frame number k as 7 black/white blocks along the top (survives lossy coding)."""
    for b in range(7):
        img[0:24, 32 * b:32 * b + 24] = 235 if k >> b & 1 else 16


def _read_stamp(img: np.ndarray) -> int:
    return sum(1 << b for b in range(7) if img[4:20, 32 * b + 4:32 * b + 20].mean() > 128)


@pytest.fixture(scope="module")
def h264(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An H.264 clip with B-frames (x264 veryfast: 3 B-frames, some unreferenced) whose frame k shows
    its number, a textured person box per track, and its MOT tracks."""
    if os.environ.get("CI") is None:
        av = pytest.importorskip("av")
    else:
        import av
    root = tmp_path_factory.mktemp("h264")
    video, tracks = root / "clip.mp4", root / "tracks.txt"
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (80, 30, 3), dtype=np.uint8)
    rows = []
    with av.open(str(video), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"g": "30", "preset": "veryfast", "crf": "18"})
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for k in range(1, FRAMES + 1):
            img = np.full((H, W, 3), 90, np.uint8)
            _stamp(img, k)
            for tid in (1, 2, 3):
                x0, y0 = 10 + 90 * (tid - 1) + k % 13, 40 + 7 * tid
                img[y0:y0 + 80, x0:x0 + 30] = texture
                rows.append(f"{k},{tid},{x0 + 1},{y0 + 1},30,80,1,-1,-1,-1")
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    tracks.write_text("\n".join(rows) + "\n")
    return video, tracks


def test_skipped_pictures_keep_exact_numbering_and_crops_match_whole_frames(h264: tuple[Path, Path]) -> None:
    video, _ = h264
    wanted = [2, 7, 8, 31, 47, 60, 89]
    fast = VideoFileSource(video)
    whole = dict(VideoFileSource(video, seek=False).frames(wanted))  # OpenCV, every frame decoded
    got = list(fast.pictures(wanted))
    assert [k for k, _ in got] == wanted
    assert fast.frames_skipped > 0 and fast.frames_read + fast.frames_skipped <= FRAMES
    rng = np.random.default_rng(1)
    for k, pic in got:
        assert _read_stamp(pic.bgr()) == k  # the right frame
        assert np.array_equal(pic.bgr(), whole[k])
        for _ in range(20):  # any box, odd or even edges: the crop's pixels are the whole frame's
            x0, x1 = sorted(rng.choice(W + 1, 2, replace=False))
            y0, y1 = sorted(rng.choice(H + 1, 2, replace=False))
            assert np.array_equal(pic.crop(x0, y0, x1, y1), whole[k][y0:y1, x0:x1])


def test_extract_on_h264_equals_the_full_pass(h264: tuple[Path, Path], tmp_path: Path) -> None:
    video, tracks = h264
    emb = build_embedder(tiny_weights(tmp_path / "tiny.safetensors"), device="cpu", backend="torch", batch_size=8)
    cfg = SamplingConfig(max_crops_per_track=6)
    fast = extract(video, tracks, emb, None, ExtractConfig(sampling=cfg))
    full = extract(video, tracks, emb, None, ExtractConfig(sampling=cfg, seek=False))
    assert np.array_equal(fast.features.frame_indices, full.features.frame_indices)
    assert np.allclose(fast.features.all_features, full.features.all_features, atol=1e-5)
    assert fast.metadata["stats"]["frames_skipped_unreferenced"] > 0
    assert full.metadata["stats"]["frames_skipped_unreferenced"] == 0
    assert set(fast.metadata["timing"]["stages_seconds"]) >= {"decode", "convert", "crop", "embed"}
