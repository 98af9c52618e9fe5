"""Frame sources: a video file or a folder of frames, read forward once, frames numbered from 1.

Frame ``k`` is the ``k``-th decoded frame (or the ``k``-th image by name). A source never
seeks by frame index (OpenCV's ``CAP_PROP_POS_FRAMES`` lands on wrong frames with B-frames
and variable frame rate): :meth:`FrameSource.frames` walks forward, *grabs* every frame but
only *retrieves* (converts to pixels) the frames asked for, and stops after the last one.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from trackreid.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts", ".wmv", ".flv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _natural_key(p: Path) -> list[object]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


@dataclass
class SourceInfo:
    path: str
    kind: str  # "video" | "images"
    width: int
    height: int
    fps: float | None
    frame_count: int | None  # from the container header or the folder listing

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class FrameSource:
    """Base: ``info`` and ``frames(wanted)``; ``frames_read`` counts frames walked past."""

    info: SourceInfo
    frames_read: int = 0
    last_frame: int = 0  # the last frame number that exists (known once the source ended)

    def frames(self, wanted: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError

    @staticmethod
    def open(source: str | Path) -> FrameSource:
        path = Path(source)
        if path.is_dir():
            return ImageFolderSource(path)
        if not path.exists():
            raise InputError(f"{path}: no such video file or frame folder (--source)")
        return VideoFileSource(path)


class VideoFileSource(FrameSource):
    def __init__(self, path: Path) -> None:
        self.path = path
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise InputError(f"{path}: cannot open as a video (not a video, corrupt, or an unsupported codec); "
                             f"--source expects a video file ({', '.join(VIDEO_SUFFIXES[:4])}, ...) or a frame folder")
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        if w <= 0 or h <= 0:
            raise InputError(f"{path}: the video reports no frame size; it is corrupt or not a video")
        self.info = SourceInfo(str(path), "video", w, h, fps, n if n > 0 else None)

    def frames(self, wanted: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        todo = sorted(set(wanted))
        if not todo:
            return
        cap = cv2.VideoCapture(str(self.path))
        try:
            k = 0
            i = 0
            while i < len(todo):
                if not cap.grab():
                    self.last_frame = k
                    header = self.info.frame_count or 0
                    if header > k + 1:
                        raise InputError(
                            f"{self.path}: decoding stopped at frame {k + 1} but the file says it has {header} "
                            f"frames: the video is truncated or corrupt. Re-encode or re-download it "
                            f"(e.g. ffmpeg -i in.mp4 -c:v libx264 out.mp4)")
                    return  # legitimate end: the remaining wanted frames are past the end
                k += 1
                self.frames_read = k
                if k == todo[i]:
                    ok, img = cap.retrieve()
                    if not ok or img is None:
                        raise InputError(f"{self.path}: frame {k} could not be decoded; the video is corrupt")
                    yield k, img
                    i += 1
            self.last_frame = max(self.last_frame, k)
        finally:
            cap.release()


class ImageFolderSource(FrameSource):
    """A MOT ``img1/`` folder (or any folder of frames), sorted by name with numbers in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not self.files:
            raise InputError(f"{path}: the folder holds no frames ({', '.join(IMAGE_SUFFIXES)}); --source expects "
                             "a video file or a folder of frames such as a MOT img1/ folder")
        first = self._read(self.files[0])
        h, w = first.shape[:2]
        self.info = SourceInfo(str(path), "images", w, h, _seqinfo_fps(path), len(self.files))
        self.last_frame = len(self.files)

    def _read(self, f: Path) -> np.ndarray:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"{f}: cannot be read as an image (corrupt or unsupported format)")
        return img

    def frames(self, wanted: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        for k in sorted(set(wanted)):
            if k > len(self.files):
                return
            self.frames_read = k
            img = self._read(self.files[k - 1])
            if img.shape[:2] != (self.info.height, self.info.width):
                raise InputError(f"{self.files[k - 1]}: frame {k} is {img.shape[1]}x{img.shape[0]}, but earlier "
                                 f"frames are {self.info.width}x{self.info.height}")
            yield k, img


def _seqinfo_fps(folder: Path) -> float | None:
    ini = folder.parent / "seqinfo.ini"
    if not ini.is_file():
        return None
    cp = configparser.ConfigParser()
    try:
        cp.read(ini)
        return float(cp["Sequence"]["frameRate"])
    except (KeyError, ValueError, configparser.Error):
        return None
