"""Labelled image sets for evaluation and training: paths with identity and camera ids.

Name formats:

* ``market``: ``0001_c1s1_001051_00.jpg`` (identity, camera). ``-1`` is junk (its images are
  ignored in the gallery, as the Market-1501 protocol asks) and ``0000`` a distractor: a valid
  gallery item that matches no query, given the identity :data:`DISTRACTOR_PID`.
* ``cuhk03``: ``PPPP_NN.jpg``, slots 00-04 camera 0, 05-09 camera 1 (the shared CUHK03 crops).
* ``fastreid``: one folder per identity, ``<pid>/<any name>.jpg``; the camera comes from the file
  name (``c3``, ``cam3`` or ``camera3`` after ``_``/``-`` or at the start, as in ``0001_c3s1_...``),
  from a regular expression with one group, or ``split`` (query and gallery are different
  cameras, so no gallery item is ignored).

Identities: negative ids never match anything (:func:`trackreid.evaluate.evaluate_ranking`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trackreid.errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
FORMATS = ("auto", "market", "fastreid", "cuhk03")
#: Market-1501 ``-1_*`` images: ignored in the gallery.
JUNK_PID = -1
#: Market-1501 ``0000_*`` images: valid gallery items that match no query.
DISTRACTOR_PID = -2
_CUHK = re.compile(r"^(\d+)_(\d+)$")
_MARKET = re.compile(r"^(-?\d+)_c(\d+)")
_CAMERA_IN_NAME = re.compile(r"(?:^|[_\-])c(?:am(?:era)?)?(\d+)", re.IGNORECASE)
# In <pid>/ folders, a Market-style "_c2s1_" names a view: camera 2, time segment 1. That is how
# `trackreid prepare-data` keeps the two halves of a single-camera track apart (the trainer
# reads it the same way, trackreid.train.data), so the camera rule only ignores the same view.
_VIEW_IN_NAME = re.compile(r"^-?\d+_c(\d+)s(\d+)_")
_GALLERY_NAMES = ("gallery", "bounding_box_test")


@dataclass
class ImageSet:
    paths: list[Path]
    pids: np.ndarray
    camids: np.ndarray
    junk: int = 0  # junk images left out when the set was read (Market ``-1``)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, mask: np.ndarray) -> ImageSet:
        idx = np.flatnonzero(mask)
        return ImageSet([self.paths[i] for i in idx], self.pids[idx], self.camids[idx], self.junk)


def list_images(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder of images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{folder}: holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def parse_name(path: Path, fmt: str) -> tuple[int, int]:
    """(identity, camera) from a ``market`` or ``cuhk03`` file name."""
    stem = path.stem
    if fmt == "cuhk03":
        m = _CUHK.match(stem)
        if not m:
            raise InputError(f"{path}: expected a CUHK03 name PPPP_NN.jpg (identity, slot 00-09)")
        return int(m.group(1)), int(int(m.group(2)) >= 5)
    if fmt == "market":
        m = _MARKET.match(stem)
        if not m:
            raise InputError(f"{path}: expected a Market-1501 name like 0001_c1s1_001051_00.jpg "
                             "(or pass --format fastreid / cuhk03)")
        pid = int(m.group(1))
        return (DISTRACTOR_PID if pid == 0 else pid), int(m.group(2))
    raise InputError(f"unknown name format {fmt!r}; expected market or cuhk03")


def detect_format(folder: Path) -> str:
    """``fastreid`` when images sit in sub-folders, ``market`` when every name is Market-style."""
    folder = Path(folder)
    paths = list_images(folder)
    if any(p.parent != folder for p in paths):
        return "fastreid"
    if all(_MARKET.match(p.stem) for p in paths):
        return "market"
    bad = next(p for p in paths if not _MARKET.match(p.stem))
    raise InputError(f"{folder}: cannot tell the name format from {bad.name!r}: not a Market-1501 name "
                     "(0001_c1s1_001051_00.jpg) and no <pid>/ sub-folders; pass --format cuhk03 for "
                     "PPPP_NN.jpg names, or put the images in one folder per identity")


class _Ids:
    """Integer ids for labels: numeric labels keep their value, others get ids above them, in sorted order."""

    def __init__(self, labels: list[str]) -> None:
        numeric = [int(s) for s in labels if re.fullmatch(r"-?\d+", s)]
        names = sorted({s for s in labels if not re.fullmatch(r"-?\d+", s)})
        start = max(numeric, default=-1) + 1
        self.map = {s: start + i for i, s in enumerate(names)}

    def __call__(self, label: str) -> int:
        return int(label) if re.fullmatch(r"-?\d+", label) else self.map[label]


def _camera_label(path: Path, camera_from: str) -> str:
    if camera_from == "name":
        view = _VIEW_IN_NAME.match(path.stem)
        if view:
            return str(int(view.group(1)) * 1000 + int(view.group(2)))  # numeric: the same id in every split
        m = _CAMERA_IN_NAME.search(path.stem)
        if not m:
            raise InputError(f"{path}: no camera in the file name (expected c3, cam3 or camera3, as in "
                             "0001_c3s1_000151_01.jpg); pass --camera-from split to treat query and gallery "
                             "as different cameras, or --camera-from REGEX with one group")
        return m.group(1)
    try:
        rx = re.compile(camera_from)
    except re.error as e:
        raise InputError(f"--camera-from {camera_from!r}: not a valid regular expression ({e})") from None
    if rx.groups < 1:
        raise InputError(f"--camera-from {camera_from!r}: the expression needs one group, e.g. 'cam(\\d+)'")
    m = rx.search(path.name)
    if not m:
        raise InputError(f"{path}: --camera-from {camera_from!r} does not match this file name")
    return m.group(1)


def _fastreid_labels(folder: Path, camera_from: str) -> tuple[list[Path], list[str], list[str]]:
    folder = Path(folder)
    paths = list_images(folder)
    loose = [p for p in paths if p.parent == folder]
    if loose:
        raise InputError(f"{loose[0]}: a FastReID folder holds one sub-folder per identity (<pid>/image.jpg); "
                         "this image is not in one")
    pids = [p.relative_to(folder).parts[0] for p in paths]
    cams = ["0" if camera_from == "split" else _camera_label(p, camera_from) for p in paths]
    return paths, pids, cams


def read_image_set(folder: Path, fmt: str, camera_from: str = "name") -> ImageSet:
    """Every image under ``folder`` with its identity and camera (``fmt``: see :data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(folder)
    if fmt == "fastreid":
        paths, pids, cams = _fastreid_labels(folder, camera_from)
        pid_of, cam_of = _Ids(pids), _Ids(cams)
        return ImageSet(paths, np.array([pid_of(s) for s in pids], dtype=np.int64),
                        np.array([cam_of(s) for s in cams], dtype=np.int64))
    paths = list_images(folder)
    ids = [parse_name(p, fmt) for p in paths]
    return ImageSet(paths, np.array([i[0] for i in ids], dtype=np.int64), np.array([i[1] for i in ids], dtype=np.int64))


def _drop_junk(s: ImageSet, where: Path) -> ImageSet:
    junk = s.pids == JUNK_PID
    if junk.any():
        log.info("%s: ignoring %d junk images (identity -1)", where, int(junk.sum()))
        out = s.subset(~junk)
        out.junk = int(junk.sum())
        return out
    return s


def read_query_gallery(query_dir: Path, gallery_dir: Path, fmt: str = "auto",
                       camera_from: str = "name") -> tuple[ImageSet, ImageSet]:
    """Query and gallery sets read with one identity/camera numbering; junk dropped from the gallery."""
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "auto":
        fq, fg = detect_format(query_dir), detect_format(gallery_dir)
        if fq != fg:
            raise InputError(f"{query_dir} looks like {fq} but {gallery_dir} like {fg}; pass --format")
        fmt = fq
    if camera_from == "auto":
        # every file name carries a camera (or a prepare-data view): use it; else query and
        # gallery count as different cameras (the seed's layout, img_001.jpg, has none)
        named = all(_VIEW_IN_NAME.match(p.stem) or _CAMERA_IN_NAME.search(p.stem)
                    for d in (query_dir, gallery_dir) for p in list_images(d))
        camera_from = "name" if named or fmt != "fastreid" else "split"
    if fmt != "fastreid" and camera_from not in ("name", "split"):
        raise InputError(f"--camera-from {camera_from!r} applies to --format fastreid only "
                         f"({fmt} names carry their camera)")
    if fmt == "fastreid":
        qp, qpid, qcam = _fastreid_labels(query_dir, camera_from)
        gp, gpid, gcam = _fastreid_labels(gallery_dir, camera_from)
        pid_of, cam_of = _Ids(qpid + gpid), _Ids(qcam + gcam)
        q = ImageSet(qp, np.array([pid_of(s) for s in qpid], dtype=np.int64),
                     np.array([cam_of(s) for s in qcam], dtype=np.int64))
        g = ImageSet(gp, np.array([pid_of(s) for s in gpid], dtype=np.int64),
                     np.array([cam_of(s) for s in gcam], dtype=np.int64))
    else:
        q, g = read_image_set(query_dir, fmt), read_image_set(gallery_dir, fmt)
    if camera_from == "split":
        q.camids[:] = 0
        g.camids[:] = 1
    return q, _drop_junk(g, Path(gallery_dir))


def dataset_query_gallery(root: Path, fmt: str = "auto", camera_from: str = "name") -> tuple[ImageSet, ImageSet]:
    """A dataset root: ``query/`` + ``gallery/`` (FastReID) or ``query/`` + ``bounding_box_test/``
    (Market-1501); with ``fmt='cuhk03'`` a folder of ``PPPP_NN.jpg`` crops is split by camera."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--dataset {root}: no such folder")
    query = root / "query"
    gallery = next((root / n for n in _GALLERY_NAMES if (root / n).is_dir()), None)
    if query.is_dir() and gallery is not None:
        return read_query_gallery(query, gallery, fmt, camera_from)
    if fmt == "cuhk03":
        return cuhk03_query_gallery(root)
    raise InputError(f"--dataset {root}: expected query/ and gallery/ (FastReID) or query/ and "
                     "bounding_box_test/ (Market-1501) inside it, or a folder of CUHK03 crops with "
                     "--format cuhk03; or pass --query DIR --gallery DIR")


def cuhk03_query_gallery(folder: Path) -> tuple[ImageSet, ImageSet]:
    """The shared CUHK03 protocol: query = every camera-A image, gallery = every camera-B image."""
    s = read_image_set(folder, "cuhk03")
    return s.subset(s.camids == 0), s.subset(s.camids == 1)
