"""Frame sources: a video file or a folder of frames, read forward once, frames numbered from 1.

Frame ``k`` is the ``k``-th decoded frame (or the ``k``-th image by name). A source never
seeks by frame index (OpenCV's ``CAP_PROP_POS_FRAMES`` lands on wrong frames with B-frames
and variable frame rate): :meth:`FrameSource.frames` walks forward, *grabs* every frame but
only *retrieves* (converts to pixels) the frames asked for, and stops after the last one.
When the frames asked for lie in few groups of pictures, :class:`_GopIndex` reaches them by
keyframe seeks instead, numbering frames by their presentation timestamps (checked).
"""

from __future__ import annotations

import bisect
import configparser
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from trackreid.errors import InputError

log = logging.getLogger(__name__)

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
    def open(source: str | Path, seek: bool = True) -> FrameSource:
        path = Path(source)
        if path.is_dir():
            return ImageFolderSource(path)
        if not path.exists():
            raise InputError(f"{path}: no such video file or frame folder (--source)")
        return VideoFileSource(path, seek)


class VideoFileSource(FrameSource):
    """A video file. ``seek=True`` lets sparse samples skip whole groups of pictures (PyAV)."""

    def __init__(self, path: Path, seek: bool = True) -> None:
        self.path = path
        self.seek = seek
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
        index = _GopIndex.read(self.path) if self.seek else None
        # Sparse frames: a seek per group of pictures. Frames that start late in the video (a
        # segment of `trackreid run`): one seek to the keyframe before the first, then forward.
        per_gop = index is not None and index.worth_seeking(todo)
        if index is not None and (per_gop or index.starts_late(todo)):
            done: set[int] = set()
            try:
                for k, img in index.decode(todo, self, per_gop):
                    done.add(k)
                    yield k, img
                return
            except _SeekUnreliable as e:
                log.info("%s: seeking by keyframe gave up (%s); decoding forward from the start", self.path, e)
                todo = [k for k in todo if k not in done]
        yield from self._forward(todo)

    def _forward(self, todo: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """The default: grab every frame from the first, retrieve only the wanted ones."""
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


class _SeekUnreliable(Exception):
    """The container's timestamps cannot be trusted to number frames; decode forward instead."""


@dataclass
class _GopIndex:
    """Presentation timestamps of every frame and of the keyframes, from demuxing (no decoding).

    Frame ``k`` is the frame with the ``k``-th smallest timestamp: the same numbering as
    decoding forward, as long as every packet holds one frame and timestamps are unique (both
    checked). Wanted frames are then reached by seeking to the keyframe before them and
    decoding forward to them; every decoded frame's timestamp is checked against the index.
    """

    pts: list[int]  # sorted presentation timestamps, one per frame
    keys: list[int]  # sorted keyframe timestamps

    @classmethod
    def read(cls, path: Path) -> _GopIndex | None:
        try:
            import av
        except ImportError:
            return None
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                pts: list[int] = []
                keys: list[int] = []
                for packet in container.demux(stream):
                    if packet.size == 0:
                        continue  # flush packet
                    if packet.pts is None:
                        return None
                    pts.append(int(packet.pts))
                    if packet.is_keyframe:
                        keys.append(int(packet.pts))
        except (av.FFmpegError, IndexError, OSError):
            return None
        if not pts or not keys or len(set(pts)) != len(pts):
            return None
        return cls(sorted(pts), sorted(keys))

    def gop_of(self, k: int) -> int:
        return bisect.bisect_right(self.keys, self.pts[k - 1]) - 1

    def worth_seeking(self, todo: list[int]) -> bool:
        """Seek when it decodes less than half of what the forward pass would (to the last wanted frame)."""
        if todo[-1] > len(self.pts) or self.gop_of(todo[0]) < 0:
            return False
        first_frame = {key: bisect.bisect_left(self.pts, key) + 1 for key in self.keys}  # frame number of each keyframe
        last_in_gop: dict[int, int] = {}
        for k in todo:
            last_in_gop[self.gop_of(k)] = k
        seek_cost = sum(k - first_frame[self.keys[g]] + 1 for g, k in last_in_gop.items())
        return 2 * seek_cost <= todo[-1]

    def starts_late(self, todo: list[int]) -> bool:
        """The first wanted frame lies past the first group of pictures (so a seek skips frames)."""
        return todo[-1] <= len(self.pts) and self.gop_of(todo[0]) > 0

    def decode(self, todo: list[int], source: VideoFileSource,
               per_gop: bool = True) -> Iterator[tuple[int, np.ndarray]]:
        """Seek to the keyframe before each group's first wanted frame (one group: all of ``todo``)."""
        import av

        number = {p: i + 1 for i, p in enumerate(self.pts)}
        by_gop: dict[int, list[int]] = {}
        for k in todo:
            by_gop.setdefault(self.gop_of(k) if per_gop else self.gop_of(todo[0]), []).append(k)
        decoded = 0
        try:
            with av.open(str(source.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for gop, ks in sorted(by_gop.items()):
                    want = set(ks)
                    container.seek(self.keys[gop], stream=stream, backward=True, any_frame=False)
                    for frame in container.decode(stream):
                        decoded += 1
                        idx = number.get(frame.pts) if frame.pts is not None else None
                        if idx is None:
                            raise _SeekUnreliable(f"a decoded frame has timestamp {frame.pts}, not in the index")
                        if idx in want:
                            yield idx, frame.to_ndarray(format="bgr24")
                            want.discard(idx)
                        if not want:
                            break
                    if want:
                        raise _SeekUnreliable(f"frames {sorted(want)[:3]} not reached after the keyframe")
                    source.frames_read = decoded
        except av.FFmpegError as e:
            raise _SeekUnreliable(str(e)) from None
        source.last_frame = len(self.pts)


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
