"""Where the pasted people come from: real crops (CUHK03) or drawn figures (the demo).

A people source maps (identity, camera index) to the images of that identity as that camera
sees it. Real crops give real appearance change between cameras (CUHK03 has two views per
identity); drawn figures carry no third-party pixels, so pictures made from them may be
published.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from trackreid.errors import InputError
from trackreid.sample import PALETTE, Look, draw_person

_CUHK_NAME = re.compile(r"^(\d+)_(\d+)\.(?:jpg|jpeg|png)$", re.IGNORECASE)


@dataclass
class PeopleSource:
    """Identities and, for each camera, the images of each identity (BGR, loaded on demand)."""

    ids: list[int]
    _views: dict[tuple[int, int], list[Path]] = field(default_factory=dict)  # (id, view) -> files
    _drawn: dict[int, Look] = field(default_factory=dict)
    _cache: dict[tuple[int, int], list[np.ndarray]] = field(default_factory=dict)

    def images(self, identity: int, camera: int) -> list[np.ndarray]:
        """Images of ``identity`` seen by camera ``camera`` (0-based)."""
        key = (identity, camera)
        if key not in self._cache:
            self._cache[key] = (self._drawn_images(identity, camera) if self._drawn
                                else self._crop_images(identity, camera))
        return self._cache[key]

    def _crop_images(self, identity: int, camera: int) -> list[np.ndarray]:
        # Camera 0 shows view A, camera 1 view B; further cameras alternate, mirrored, so that
        # every camera sees the person from an angle of its own.
        view = camera % 2
        files = self._views.get((identity, view)) or self._views[(identity, 1 - view)]
        out = []
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise InputError(f"{f}: not a readable image")
            out.append(img[:, ::-1].copy() if camera >= 2 else img)
        return out

    def _drawn_images(self, identity: int, camera: int) -> list[np.ndarray]:
        look = self._drawn[identity]
        h, w = 160, 64
        out = []
        for phase in np.linspace(0, 2 * np.pi, 4, endpoint=False) + camera:
            img = np.full((h, w, 3), (128, 128, 128), np.uint8)
            draw_person(img, (w - h * 0.38) / 2, h - 2, h - 6, look, float(phase))
            out.append(img)
        return out


def cuhk03_people(folder: str | Path, limit: int | None = None) -> PeopleSource:
    """Identities of a CUHK03 split folder (``PPPP_NN.jpg``; slots 00-04 view A, 05-09 view B)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder of CUHK03 crops (expected PPPP_NN.jpg files)")
    views: dict[tuple[int, int], list[Path]] = defaultdict(list)
    for f in sorted(folder.iterdir()):
        m = _CUHK_NAME.match(f.name)
        if m:
            views[(int(m.group(1)), int(int(m.group(2)) >= 5))].append(f)
    ids = sorted({pid for pid, _ in views if (pid, 0) in views and (pid, 1) in views})
    if not ids:
        raise InputError(f"{folder}: no identity with crops from both views (PPPP_00-04 and PPPP_05-09)")
    if limit is not None:
        ids = ids[:limit]
    return PeopleSource(ids, dict(views))


def drawn_people(n: int, seed: int = 0) -> PeopleSource:
    """``n`` drawn figures with distinct clothes (colours and patterns varied beyond the palette)."""
    rng = np.random.default_rng(seed)
    looks: dict[int, Look] = {}
    patterns = ("plain", "stripes", "check")
    for i in range(n):
        if i < len(PALETTE):
            looks[i] = PALETTE[i]
        else:
            shirt = tuple(int(c) for c in rng.integers(20, 240, 3))
            trousers = tuple(int(c) for c in rng.integers(20, 160, 3))
            looks[i] = (shirt, trousers, patterns[int(rng.integers(0, 3))])  # type: ignore[assignment]
    return PeopleSource(list(range(n)), _drawn=looks)
