"""Labelled image sets for evaluation and training: paths with identity and camera ids.

Name formats:
* ``cuhk03``: ``PPPP_NN.jpg``, slots 00-04 camera 0, 05-09 camera 1 (the shared CUHK03 crops).
* ``market``: ``0001_c1s1_001051_00.jpg`` (identity, camera); ``-1`` is junk, ``0000`` a distractor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trackreid.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_CUHK = re.compile(r"^(\d+)_(\d+)$")
_MARKET = re.compile(r"^(-?\d+)_c(\d+)")


@dataclass
class ImageSet:
    paths: list[Path]
    pids: np.ndarray
    camids: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, mask: np.ndarray) -> ImageSet:
        idx = np.flatnonzero(mask)
        return ImageSet([self.paths[i] for i in idx], self.pids[idx], self.camids[idx])


def list_images(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder of images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def parse_name(path: Path, fmt: str) -> tuple[int, int]:
    stem = path.stem
    if fmt == "cuhk03":
        m = _CUHK.match(stem)
        if not m:
            raise InputError(f"{path}: expected a CUHK03 name PPPP_NN.jpg (identity, slot 00-09)")
        return int(m.group(1)), int(int(m.group(2)) >= 5)
    if fmt == "market":
        m = _MARKET.match(stem)
        if not m:
            raise InputError(f"{path}: expected a Market-1501 name like 0001_c1s1_001051_00.jpg")
        return int(m.group(1)), int(m.group(2))
    raise InputError(f"unknown name format {fmt!r}; expected cuhk03 or market")


def read_image_set(folder: Path, fmt: str) -> ImageSet:
    paths = list_images(folder)
    ids = [parse_name(p, fmt) for p in paths]
    return ImageSet(paths, np.array([i[0] for i in ids]), np.array([i[1] for i in ids]))


def cuhk03_query_gallery(folder: Path) -> tuple[ImageSet, ImageSet]:
    """The shared CUHK03 protocol: query = every camera-A image, gallery = every camera-B image."""
    s = read_image_set(folder, "cuhk03")
    return s.subset(s.camids == 0), s.subset(s.camids == 1)
