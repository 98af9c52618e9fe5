"""Training data: prepared dataset folders, image loading and augmentation (torch ops + cv2).

A *prepared* folder (what ``trackreid prepare-data`` writes, the seed's layout) is::

    my_dataset/train/<pid>/*.jpg   query/<pid>/*.jpg   gallery/<pid>/*.jpg

The identity is the folder name. File names may carry the camera Market-style
(``0001_c2s1_000123_00.jpg``: camera 2, segment 1); evaluation ignores gallery images of the
query's identity seen in the same camera *and* segment (the Market-1501 camera rule; the
segment lets one camera's track be split in time). Without camera ids in the names, query
and gallery are treated as different views. A Market-1501 folder (``bounding_box_train``,
``query``, ``bounding_box_test``) is read too.

Augmentation runs on uint8 batches as torch tensors with its own seeded generator, so a
training run can be resumed exactly.
"""

from __future__ import annotations

import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from trackreid.datasets import IMAGE_SUFFIXES, ImageSet, dataset_query_gallery
from trackreid.embed.preprocess import resize_crops
from trackreid.errors import InputError
from trackreid.models.registry import Preprocess
from trackreid.train.config import InputConfig

_VIEW = re.compile(r"^(-?\d+)_c(\d+)(?:s(\d+))?")
DATASETS_ENV = "TRACKREID_DATASETS"


@dataclass
class ReidDataset:
    """A training set (labels 0..N-1) and, when present, its query and gallery sets."""

    name: str
    root: Path
    train: ImageSet
    query: ImageSet | None
    gallery: ImageSet | None
    train_names: list[str]  # identity folder name of each label

    @property
    def num_classes(self) -> int:
        return len(self.train_names)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _view(path: Path) -> int | None:
    """Camera and segment from a Market-style name as one view id, or None."""
    m = _VIEW.match(path.stem)
    if not m:
        return None
    return int(m.group(2)) * 1000 + int(m.group(3) or 1)


def _read_split(folder: Path, names: dict[str, int]) -> tuple[list[Path], list[int], list[int | None]]:
    """Images of ``folder/<pid>/``; identity labels from ``names`` (new names are appended)."""
    paths: list[Path] = []
    pids: list[int] = []
    views: list[int | None] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        imgs = _images(sub)
        if not imgs:
            continue
        label = names.setdefault(sub.name, len(names))
        paths += imgs
        pids += [label] * len(imgs)
        views += [_view(p) for p in imgs]
    return paths, pids, views


def _read_market_split(folder: Path, names: dict[str, int]) -> tuple[list[Path], list[int], list[int | None]]:
    paths, pids, views = [], [], []
    for p in _images(folder):
        m = _VIEW.match(p.stem)
        if not m:
            raise InputError(f"{p}: expected a Market-1501 name like 0001_c1s1_001051_00.jpg")
        if m.group(1) in ("-1", "0000"):
            continue  # junk and distractors
        paths.append(p)
        pids.append(names.setdefault(m.group(1), len(names)))
        views.append(_view(p))
    return paths, pids, views


def _image_set(paths: list[Path], pids: list[int], views: list[int | None], default_view: int) -> ImageSet:
    cams = np.array([default_view if v is None else v for v in views], dtype=np.int64)
    return ImageSet(paths, np.asarray(pids, dtype=np.int64), cams)


def _has_images(folder: Path) -> Path | None:
    """``folder`` if it holds at least one image (in it or one level down), else None."""
    if not folder.is_dir():
        return None
    return folder if any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.rglob("*")) else None


def resolve_dataset(name: str, root: str | Path | None = None) -> Path:
    """A dataset name from ``DATASETS.NAMES`` -> its folder: a path, or ``<root>/<name>``.

    The root is ``root``, else ``$TRACKREID_DATASETS``, else ``dataset`` and ``datasets`` in the
    current folder (``trackreid prepare-data --output-dir dataset/my_dataset`` fits the seed).
    """
    p = Path(name).expanduser()
    if p.is_dir():
        return p
    roots = [Path(root)] if root else []
    if os.environ.get(DATASETS_ENV):
        roots.append(Path(os.environ[DATASETS_ENV]))
    roots += [Path("dataset"), Path("datasets")]
    for r in roots:
        if (r / name).is_dir():
            return r / name
    tried = ", ".join(str(r / name) for r in roots)
    raise InputError(f"dataset {name!r}: no such folder (tried {p}, {tried}). Create it with "
                     f"`trackreid prepare-data --output-dir dataset/{name}`, give a path in DATASETS.NAMES, "
                     f"or pass --datasets-root")


def read_dataset(folder: Path, name: str | None = None) -> ReidDataset:
    """Read a prepared folder (``train/ query/ gallery/``) or a Market-1501 folder."""
    folder = Path(folder)
    names: dict[str, int] = {}
    if (folder / "bounding_box_train").is_dir():
        tr = _read_market_split(folder / "bounding_box_train", names)
        q_dir, g_dir = _has_images(folder / "query"), _has_images(folder / "bounding_box_test")
    else:
        has = {s: (folder / s).is_dir() for s in ("train", "query", "gallery")}
        if not any(has.values()):
            raise InputError(f"{folder}: not a prepared dataset: expected train/<pid>/, query/<pid>/ and "
                             "gallery/<pid>/ folders of images (see `trackreid prepare-data`)")
        tr = _read_split(folder / "train", names) if has["train"] else ([], [], [])
        q_dir, g_dir = _has_images(folder / "query"), _has_images(folder / "gallery")
    query = gallery = None
    if q_dir is not None and g_dir is not None:
        # the same reader and camera rule as `trackreid evaluate` (Market: camera; prepared
        # folders: the c<camera>s<segment> view; no camera in the names: query vs gallery)
        query, gallery = dataset_query_gallery(folder, camera_from="auto")
    train = _image_set(*tr, default_view=0)
    return ReidDataset(name or folder.name, folder, train, query, gallery, list(names))


def combine_train(sets: list[ReidDataset]) -> tuple[ImageSet, list[str]]:
    """Training images of several datasets with labels made disjoint (``name/pid``)."""
    paths: list[Path] = []
    pids: list[np.ndarray] = []
    cams: list[np.ndarray] = []
    names: list[str] = []
    for ds in sets:
        paths += ds.train.paths
        pids.append(ds.train.pids + len(names))
        cams.append(ds.train.camids)
        names += [f"{ds.name}/{n}" for n in ds.train_names]
    return ImageSet(paths, np.concatenate(pids), np.concatenate(cams)), names


# ----------------------------------------------------------------------------- loading


class ImageLoader:
    """Decode and resize images to a fixed size (RGB uint8 NHWC), on a few threads."""

    def __init__(self, preprocess: Preprocess, workers: int = 1) -> None:
        self.preprocess = preprocess
        self.workers = max(1, min(workers, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None

    def _one(self, path: Path) -> np.ndarray:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"{path}: cannot be read as an image (corrupt or not an image file)")
        return resize_crops([img], self.preprocess)[0]

    def load(self, paths: list[Path]) -> np.ndarray:
        pre = self.preprocess
        out = np.empty((len(paths), pre.height, pre.width, 3), dtype=np.uint8)
        imgs = self._pool.map(self._one, paths) if self._pool else map(self._one, paths)
        for i, img in enumerate(imgs):
            out[i] = img
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


def to_tensor(batch: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """RGB uint8 NHWC -> normalised float32 NCHW (mean/std on the 0-1 scale)."""
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (x - m) / s


# ----------------------------------------------------------------------------- augmentation


def _rand(gen: torch.Generator, n: int) -> torch.Tensor:
    return torch.rand(n, generator=gen)


def _flip(x: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    mask = _rand(gen, x.shape[0]) < prob
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(3), x)


def _pad_crop(x: torch.Tensor, size: int, mode: str, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    torch_mode = {"constant": "constant", "edge": "replicate", "reflect": "reflect"}[mode]
    padded = F.pad(x, (size, size, size, size), mode=torch_mode)
    top = torch.randint(0, 2 * size + 1, (n,), generator=gen).tolist()
    left = torch.randint(0, 2 * size + 1, (n,), generator=gen).tolist()
    return torch.stack([padded[i, :, t:t + h, le:le + w] for i, (t, le) in enumerate(zip(top, left, strict=True))])


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def _hue_rotate(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate hue by ``angle`` (radians, per image) in YIQ space."""
    yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    rgb = torch.linalg.inv(yiq)
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(angle.shape[0], 3, 3)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    m = rgb @ rot @ yiq  # (n, 3, 3)
    return torch.einsum("nij,njhw->nihw", m, x)


def _color_jitter(x: torch.Tensor, cfg: InputConfig, gen: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation, hue (on 0-1 RGB), each image with probability ``cj_prob``."""
    n = x.shape[0]
    apply = (_rand(gen, n) < cfg.cj_prob).view(-1, 1, 1, 1)

    def factor(spread: float) -> torch.Tensor:
        return (1 + (2 * _rand(gen, n) - 1) * spread).clamp_min(0).view(-1, 1, 1, 1)

    b, c, s = factor(cfg.cj_brightness), factor(cfg.cj_contrast), factor(cfg.cj_saturation)
    hue = (2 * _rand(gen, n) - 1) * cfg.cj_hue * 2 * math.pi
    y = (x * b).clamp(0, 1)
    mean = _gray(y).mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - mean) * c + mean).clamp(0, 1)
    g = _gray(y)
    y = ((y - g) * s + g).clamp(0, 1)
    y = _hue_rotate(y, hue).clamp(0, 1)
    return torch.where(apply, y, x)


def _random_erase(x: torch.Tensor, prob: float, value: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random erasing (Zhong et al.): area 2-40 %, aspect 0.3-3.3, filled with ``value``."""
    n, _, h, w = x.shape
    x = x.clone()
    for i in range(n):
        if float(_rand(gen, 1)) >= prob:
            continue
        for _ in range(100):
            area = h * w * (0.02 + 0.38 * float(_rand(gen, 1)))
            aspect = math.exp(math.log(0.3) + (math.log(1 / 0.3) - math.log(0.3)) * float(_rand(gen, 1)))
            eh, ew = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if 0 < eh < h and 0 < ew < w:
                top = int(torch.randint(0, h - eh + 1, (1,), generator=gen))
                left = int(torch.randint(0, w - ew + 1, (1,), generator=gen))
                x[i, :, top:top + eh, left:left + ew] = value.view(3, 1, 1)
                break
    return x


def augment(batch: np.ndarray, cfg: InputConfig, mean: tuple[float, ...], std: tuple[float, ...],
            gen: torch.Generator) -> torch.Tensor:
    """RGB uint8 NHWC at the training size -> augmented, normalised float32 NCHW.

    Order as in FastReID: flip, pad-and-crop, colour jitter, normalise, random erasing.
    """
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
    if cfg.flip:
        x = _flip(x, cfg.flip_prob, gen)
    if cfg.padding:
        x = _pad_crop(x, cfg.padding_size, cfg.padding_mode, gen)
    if cfg.cj:
        x = _color_jitter(x, cfg, gen)
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    x = (x - m) / s
    if cfg.rea:
        fill = (torch.tensor(cfg.rea_value) / 255.0 - m.view(3)) / s.view(3)
        x = _random_erase(x, cfg.rea_prob, fill, gen)
    return x.contiguous()
