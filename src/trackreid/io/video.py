"""Frame sources: a video file or a folder of frames, read forward once, frames numbered from 1.

Frame ``k`` is the ``k``-th decoded frame (or the ``k``-th image by name). A source never
seeks by frame index (OpenCV's ``CAP_PROP_POS_FRAMES`` lands on wrong frames with B-frames
and variable frame rate): :meth:`FrameSource.frames` walks forward, *grabs* every frame but
only *retrieves* (converts to pixels) the frames asked for, and stops after the last one.
When the frames asked for lie in few groups of pictures, :class:`_GopIndex` reaches them by
keyframe seeks instead, numbering frames by their presentation timestamps (checked).

With PyAV (the ``av`` extra) a video is decoded less and converted less:

* :meth:`FrameSource.pictures` yields :class:`Picture` objects: a crop is converted from the
  decoder's YUV 4:2:0 planes to BGR for its own pixels only (:class:`YuvPicture`), never the
  whole frame.
* Packets whose pictures no other picture references (H.264 ``nal_ref_idc == 0``, HEVC
  sub-layer non-reference pictures, MPEG-4 Part 2 B-VOPs: :func:`_picture_test`) and that hold
  no wanted frame are not sent to the decoder at all (:meth:`FrameSource.referenced_frames`
  tells the sampling which frames those are, so crops can avoid them); frames are then
  numbered by their presentation timestamps from the demuxing index (every decoded frame is
  checked against it; anything unexpected falls back to decoding every frame).
* Decoder threads: see :func:`configure_threads`.
"""

from __future__ import annotations

import bisect
import configparser
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
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
    rotation: int = 0  # degrees of rotation metadata; frames are delivered upright (already rotated)

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class Picture:
    """One decoded frame. :meth:`crop` gives BGR uint8 pixels of a box, :meth:`bgr` the whole frame."""

    def crop(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        return self.bgr()[y0:y1, x0:x1]

    def bgr(self) -> np.ndarray:
        raise NotImplementedError


class ArrayPicture(Picture):
    """A frame already in BGR (OpenCV decoding, image files, a tracker's frame)."""

    def __init__(self, img: np.ndarray) -> None:
        self.img = img

    def bgr(self) -> np.ndarray:
        return self.img


_YUV420 = ("yuv420p",)
_PAD = 4  # context pixels around a region, so chroma interpolation at its edges sees what the full frame has
_BUCKET = 32  # regions are widened to multiples of this, so converters are reused (one per size)


class YuvPicture(Picture):
    """A PyAV frame: a crop is converted from the YUV 4:2:0 planes for its own region only.

    The region (the box plus a few pixels of context, widened to a multiple of 32 pixels so
    that one converter per size is reused) is copied into a small frame and converted by
    FFmpeg's swscale, the converter OpenCV's and PyAV's whole-frame conversions use: the crop's
    pixels are identical to those of the whole frame converted. Other pixel formats (full-range
    ``yuvj420p``, 4:2:2, RGB codecs) convert the whole frame once.
    """

    def __init__(self, frame: object) -> None:
        self.frame = frame  # keeps the planes' memory alive
        self._bgr: np.ndarray | None = None
        self.planes: list[np.ndarray] | None = None
        fmt = frame.format.name  # type: ignore[attr-defined]
        self.width, self.height = frame.width, frame.height  # type: ignore[attr-defined]
        w, h = self.width, self.height
        if fmt in _YUV420 and w % 2 == 0 and h % 2 == 0:
            sizes = ((w, h), (w // 2, h // 2), (w // 2, h // 2))
            self.planes = [np.frombuffer(p, np.uint8).reshape(-1, p.line_size)[:ph, :pw]
                           for p, (pw, ph) in zip(frame.planes, sizes, strict=True)]  # type: ignore[attr-defined]

    @staticmethod
    def _span(a: int, b: int, size: int) -> tuple[int, int]:
        lo, hi = max(0, (a & ~1) - _PAD), min(size, b + (b & 1) + _PAD)
        n = min(size, -(-(hi - lo) // _BUCKET) * _BUCKET)
        lo = min(lo, size - n)
        return lo, lo + n

    def crop(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        if self.planes is None:
            return super().crop(x0, y0, x1, y1)
        import av

        ex0, ex1 = self._span(x0, x1, self.width)
        ey0, ey1 = self._span(y0, y1, self.height)
        w, h = ex1 - ex0, ey1 - ey0
        small = av.VideoFrame(w, h, "yuv420p")
        regions = (self.planes[0][ey0:ey1, ex0:ex1], self.planes[1][ey0 // 2:ey1 // 2, ex0 // 2:ex1 // 2],
                   self.planes[2][ey0 // 2:ey1 // 2, ex0 // 2:ex1 // 2])
        for plane, region in zip(small.planes, regions, strict=True):
            dst = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
            dst[:region.shape[0], :region.shape[1]] = region
        bgr = _converter(w, h).reformat(small, format="bgr24").to_ndarray()  # type: ignore[attr-defined]
        return bgr[y0 - ey0:y1 - ey0, x0 - ex0:x1 - ex0]

    def bgr(self) -> np.ndarray:
        if self._bgr is None:
            self._bgr = self.frame.to_ndarray(format="bgr24")  # type: ignore[attr-defined]
        return self._bgr


_local = threading.local()


def _converter(w: int, h: int) -> object:
    """A swscale converter for (w, h) regions, reused (at most 64 sizes kept per thread)."""
    from av.video.reformatter import VideoReformatter

    cache: OrderedDict[tuple[int, int], object] | None = getattr(_local, "converters", None)
    if cache is None:
        cache = _local.converters = OrderedDict()
    conv = cache.get((w, h))
    if conv is None:
        conv = cache[(w, h)] = VideoReformatter()
        if len(cache) > 64:
            cache.popitem(last=False)
    else:
        cache.move_to_end((w, h))
    return conv


def configure_threads(stream: object, cpus: int | None = None) -> None:
    """Decoder threading: frame + slice threads, one per core up to 16 (FFmpeg's H.264 cap).

    Measured on 2 cores (docs/benchmarks.md): frame threading with one thread per core decodes
    1080p H.264 fastest; more threads than cores only add latency and frame buffers. On 16 cores
    the same rule gives 16 frame threads; the embedder's threads run beside them, so a pass is
    bounded by whichever of the two is slower. ``TRACKREID_DECODE_THREADS`` overrides the count.
    """
    env = os.environ.get("TRACKREID_DECODE_THREADS", "")
    if env.isdigit():
        n = int(env)
    elif cpus:
        n = cpus
    else:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cc = stream.codec_context  # type: ignore[attr-defined]
    cc.thread_type = "AUTO"
    cc.thread_count = max(1, min(16, n))


class FrameSource:
    """Base: ``info`` and ``frames(wanted)``; ``frames_read`` counts frames walked past."""

    info: SourceInfo
    frames_read: int = 0
    frames_skipped: int = 0  # frames never decoded because nothing references them (PyAV, H.264)
    last_frame: int = 0  # the last frame number that exists (known once the source ended)

    def pictures(self, wanted: Iterable[int]) -> Iterator[tuple[int, Picture]]:
        raise NotImplementedError

    def referenced_frames(self) -> np.ndarray | None:
        """Per frame (index ``k - 1``), whether decoding its group of pictures decodes it anyway
        (False: no other picture references it, so it is decoded only when wanted); None when
        unknown (frame folders, codecs not parsed, no PyAV). Read from packets, not decoded."""
        return None

    def frames(self, wanted: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        """The wanted frames as whole BGR images (in order; frames past the end are left out)."""
        for k, pic in self.pictures(wanted):
            yield k, pic.bgr()

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
        try:
            if not cap.isOpened():
                raise InputError(f"{path}: cannot open as a video: {_why_unreadable(path)}; --source expects a "
                                 f"video file ({', '.join(VIDEO_SUFFIXES[:4])}, ...) or a frame folder")
            w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360
            if w <= 0 or h <= 0:
                raise InputError(f"{path}: the video reports no frame size; it is corrupt or not a video")
            if not cap.grab() or cap.retrieve()[1] is None:
                fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace").strip()
                raise InputError(
                    f"{path}: frame 1 cannot be decoded (codec {fourcc or 'unknown'}): OpenCV's FFmpeg has no "
                    f"decoder for this codec, or the file is corrupt. Re-encode it, e.g. ffmpeg -i {path.name} "
                    "-c:v libx264 -pix_fmt yuv420p out.mp4")
        finally:
            cap.release()
        if rotation:
            # OpenCV turns the frames upright (as players and OpenCV-based trackers show them); the
            # boxes are read in that orientation. PyAV's seek path would not rotate: decode forward.
            log.warning("%s: rotation metadata (%d degrees): frames are read upright, %dx%d, as OpenCV and "
                        "players show them; the tracks must use that orientation", path, rotation, w, h)
            self.seek = False
        self.info = SourceInfo(str(path), "video", w, h, fps, n if n > 0 else None, rotation)
        self._gop_index: _GopIndex | None | bool = False  # False: not read yet

    def _index(self) -> _GopIndex | None:
        """The timestamp index (read once), None when it cannot number this file's frames."""
        if self._gop_index is False:
            index = _GopIndex.read(self.path)
            if index is not None and len(index.pts) + 1 < (self.info.frame_count or 0):
                index = None
            self._gop_index = index
        return self._gop_index  # type: ignore[return-value]

    def referenced_frames(self) -> np.ndarray | None:
        index = self._index()
        return index.referenced() if index is not None and index.unref else None

    def pictures(self, wanted: Iterable[int]) -> Iterator[tuple[int, Picture]]:
        todo = sorted(set(wanted))
        if not todo:
            return
        index = self._index() if self.seek else None
        if index is not None:
            done: set[int] = set()
            try:
                for k, pic in index.decode(todo, self):
                    done.add(k)
                    yield k, pic
                return
            except _SeekUnreliable as e:
                log.info("%s: decoding by the timestamp index gave up (%s); decoding every frame from the start",
                         self.path, e)
                todo = [k for k in todo if k not in done]
        yield from self._forward(todo)

    def _forward(self, todo: list[int]) -> Iterator[tuple[int, Picture]]:
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
                    yield k, ArrayPicture(img)
                    i += 1
            self.last_frame = max(self.last_frame, k)
        finally:
            cap.release()


def _why_unreadable(path: Path) -> str:
    """Why FFmpeg cannot open ``path`` as a video, in words (PyAV when installed)."""
    generic = "it is not a video, or it is truncated or corrupt"
    try:
        import av
    except ImportError:
        return generic
    try:
        with av.open(str(path)) as container:
            if not container.streams:
                return "it holds no streams at all (no frames: an empty recording)"
            video = container.streams.video
            if not video:
                kinds = ", ".join(sorted({s.type for s in container.streams}))
                return f"it holds no video stream, only {kinds}"
            for frame in container.decode(video[0]):
                del frame
                return generic
            return "its video stream holds no frames"
    except av.error.DecoderNotFoundError:
        return ("the codec its video stream names has no decoder in this FFmpeg build (OpenCV's and PyAV's): "
                f"re-encode it, e.g. ffmpeg -i {path.name} -c:v libx264 -pix_fmt yuv420p out.mp4")
    except (av.FFmpegError, OSError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        return f"{generic} (FFmpeg: {reason})"


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
    unref: set[int]  # timestamps of pictures no other picture references (empty: codec not parsed)

    @classmethod
    def read(cls, path: Path) -> _GopIndex | None:
        try:
            import av
        except ImportError:
            return None
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                kind = _picture_test(stream)
                pts: list[int] = []
                keys: list[int] = []
                layers: dict[int, tuple[bool, int]] = {}
                for packet in container.demux(stream):
                    if packet.size == 0:
                        continue  # flush packet
                    if packet.pts is None:
                        return None
                    pts.append(int(packet.pts))
                    if packet.is_keyframe:
                        keys.append(int(packet.pts))
                    if kind is not None:
                        layers[int(packet.pts)] = kind(bytes(packet))
        except (av.FFmpegError, IndexError, OSError):
            return None
        if not pts or not keys or len(set(pts)) != len(pts):
            return None
        # a sub-layer non-reference picture may still be referenced by higher temporal layers
        top = max((tid for _, tid in layers.values()), default=0)
        unref = {p for p, (nonref, tid) in layers.items() if nonref and tid == top}
        return cls(sorted(pts), sorted(keys), unref)

    def referenced(self) -> np.ndarray:
        """Per frame (index ``k - 1``): True when decoding its group of pictures decodes it anyway."""
        return np.array([p not in self.unref for p in self.pts], dtype=bool)

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

    def decode(self, todo: list[int], source: VideoFileSource) -> Iterator[tuple[int, Picture]]:
        """Decode forward from the start, or from the keyframe before each wanted group when
        :meth:`worth_seeking`; unreferenced H.264 pictures that are not wanted are not decoded."""
        import av

        number = {p: i + 1 for i, p in enumerate(self.pts)}
        todo = [k for k in todo if k <= len(self.pts)]  # the rest lie past the end
        # One forward pass, from the keyframe before the first wanted frame (a `trackreid run`
        # segment late in the video seeks once), or a seek per group of pictures when worth it.
        first_gop = self.gop_of(todo[0]) if todo else -1
        groups: list[tuple[int | None, list[int]]] = [(self.keys[first_gop] if first_gop > 0 else None, todo)]
        if todo and self.worth_seeking(todo):
            by_gop: dict[int, list[int]] = {}
            for k in todo:
                by_gop.setdefault(self.gop_of(k), []).append(k)
            groups = [(self.keys[g], ks) for g, ks in sorted(by_gop.items())]
        decoded = skipped = 0
        try:
            with av.open(str(source.path)) as container:
                stream = container.streams.video[0]
                configure_threads(stream)
                unref = self.unref
                for seek_to, ks in groups:
                    want = set(ks)
                    want_pts = {self.pts[k - 1] for k in ks}
                    if seek_to is not None:
                        container.seek(seek_to, stream=stream, backward=True, any_frame=False)
                    previous = 0
                    for packet in container.demux(stream):
                        if packet.pts in unref and packet.pts not in want_pts:
                            skipped += 1
                            continue
                        for frame in packet.decode():
                            decoded += 1
                            idx = number.get(frame.pts) if frame.pts is not None else None
                            if idx is None or idx <= previous:
                                raise _SeekUnreliable(f"a decoded frame has timestamp {frame.pts}, not the next "
                                                      "one in the index")
                            previous = idx
                            if idx in want:
                                want.discard(idx)
                                yield idx, YuvPicture(frame)
                        if not want:
                            break
                    if want:
                        raise _SeekUnreliable(f"frames {sorted(want)[:3]} not reached")
                    source.frames_read, source.frames_skipped = decoded, skipped
        except av.FFmpegError as e:
            raise _SeekUnreliable(str(e)) from None
        source.last_frame = len(self.pts)


def _picture_test(stream: object) -> Callable[[bytes], tuple[bool, int]] | None:
    """A packet -> (its picture is referenced by no later picture of its temporal layer, that layer).

    H.264: every slice has ``nal_ref_idc == 0``. HEVC: every slice is a sub-layer non-reference
    NAL type (TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N, reserved _N), temporal id from the NAL
    header. MPEG-4 Part 2: every VOP is a B-VOP. None for other codecs (VP9, AV1, ...: every
    picture counts as referenced). Read from the packet's bytes, nothing decoded.
    """
    cc = stream.codec_context  # type: ignore[attr-defined]
    extra = bytes(cc.extradata or b"")
    if cc.name == "mpeg4":

        def mpeg4(data: bytes) -> tuple[bool, int]:
            types = [data[i + 4] >> 6 for i in _start_codes(data) if data[i + 3:i + 4] == b"\xb6" and i + 4 < len(data)]
            return bool(types) and all(t == 2 for t in types), 0

        return mpeg4
    if cc.name == "h264":
        size = (extra[4] & 3) + 1 if extra[:1] == b"\x01" and len(extra) >= 5 else 0  # avcC, else Annex B

        def h264(data: bytes) -> tuple[bool, int]:
            slices = [h for h, _ in _nal_headers(data, size) if h & 0x1F in (1, 5)]  # 5: IDR, always referenced
            return bool(slices) and not any(h & 0x60 for h in slices), 0

        return h264
    if cc.name == "hevc":
        size = (extra[21] & 3) + 1 if len(extra) > 22 and extra[0] == 1 else 0  # hvcC, else Annex B

        def hevc(data: bytes) -> tuple[bool, int]:
            slices = [(h >> 1 & 0x3F, (h2 & 7) - 1) for h, h2 in _nal_headers(data, size) if h >> 1 & 0x3F < 32]
            nonref = bool(slices) and all(t <= 14 and t % 2 == 0 for t, _ in slices)
            return nonref, max((tid for _, tid in slices), default=0)

        return hevc
    return None


def _start_codes(data: bytes) -> Iterator[int]:
    i = data.find(b"\x00\x00\x01")
    while 0 <= i < len(data) - 3:
        yield i
        i = data.find(b"\x00\x00\x01", i + 3)


def _nal_headers(data: bytes, size: int) -> Iterator[tuple[int, int]]:
    """The first two bytes of each NAL unit: length-prefixed (``size`` bytes) or Annex B (``size`` 0)."""
    if size:
        i = 0
        while i + size + 1 < len(data):
            n = int.from_bytes(data[i:i + size], "big")
            yield data[i + size], data[i + size + 1]
            i += size + n
    else:
        for i in _start_codes(data):
            if i + 4 < len(data):
                yield data[i + 3], data[i + 4]


class ImageFolderSource(FrameSource):
    """A MOT ``img1/`` folder (or any folder of frames), sorted by name with numbers in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not self.files:
            raise InputError(f"{path}: the folder holds no frames ({', '.join(IMAGE_SUFFIXES)}); --source expects "
                             "a video file or a folder of frames such as a MOT img1/ folder")
        first = self._read(self.files[0], 1)
        h, w = first.shape[:2]
        self.info = SourceInfo(str(path), "images", w, h, _seqinfo_fps(path), len(self.files))
        self.last_frame = len(self.files)

    def _read(self, f: Path, k: int) -> np.ndarray:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"{f}: cannot be read as an image (frame {k}: corrupt or unsupported format); "
                             "replace the file (frames are numbered by their order in the folder)")
        return img

    def pictures(self, wanted: Iterable[int]) -> Iterator[tuple[int, Picture]]:
        for k in sorted(set(wanted)):
            if k > len(self.files):
                return
            self.frames_read = k
            img = self._read(self.files[k - 1], k)
            if img.shape[:2] != (self.info.height, self.info.width):
                raise InputError(f"{self.files[k - 1]}: frame {k} is {img.shape[1]}x{img.shape[0]}, but earlier "
                                 f"frames are {self.info.width}x{self.info.height}")
            yield k, ArrayPicture(img)


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
