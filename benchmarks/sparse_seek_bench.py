"""Sparse samples: keyframe seeks (PyAV, timestamps checked) against the forward pass.

    python benchmarks/sparse_seek_bench.py [VIDEO]

VIDEO defaults to a 60 s 1080p H.264 video of extract_bench.py's street scene
(runs/bench/street_60s_16p.mp4, a keyframe every 250 frames; generated on first use). Both paths return the same
frames; the script checks the pixels are identical.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from trackreid.io.video import VideoFileSource  # noqa: E402


def main() -> None:
    if len(sys.argv) > 1:
        video = Path(sys.argv[1])
    else:
        from extract_bench import CACHE, make_video

        video = make_video(60, 16, CACHE / "street_60s_16p.mp4")[0]
    print(f"video: {video.name}")
    print("| wanted frames | forward s | frames decoded | seek s | frames decoded | speed-up |")
    print("|---|---|---|---|---|---|")
    for wanted in ([760], [3, 1499, 1500], [10, 20, 30, 40], [251, 252, 500]):
        results = []
        for seek in (False, True):
            src = VideoFileSource(video, seek=seek)
            t = time.perf_counter()
            frames = list(src.frames(wanted))
            results.append((time.perf_counter() - t, src.frames_read, frames))
        (tf, nf, ff), (ts, ns, fs) = results
        assert [k for k, _ in ff] == [k for k, _ in fs] == wanted
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(ff, fs, strict=True))
        print(f"| {wanted} | {tf:.2f} | {nf} | {ts:.2f} | {ns} | {tf / ts:.1f}x |")


if __name__ == "__main__":
    main()
