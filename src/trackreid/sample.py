"""A small synthetic street scene with exact MOT tracks, for the demo and the docs.

Drawn, not filmed: it contains no third-party pixels, so pictures made from it may be
committed and published. People are simple figures (head, shirt, trousers, a bag for some)
with distinct colours and patterns, walking across a textured background; two of them cross
so that occlusion happens. The tracks file is exact (we drew the boxes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from trackreid.errors import OutputError
from trackreid.io.atomic import atomic_path

Look = tuple[tuple[int, int, int], tuple[int, int, int], str]  # (shirt BGR, trousers BGR, pattern)

PALETTE: list[Look] = [
    ((40, 40, 200), (60, 40, 20), "plain"),
    ((200, 120, 30), (30, 30, 30), "stripes"),
    ((40, 180, 40), (120, 110, 100), "plain"),
    ((30, 200, 230), (80, 50, 40), "check"),
    ((180, 60, 160), (40, 40, 40), "stripes"),
    ((230, 230, 230), (150, 90, 40), "plain"),
    ((20, 100, 240), (50, 60, 70), "check"),
    ((120, 200, 200), (30, 30, 90), "stripes"),
]


@dataclass(frozen=True)
class Walker:
    track_id: int
    start: tuple[float, float]  # (x, bottom y) at the first frame
    velocity: tuple[float, float]  # pixels per frame
    height: int
    first_frame: int
    last_frame: int
    style: int


def _walkers(width: int, height: int, frames: int, n: int, rng: np.random.Generator) -> list[Walker]:
    out = []
    for i in range(n):
        h = int(rng.integers(int(height * 0.35), int(height * 0.6)))
        left_to_right = i % 2 == 0
        x0 = -0.2 * h if left_to_right else width + 0.1 * h
        speed = (width + 0.5 * h) / (frames * rng.uniform(0.7, 1.0))
        vx = speed if left_to_right else -speed
        bottom = float(rng.uniform(height * 0.6, height * 0.98))
        first = int(rng.integers(1, max(2, frames // 4)))
        vy = float(rng.uniform(-0.15, 0.15))
        out.append(Walker(i + 1, (x0, bottom), (vx, vy), h, first, frames, i % len(PALETTE)))
    return out


def draw_background(width: int, height: int, rng: np.random.Generator,
                    wall: tuple[int, int, int] = (190, 170, 150),
                    pavement: tuple[int, int, int] = (110, 115, 120)) -> np.ndarray:
    """A wall over a paved floor with joints and pixel noise (BGR)."""
    bg = np.empty((height, width, 3), np.uint8)
    bg[: height // 3] = wall
    bg[height // 3:] = pavement
    for x in range(0, width, 40):  # paving joints
        cv2.line(bg, (x, height // 3), (x - height // 2, height), (95, 100, 105), 1)
    noise = rng.integers(-12, 12, bg.shape, dtype=np.int16)
    return np.clip(bg.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def draw_person(img: np.ndarray, x: float, bottom: float, h: int, look: Look, phase: float) -> tuple[float, ...]:
    """Draw a walking figure whose box starts at ``x`` and stands on ``bottom``; return its MOT box."""
    w = h * 0.38
    shirt, trousers, pattern = look
    left, top = x, bottom - h
    cx = left + w / 2
    head_r = h * 0.09
    cv2.circle(img, (int(cx), int(top + head_r)), int(head_r), (140, 170, 210), -1, cv2.LINE_AA)
    t0, t1 = int(top + 2 * head_r), int(top + h * 0.58)
    x0, x1 = int(left + w * 0.1), int(left + w * 0.9)
    cv2.rectangle(img, (x0, t0), (x1, t1), shirt, -1)
    if pattern == "stripes":
        for yy in range(t0, t1, max(3, h // 25)):
            cv2.line(img, (x0, yy), (x1, yy), tuple(int(c * 0.5) for c in shirt), 2)
    elif pattern == "check":
        step = max(4, h // 16)
        for yy in range(t0, t1, step):
            for xx in range(x0 + ((yy - t0) // step) % 2 * step, x1, 2 * step):
                cv2.rectangle(img, (xx, yy), (min(xx + step, x1), min(yy + step, t1)), (20, 20, 20), -1)
    swing = np.sin(phase) * w * 0.25
    for side in (-1, 1):
        hip = (int(cx + side * w * 0.18), t1)
        foot = (int(cx + side * w * 0.18 + side * swing), int(bottom))
        cv2.line(img, hip, foot, trousers, max(2, int(w * 0.28)), cv2.LINE_AA)
    return (left + 1, top + 1, w, float(h))  # MOT boxes are 1-based


def scene_frames(seconds: float = 4.0, fps: int = 25, width: int = 640, height: int = 360, people: int = 6,
                 seed: int = 0) -> Iterator[tuple[int, np.ndarray, list[str]]]:
    """Yield ``(frame number, BGR image, MOT rows of that frame)`` for frames 1, 2, ..."""
    rng = np.random.default_rng(seed)
    frames = int(round(seconds * fps))
    walkers = _walkers(width, height, frames, people, rng)
    bg = draw_background(width, height, rng)
    for k in range(1, frames + 1):
        img = bg.copy()
        rows = []
        positions = []
        for wk in walkers:
            if wk.first_frame <= k <= wk.last_frame:
                t = k - wk.first_frame
                positions.append((wk, wk.start[0] + wk.velocity[0] * t, wk.start[1] + wk.velocity[1] * t, t))
        for wk, x, bottom, t in sorted(positions, key=lambda p: p[2]):  # far (higher) first
            box = draw_person(img, x, bottom, wk.height, PALETTE[wk.style], t * 0.5)
            if box[0] + box[2] > 1 and box[0] < width and box[1] < height:
                rows.append(f"{k},{wk.track_id},{box[0]:.2f},{box[1]:.2f},{box[2]:.2f},{box[3]:.2f},1,-1,-1,-1")
        yield k, img, rows


def make_sample(out_dir: str | Path, seconds: float = 4.0, fps: int = 25, width: int = 640, height: int = 360,
                people: int = 6, seed: int = 0) -> tuple[Path, Path]:
    """Write ``sample.mp4`` (MPEG-4 part 2, OpenCV) and ``sample_tracks.txt``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    video = out / "sample.mp4"
    tracks = out / "sample_tracks.txt"
    rows: list[str] = []
    with atomic_path(video) as tmp_video:
        tmp_mp4 = tmp_video.with_suffix(".mp4")
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")  # type: ignore[attr-defined]
        writer = cv2.VideoWriter(str(tmp_mp4), fourcc, fps, (width, height))
        if not writer.isOpened():
            raise OutputError(f"{video}: OpenCV cannot encode mp4 here")
        try:
            for _, img, frame_rows in scene_frames(seconds, fps, width, height, people, seed):
                writer.write(img)
                rows += frame_rows
        finally:
            writer.release()
        tmp_mp4.replace(tmp_video)
    with atomic_path(tracks) as tmp:
        tmp.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return video, tracks
