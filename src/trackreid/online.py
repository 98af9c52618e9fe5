"""Online extraction: per-track features collected inside a tracking loop (no second decode).

The tracker has already decoded every frame; :class:`OnlineCollector` takes each frame and
that frame's tracks as the loop produces them, and :meth:`OnlineCollector.finish` returns and
writes exactly what :func:`trackreid.extract.extract` writes (same files, same format, same
metadata keys)::

    collector = OnlineCollector(embedder, "runs/features", source="cam1.mp4")
    for frame_index, frame in enumerate(frames, start=1):
        tracks = tracker.update(...)             # rows: track id, x0, y0, x1, y1 (0-based pixels)
        collector.update(frame_index, frame, tracks)
    result = collector.finish()

How the crops are chosen without knowing how long a track will live (bounded memory):

* every box goes through the offline rules (:func:`trackreid.sampling.assess_boxes`: clipping,
  minimum size, occlusion by the boxes of the same frame);
* of a track's usable boxes, every ``k``-th is kept as a candidate (``k`` = 1, 2, 4, ...:
  when more than ``2 * max_crops_per_track`` candidates are held, ``k`` doubles and every
  other one is dropped), plus a recent usable box (refreshed every ``max(1, k // 4)`` usable
  boxes), so the end of the track is covered;
* valid but unusable boxes are held only while the track has fewer usable boxes than it
  needs, the least occluded ones (the offline top-up);
* when the track has not been seen for ``idle_frames`` frames (or at :meth:`finish`), the
  offline choice (:func:`trackreid.sampling.select_track`) picks ``max_crops_per_track`` of the
  candidates, and only those are embedded, in batches of the embedder's batch size.

A track with at most ``2 * max_crops_per_track`` usable boxes gets exactly the offline crops;
a longer one gets crops from a grid at most ``k`` frames away from the offline ones.

Crops are kept until the track ends as uint8 arrays at the model's input size (96 KiB each for
256x128; the latest box, usually replaced by the next one, as cut), so memory is bounded by the
number of tracks alive at once times ``2 * max_crops_per_track + 1`` crops, plus one batch; a
finished track holds only its embeddings. Embedding a candidate as soon as it is cut would free
its pixels earlier, but most candidates of a long track are dropped again when ``k`` doubles: that would embed about
``log2(length / max_crops)`` times more crops than needed (the ``crops_candidates`` statistic
against ``crops_embedded`` in the metadata shows the difference).
"""

from __future__ import annotations

import bisect
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.embed.backend import Embedder
from trackreid.embed.preprocess import resize_one
from trackreid.errors import InputError
from trackreid.extract import (
    CROPS_DIR,
    ExtractResult,
    OutputStage,
    aggregate,
    build_metadata,
    crop_name,
    encode_crop,
    write_crop,
)
from trackreid.io.mot import Tracks, TracksReading
from trackreid.io.video import ArrayPicture, Picture
from trackreid.sampling import SamplingConfig, assess_boxes, mot_to_xyxy, select_track

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnlineConfig:
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    save_crops: bool = False
    jpeg_quality: int = 95
    overwrite: bool = False
    idle_frames: int = 50  # a track unseen for this many frames has ended: its crops are chosen and embedded

    def __post_init__(self) -> None:
        if self.idle_frames < 1:
            raise InputError(f"idle_frames must be at least 1, got {self.idle_frames}")


@dataclass(eq=False)
class _Crop:
    frame: int
    seq: int  # arrival order: breaks ties between boxes of one frame, as the row order does offline
    index: int  # number of the usable box within its track (-1: an unusable box, top-up reserve)
    occ: float
    pixels: np.ndarray | None  # model input uint8 (H, W, 3), or the BGR crop itself (raw); None once embedded
    raw: bool = False  # pixels not resized yet (the latest box: most are replaced by the next one)
    jpeg: bytes | None = None  # --save-crops, until written
    written: Path | None = None
    feature: np.ndarray | None = None
    queued: bool = False


@dataclass(eq=False)
class _Track:
    first: int
    last: int
    boxes: int = 0
    usable_seen: int = 0
    stride: int = 1
    members: list[_Crop] = field(default_factory=list)  # every stride-th usable box
    tail: _Crop | None = None  # the latest usable box when it is not a member
    reserve: list[_Crop] = field(default_factory=list)  # unusable boxes, least occluded first
    open: bool = True
    topped_up: int = 0

    def reserve_room(self, n: int) -> int:
        return max(0, n - self.usable_seen)

    def wants_reserve(self, n: int, occ: float) -> bool:
        room = self.reserve_room(n)
        return room > 0 and (len(self.reserve) < room or occ < self.reserve[-1].occ)

    def add_usable(self, c: _Crop, budget: int, n: int) -> list[_Crop]:
        """Keep ``c``; return the crops dropped."""
        dropped: list[_Crop] = []
        if c.index % self.stride == 0:
            if self.tail is not None:
                dropped.append(self.tail)
                self.tail = None
            self.members.append(c)
            if len(self.members) > budget:
                self.stride *= 2
                keep = [m for m in self.members if m.index % self.stride == 0]
                dropped += [m for m in self.members if m.index % self.stride != 0 and m is not c]
                if c.index % self.stride != 0:
                    self.tail = c
                self.members = keep
        else:
            if self.tail is not None:
                dropped.append(self.tail)
            self.tail = c
        room = self.reserve_room(n)
        dropped += self.reserve[room:]
        del self.reserve[room:]
        return dropped

    def add_reserve(self, c: _Crop, n: int) -> list[_Crop]:
        keys = [(r.occ, r.seq) for r in self.reserve]
        self.reserve.insert(bisect.bisect(keys, (c.occ, c.seq)), c)
        room = self.reserve_room(n)
        dropped = self.reserve[room:]
        del self.reserve[room:]
        return dropped

    def candidates(self) -> list[_Crop]:
        tail = [self.tail] if self.tail is not None else []
        return sorted(self.members + tail + self.reserve, key=lambda c: c.seq)

    def choose(self, n: int) -> tuple[list[_Crop], list[_Crop], int]:
        """The offline choice among the candidates: (chosen, dropped, top-ups)."""
        cands = self.candidates()
        frames = np.array([c.frame for c in cands], dtype=np.int64)
        usable = np.array([c.index >= 0 for c in cands], dtype=bool)
        occ = np.array([c.occ for c in cands], dtype=np.float64)
        pos, extra = select_track(frames, usable, np.ones(len(cands), dtype=bool), occ, n)
        chosen = [cands[p] for p in pos]
        keep = set(map(id, chosen))
        dropped = [c for c in cands if id(c) not in keep]
        self.members = [c for c in self.members if id(c) in keep]
        self.reserve = [c for c in self.reserve if id(c) in keep]
        if self.tail is not None and id(self.tail) not in keep:
            self.tail = None
        return chosen, dropped, extra


class OnlineCollector:
    """Feed it frames and their tracks in order; :meth:`finish` returns (and writes) the features."""

    def __init__(self, embedder: Embedder, output_dir: str | Path | None = None,
                 config: OnlineConfig | None = None, *, source: str | None = None, fps: float | None = None,
                 tracks_file: str | None = None, command: dict[str, Any] | None = None) -> None:
        self.embedder = embedder
        self.config = config or OnlineConfig()
        self.source, self.fps, self.tracks_file, self.command = source, fps, tracks_file, command
        self.out = Path(output_dir) if output_dir is not None else None
        self.stage = OutputStage(self.out, self.config.overwrite, self.config.save_crops) if self.out else None
        self.tracks: dict[int, _Track] = {}
        self.open_ids: set[int] = set()
        self.pending: list[_Crop] = []
        self.width = self.height = 0
        self.frames_seen = 0
        self.last_frame = 0
        self.seq = 0
        self.seconds = 0.0
        self.stages = dict.fromkeys(("convert", "crop", "save_crops", "embed"), 0.0)
        self.stats = dict.fromkeys(("rows", "dropped_low_visibility", "dropped_negative_id", "dropped_empty_box",
                                    "kept", "ground_truth", "boxes_empty_after_clipping",
                                    "boxes_past_end_of_video", "boxes_usable", "crops_topped_up_with_unusable_boxes",
                                    "crops_planned", "crops_past_end_of_video", "crops_embedded", "crops_cut",
                                    "crops_candidates",
                                    "frames_decoded", "frames_skipped_unreferenced"), 0)
        self.finished = False
        self._ended: list[int] | None = None  # tracks closed since the last ended() call (once it was called)

    # -- the loop ---------------------------------------------------------------------------
    def update(self, frame_index: int, frame: np.ndarray | Picture, tracks: Any) -> None:
        """One frame (BGR uint8 array, or a :class:`~trackreid.io.video.Picture`) and its tracks:
        rows ``track_id, x0, y0, x1, y1`` in 0-based pixels (x1, y1 exclusive), as trackers give
        them (ByteTrack's ``tlbr``, supervision's ``xyxy``). Negative ids and boxes without area are
        ignored (and counted), as the MOT reader does."""
        t0 = time.perf_counter()
        if self.finished:
            raise RuntimeError("update() after finish()")
        frame_index = int(frame_index)
        if frame_index <= self.last_frame:
            raise InputError(f"frame {frame_index} after frame {self.last_frame}: frames must come in increasing "
                             "order (number them as in the tracks file, from 1)")
        pic = frame if isinstance(frame, Picture) else ArrayPicture(frame)
        h, w = _size(pic)
        if not self.frames_seen:
            self.width, self.height = w, h
        elif (w, h) != (self.width, self.height):
            raise InputError(f"frame {frame_index} is {w}x{h}, but earlier frames are {self.width}x{self.height}")
        self.frames_seen += 1
        self.last_frame = frame_index
        rows = np.asarray(tracks, dtype=np.float64).reshape(-1, 5) if len(tracks) else np.zeros((0, 5))
        self.stats["rows"] += len(rows)
        neg = rows[:, 0] < 0
        self.stats["dropped_negative_id"] += int(neg.sum())
        rows = rows[~neg]
        nonpos = (rows[:, 3] <= rows[:, 1]) | (rows[:, 4] <= rows[:, 2])  # as the MOT reader drops them
        self.stats["dropped_empty_box"] += int(nonpos.sum())
        rows = rows[~nonpos]
        self.stats["kept"] += len(rows)
        if len(rows):
            self._add_boxes(frame_index, pic, rows)
        self._close_idle(frame_index)
        self._embed(force=False)
        self.seconds += time.perf_counter() - t0

    def update_mot(self, frame_index: int, frame: np.ndarray | Picture, tracks: Tracks) -> None:
        """:meth:`update` with the rows of a MOT tracks file (``read_mot``) on this frame."""
        m = tracks.frame == frame_index
        self.update(frame_index, frame, np.column_stack([tracks.track_id[m], mot_to_xyxy(tracks.xywh[m])]))

    def _add_boxes(self, k: int, pic: Picture, rows: np.ndarray) -> None:
        cfg = self.config.sampling
        n = cfg.max_crops_per_track
        raw = rows[:, 1:5]
        q = assess_boxes(np.full(len(rows), k), raw, self.width, self.height, cfg)
        self.stats["boxes_empty_after_clipping"] += int(q.empty.sum())
        self.stats["boxes_usable"] += int(q.usable.sum())
        for i, tid in enumerate(rows[:, 0].astype(np.int64).tolist()):
            tr = self.tracks.get(tid)
            if tr is None:
                tr = self.tracks[tid] = _Track(first=k, last=k)
            tr.boxes += 1
            tr.last = k
            if not tr.open:
                log.info("track %d reappeared at frame %d after more than %d frames; its crops are chosen again",
                         tid, k, self.config.idle_frames)
                tr.open = True
            self.open_ids.add(tid)
            self.seq += 1
            if not q.valid[i]:
                continue
            occ = float(q.occlusion[i])
            usable = bool(q.usable[i])
            if not usable and not tr.wants_reserve(n, occ):
                continue
            as_cut = usable and tr.usable_seen % tr.stride != 0  # will be the tail: resized only if chosen
            if as_cut and tr.usable_seen % max(1, tr.stride // 4) != 0:
                tr.usable_seen += 1  # the tail is refreshed every stride / 4 usable boxes, not on every frame
                continue
            pixels, jpeg = self._cut(pic, q.clipped[i], as_cut)
            c = _Crop(k, self.seq, tr.usable_seen if usable else -1, occ, pixels, jpeg=jpeg, raw=as_cut)
            if usable:
                tr.usable_seen += 1
                dropped = tr.add_usable(c, 2 * n, n)
            else:
                dropped = tr.add_reserve(c, n)
            if not as_cut:
                self.stats["crops_candidates"] += 1
            for d in dropped:
                _drop(d)

    def _cut(self, pic: Picture, box: np.ndarray, raw: bool) -> tuple[np.ndarray, bytes | None]:
        x0, y0, x1, y1 = (int(v) for v in box)
        t = time.perf_counter()
        crop = pic.crop(x0, y0, x1, y1)
        t1 = time.perf_counter()
        pixels = crop.copy() if raw else resize_one(crop, self.embedder.preprocess)  # the caller may reuse its frame
        t2 = time.perf_counter()
        self.stats["crops_cut"] += 1
        self.stages["convert"] += t1 - t
        self.stages["crop"] += t2 - t1
        jpeg = None
        if self.config.save_crops:
            jpeg = encode_crop(crop, self.config.jpeg_quality, Path(f"frame {x0},{y0},{x1},{y1}"))
            self.stages["save_crops"] += time.perf_counter() - t2
        return pixels, jpeg

    # -- ends of tracks, embedding ------------------------------------------------------------
    def _close_idle(self, k: int) -> None:
        limit = k - self.config.idle_frames
        for tid in [t for t in self.open_ids if self.tracks[t].last < limit]:
            self._close(tid)

    def _close(self, tid: int) -> None:
        tr = self.tracks[tid]
        tr.open = False
        self.open_ids.discard(tid)
        if self._ended is not None:
            self._ended.append(tid)
        chosen, dropped, tr.topped_up = tr.choose(self.config.sampling.max_crops_per_track)
        for d in dropped:
            _drop(d)
        for c in chosen:
            if c.feature is None and not c.queued:
                c.queued = True
                self.pending.append(c)
        if self.stage is not None and self.stage.crops_dir is not None:
            self._write_crops(tid, chosen, self.stage.crops_dir)

    def _write_crops(self, tid: int, chosen: list[_Crop], crops_dir: Path) -> None:
        t = time.perf_counter()
        # a track that came back may renumber its crops: move old files aside first
        for c in chosen:
            if c.written is not None:
                tmp = c.written.with_suffix(".old")
                os.replace(c.written, tmp)
                c.written = tmp
        for j, c in enumerate(chosen):
            path = crops_dir / crop_name(tid, c.frame, j)
            if c.written is not None:
                os.replace(c.written, path)
            elif c.jpeg is not None:
                write_crop(c.jpeg, path)
                c.jpeg = None
            c.written = path
        self.stages["save_crops"] += time.perf_counter() - t

    def _embed(self, force: bool) -> None:
        bs = self.embedder.batch_size
        while len(self.pending) >= bs or (force and self.pending):
            chunk, self.pending = self.pending[:bs], self.pending[bs:]
            chunk = [c for c in chunk if c.pixels is not None]  # dropped after being queued (track came back)
            if not chunk:
                continue
            t = time.perf_counter()
            pre = self.embedder.preprocess
            batch = np.empty((len(chunk), pre.height, pre.width, 3), dtype=np.uint8)
            for j, c in enumerate(chunk):
                assert c.pixels is not None
                if c.raw:
                    resize_one(c.pixels, pre, batch[j])
                else:
                    batch[j] = c.pixels
            t1 = time.perf_counter()
            self.stages["crop"] += t1 - t
            feats = self.embedder.run_prepared(batch)
            t = t1
            self.stages["embed"] += time.perf_counter() - t
            for c, f in zip(chunk, feats, strict=True):
                c.feature, c.pixels = f, None

    def ended(self, final: bool = False) -> list[tuple[int, int, int, np.ndarray]]:
        """Tracks that ended since the last call, each ``(track id, first frame, last frame, track feature)``
        (the feature as :func:`~trackreid.extract.aggregate` makes it): for live association
        (:mod:`trackreid.live`). Their waiting crops are embedded now, not when a batch fills. ``final``: the
        stream is over, every open track ends (call :meth:`finish` afterwards for the files). Tracks are
        recorded from the first call on (a collector nobody asks keeps no list)."""
        if self._ended is None:
            self._ended = []
        if final:
            for tid in sorted(self.open_ids):
                self._close(tid)
        if not self._ended:
            return []
        self._embed(force=True)
        out = []
        for tid in dict.fromkeys(self._ended):
            tr = self.tracks[tid]
            if tr.open:  # came back before anyone asked
                continue
            cands = [c for c in tr.candidates() if c.feature is not None]
            if not cands:
                continue
            feats = np.asarray([c.feature for c in cands], np.float32)
            frames = np.asarray([c.frame for c in cands], np.int64)
            tf = aggregate(np.full(len(cands), tid, np.int64), frames, feats, {}, feats.shape[1])
            out.append((tid, tr.first, tr.last, tf.features[0]))
        self._ended.clear()
        return out

    # -- the end --------------------------------------------------------------------------------
    def finish(self) -> ExtractResult:
        """Choose and embed the crops of the tracks still open, then return (and write) the result."""
        t0 = time.perf_counter()
        if self.finished:
            raise RuntimeError("finish() called twice")
        self.finished = True
        try:
            for tid in sorted(self.open_ids):
                self._close(tid)
            self._embed(force=True)
            tids, frames, feats = [], [], []
            spans: dict[int, tuple[int, int, int]] = {}
            for tid in sorted(self.tracks):
                tr = self.tracks[tid]
                spans[tid] = (tr.boxes, tr.first, tr.last)
                self.stats["crops_topped_up_with_unusable_boxes"] += tr.topped_up
                for c in tr.candidates():
                    assert c.feature is not None
                    tids.append(tid)
                    frames.append(c.frame)
                    feats.append(c.feature)
            dim = self.embedder.feature_dim
            self.stats["crops_planned"] = self.stats["crops_embedded"] = len(feats)
            self.stats["frames_decoded"] = self.frames_seen
            feat_arr = np.asarray(feats, dtype=np.float32).reshape(-1, dim)
            desc = self.embedder.describe()
            tf = aggregate(np.asarray(tids, dtype=np.int64), np.asarray(frames, dtype=np.int64), feat_arr,
                           {"model": desc["model"], "source": str(self.source)}, dim)
            video = {"path": self.source, "kind": "stream", "width": self.width, "height": self.height,
                     "fps": self.fps, "frame_count": self.frames_seen, "rotation": 0,
                     "frames_decoded": self.frames_seen}
            self.seconds += time.perf_counter() - t0
            meta = build_metadata(desc=desc, dim=dim, video=video,
                                  tracks=TracksReading(Path(self.tracks_file)) if self.tracks_file else None,
                                  sampling=self.config.sampling, stats=dict(self.stats), seconds=self.seconds,
                                  stages=self.stages, command=self.command, tf=tf, spans=spans,
                                  save_crops=self.config.save_crops)
            if self.stage is None or self.out is None:
                return ExtractResult(tf, meta, None, None)
            self.stage.publish(tf, meta)
            return ExtractResult(tf, meta, self.out, self.out / CROPS_DIR if self.config.save_crops else None)
        finally:
            self.close()

    def close(self) -> None:
        """Drop what is held and remove the staging folder (``finish`` calls it; call it when the loop fails)."""
        self.finished = True
        self.tracks.clear()
        self.pending.clear()
        if self.stage is not None:
            self.stage.close()

    def __enter__(self) -> OnlineCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drop(c: _Crop) -> None:
    """A candidate is no longer wanted: free its pixels, remove its crop file if written."""
    c.pixels = c.jpeg = None
    if c.written is not None:
        c.written.unlink(missing_ok=True)
        c.written = None


def _size(pic: Picture) -> tuple[int, int]:
    if isinstance(pic, ArrayPicture):
        img = pic.img
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise InputError(f"a frame must be a BGR uint8 array (H, W, 3), got {img.dtype} {img.shape}")
        return int(img.shape[0]), int(img.shape[1])
    return int(pic.height), int(pic.width)  # type: ignore[attr-defined]
