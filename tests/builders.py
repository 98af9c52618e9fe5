"""Small inputs whose pixels encode where they came from, so tests can assert exactly.

Frame k of an index scene has a background of (B, G, R) = (k, 40, 40) and each track's box
is filled with (B, G, R) = (k, 200, 10 * track_id): a crop's colour tells its frame and track.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass
class Scene:
    folder: Path  # PNG frames, frame k = k-th file
    video: Path  # lossless FFV1 .mkv of the same frames
    tracks: Path  # MOT file
    boxes: dict[tuple[int, int], tuple[int, int, int, int]]  # (track, frame) -> 0-based x0, y0, x1, y1


def track_colour(track_id: int, frame: int) -> tuple[int, int, int]:
    return (frame, 200, 10 * track_id)


def make_index_scene(root: Path, frames: int = 30, width: int = 160, height: int = 120,
                     tracks: dict[int, tuple[int, int]] | None = None) -> Scene:
    """Tracks move one pixel right per frame; ``tracks`` maps id -> (first, last) frame."""
    tracks = tracks or {1: (1, frames), 2: (5, 20), 3: (10, frames)}
    folder = root / "img1"
    folder.mkdir(parents=True)
    video = root / "scene.mkv"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 25, (width, height))
    assert writer.isOpened()
    rows = []
    boxes = {}
    for k in range(1, frames + 1):
        img = np.empty((height, width, 3), np.uint8)
        img[:] = (k, 40, 40)
        for tid, (first, last) in tracks.items():
            if not first <= k <= last:
                continue
            x0, y0 = 4 + 40 * (tid - 1) + (k - first), 10 + 5 * tid
            x1, y1 = x0 + 24, y0 + 60
            img[y0:y1, x0:x1] = track_colour(tid, k)
            boxes[(tid, k)] = (x0, y0, x1, y1)
            rows.append(f"{k},{tid},{x0 + 1},{y0 + 1},{x1 - x0},{y1 - y0},0.9,-1,-1,-1")
        cv2.imwrite(str(folder / f"{k:06d}.png"), img)
        writer.write(img)
    writer.release()
    path = root / "tracks.txt"
    path.write_text("\n".join(rows) + "\n")
    return Scene(folder, video, path, boxes)


def tiny_weights(path: Path, seed: int = 0) -> Path:
    """A trackreid checkpoint of the untrained osnet_tiny (fast; real OSNet code and loading)."""
    import torch

    from trackreid.models.registry import create_model
    from trackreid.models.weights import save_checkpoint

    torch.manual_seed(seed)
    save_checkpoint(create_model("osnet_tiny").eval(), "osnet_tiny", path)
    return path
