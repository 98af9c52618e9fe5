"""The clip matrix of extract_bench.py: one scene of real people, encoded as others encode.

The scene: a real MOT17-04 frame as the background, panning slowly (global motion, so every
frame costs the decoder something), and real CUHK03 person crops (val split) walking across
it with exact MOT tracks (the walkers of :mod:`trackreid.sample`). Dense: people cross in
about 8 s, 2.5 new tracks a second (300 tracks in 2 minutes, about 20 people in a frame, as
in issue 23); sparse: 20 people walking the whole clip. Each (size, density) scene is rendered
once and piped to every encoder it needs (ffmpeg, the Debian build); clips are cached.

Encoders: x264 at its defaults for others' footage (preset medium: 3 B-frames with
b-pyramid, keyframe every 250), veryfast, ultrafast (no B-frames), keyframe every 30; HEVC
(x265 fast), MPEG-4 Part 2 with 2 B-frames, VP9 (libvpx realtime).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ENCODERS: dict[str, tuple[str, list[str]]] = {
    "x264-medium-g250": ("mp4", ["-c:v", "libx264", "-preset", "medium", "-g", "250"]),
    "x264-veryfast-g250": ("mp4", ["-c:v", "libx264", "-preset", "veryfast", "-g", "250"]),
    "x264-ultrafast-g250": ("mp4", ["-c:v", "libx264", "-preset", "ultrafast", "-g", "250"]),
    "x264-medium-g30": ("mp4", ["-c:v", "libx264", "-preset", "medium", "-g", "30"]),
    "hevc-fast": ("mp4", ["-c:v", "libx265", "-preset", "fast", "-x265-params", "log-level=error"]),
    "mpeg4-bf2": ("mp4", ["-c:v", "mpeg4", "-q:v", "4", "-bf", "2"]),
    "vp9-realtime": ("webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "6M",
                              "-row-mt", "1"]),
}
DENSITIES = ("dense", "sparse")


@dataclass(frozen=True)
class Cell:
    encoder: str
    height: int
    density: str
    seconds: float

    @property
    def name(self) -> str:
        return f"{self.encoder}-{self.height}p-{self.density}-{self.seconds:g}s"

    def paths(self, cache: Path) -> tuple[Path, Path]:
        ext = ENCODERS[self.encoder][0]
        scene = f"scene-{self.height}p-{self.density}-{self.seconds:g}s"
        return cache / f"{self.name}.{ext}", cache / f"{scene}.txt"


def quick_cells(seconds: float) -> list[Cell]:
    """The default matrix: every encoder at 1080p dense, plus 720p dense and 1080p sparse for x264 medium."""
    cells = [Cell(e, 1080, "dense", seconds) for e in ENCODERS]
    return cells + [Cell("x264-medium-g250", 720, "dense", seconds), Cell("x264-medium-g250", 1080, "sparse", seconds)]


def full_cells(seconds: float) -> list[Cell]:
    return [Cell(e, h, d, seconds) for e in ENCODERS for h in (720, 1080) for d in DENSITIES]


def _scene(data: Path, height: int, density: str, seconds: float):  # type: ignore[no-untyped-def]
    """Yield (BGR frame, MOT rows of that frame)."""
    from trackreid.sample import _walkers

    fps = 25
    width = height * 16 // 9
    frames = int(round(seconds * fps))
    rng = np.random.default_rng(7)
    dense = density == "dense"
    people = int(round(2.5 * seconds)) if dense else 20
    walkers = _walkers(width, height, frames, people, rng, 8 * fps if dense else None)
    crops = sorted((data / "cuhk03" / "val").glob("*.jpg"))
    looks = []
    for w in walkers:
        img = cv2.imread(str(crops[(w.track_id * 37) % len(crops)]))
        h = int(w.height * 0.8)  # walkers are 35-60 % of the height; real crops a bit smaller
        looks.append(cv2.resize(img, (max(8, h * img.shape[1] // img.shape[0]), h), interpolation=cv2.INTER_LINEAR))
    bg_src = cv2.imread(str(data / "mot17-mini" / "train" / "MOT17-04-FRCNN" / "img1" / "000001.jpg"))
    pad = width // 20
    bg = cv2.resize(bg_src, (width + 2 * pad, height + 2 * pad), interpolation=cv2.INTER_AREA)
    for k in range(1, frames + 1):
        ox = int(pad * (1 + np.sin(2 * np.pi * k / (10 * fps))))  # a slow pan: global motion
        img = bg[pad // 2:pad // 2 + height, ox:ox + width].copy()
        rows = []
        alive = []
        for w, look in zip(walkers, looks, strict=True):
            if w.first_frame <= k <= w.last_frame:
                t = k - w.first_frame
                alive.append((w.start[1] + w.velocity[1] * t, w.start[0] + w.velocity[0] * t, w, look))
        for bottom, x, w, look in sorted(alive, key=lambda a: a[0]):  # far (higher) first: nearer ones occlude
            h, wd = look.shape[:2]
            x0, y0 = int(round(x)), int(round(bottom)) - h
            cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(width, x0 + wd), min(height, y0 + h)
            if cx1 - cx0 < 2 or cy1 - cy0 < 2:
                continue
            img[cy0:cy1, cx0:cx1] = look[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
            rows.append(f"{k},{w.track_id},{x0 + 1},{y0 + 1},{wd},{h},1,-1,-1,-1")
        yield img, rows


def make_clips(cells: list[Cell], cache: Path, data: Path) -> None:
    """Render each scene once and encode every missing clip of ``cells`` from it."""
    cache.mkdir(parents=True, exist_ok=True)
    scenes: dict[tuple[int, str, float], list[Cell]] = {}
    for c in cells:
        if not c.paths(cache)[0].is_file():
            scenes.setdefault((c.height, c.density, c.seconds), []).append(c)
    for (height, density, seconds), todo in scenes.items():
        width = height * 16 // 9
        procs = []
        for c in todo:
            video = c.paths(cache)[0]
            cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
                   "-s", f"{width}x{height}", "-r", "25", "-i", "-", *ENCODERS[c.encoder][1], "-pix_fmt", "yuv420p",
                   str(video.with_suffix(".tmp" + video.suffix))]
            procs.append((subprocess.Popen(cmd, stdin=subprocess.PIPE), video))
        rows: list[str] = []
        print(f"rendering {width}x{height} {density} {seconds:g} s for {', '.join(c.encoder for c in todo)}",
              flush=True)
        for img, frame_rows in _scene(data, height, density, seconds):
            for p, _ in procs:
                assert p.stdin is not None
                p.stdin.write(img.tobytes())
            rows += frame_rows
        for p, video in procs:
            assert p.stdin is not None
            p.stdin.close()
            if p.wait():
                raise SystemExit(f"ffmpeg failed for {video}")
            video.with_suffix(".tmp" + video.suffix).replace(video)
        todo[0].paths(cache)[1].write_text("\n".join(rows) + "\n")
