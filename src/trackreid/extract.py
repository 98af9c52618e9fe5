"""The main job: video + MOT tracks -> per-track OSNet features.

plan (which boxes; crops moved off unreferenced pictures, :mod:`trackreid.sampling`) -> decode
(one forward pass; unneeded groups of pictures and unreferenced pictures skipped; only the
sampled boxes converted from YUV) -> crop -> embed (batched) -> aggregate -> write.
:func:`aggregate`, :func:`build_metadata` and :class:`OutputStage` are shared with online
extraction (:mod:`trackreid.online`). Decoding and cropping run in a producer thread while
the calling thread runs inference, through a queue of at most
``queue_batches`` batches, so memory is bounded by the batch size, not by the video's length.

Outputs (see docs/formats.md): ``track_features.pkl`` (the seed's structure),
``track_features.npz`` (the same without pickle), ``track_metadata.json`` and, with
``save_crops``, ``crops/track_0001/frame_000005_000.jpg``. Everything is written into a
staging folder inside the output folder and moved into place only when all succeeded.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from trackreid import __version__
from trackreid.embed.backend import Embedder
from trackreid.embed.preprocess import l2_normalize, resize_one
from trackreid.errors import InputError, OutputError
from trackreid.io.atomic import check_output_dir, output_error
from trackreid.io.extract_meta import METADATA_NAME
from trackreid.io.features import NPZ_NAME, PKL_NAME, TrackFeatures, write_features
from trackreid.io.mot import Tracks, TracksReading
from trackreid.io.video import FrameSource
from trackreid.progress import NullProgress, Progress
from trackreid.sampling import SamplePlan, SamplingConfig, plan_samples

log = logging.getLogger(__name__)

CROPS_DIR = "crops"
OUTPUTS = (PKL_NAME, NPZ_NAME, METADATA_NAME, CROPS_DIR)
NORMALIZATION = ("all_features: one L2-normalised embedding per crop; features: the L2-normalised mean "
                 "of the track's all_features")


@dataclass(frozen=True)
class ExtractConfig:
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    save_crops: bool = False
    jpeg_quality: int = 95
    frame_offset: int = 0
    min_visibility: float = 0.0
    tracks_format: str = "auto"
    overwrite: bool = False
    queue_batches: int = 3
    # PyAV by the timestamp index: keyframe seeks for sparse samples, unreferenced pictures (H.264,
    # HEVC, MPEG-4) not decoded, crops converted from YUV (timestamps checked). False: OpenCV, every
    # frame. The crops are the same either way (codec-aware sampling reads the file, not the decoder).
    seek: bool = True


@dataclass
class ExtractResult:
    features: TrackFeatures
    metadata: dict[str, Any]
    output_dir: Path | None
    crops_dir: Path | None


def crop_name(track_id: int, frame: int, ordinal: int) -> str:
    """``track_0001/frame_000005_000.jpg``: frame number as in the tracks file, crop ordinal."""
    return f"track_{track_id:04d}/frame_{frame:06d}_{ordinal:03d}.jpg"


_DONE = object()


class _Producer(threading.Thread):
    """Decodes the needed frames, cuts and resizes the crops, fills batches."""

    def __init__(self, source: FrameSource, plan: SamplePlan, embedder: Embedder, out: queue.Queue[Any],
                 crops_dir: Path | None, jpeg_quality: int, progress: Progress) -> None:
        super().__init__(name="trackreid-decode", daemon=True)
        self.source, self.plan, self.embedder, self.out = source, plan, embedder, out
        self.crops_dir, self.jpeg_quality, self.progress = crops_dir, jpeg_quality, progress
        self.stop = threading.Event()
        # seconds per stage (decode: demux + decode; convert: YUV -> BGR of each crop's pixels;
        # crop: resize to the model's input; save_crops: JPEG encoding and writing)
        self.stages = dict.fromkeys(("decode", "convert", "crop", "save_crops"), 0.0)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self.out.put(e)

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        pre = self.embedder.preprocess
        bs = self.embedder.batch_size
        plan = self.plan
        order = np.argsort(plan.frame, kind="stable")
        frames_sorted = plan.frame[order]
        batch = np.empty((bs, pre.height, pre.width, 3), dtype=np.uint8)
        rows: list[int] = []
        last = 0
        t0 = time.perf_counter()
        clock = time.perf_counter
        st = self.stages
        pictures = self.source.pictures(plan.frames_needed())
        while True:
            t = clock()
            item = next(pictures, None)
            st["decode"] += clock() - t
            if item is None:
                break
            k, pic = item
            if self.stop.is_set():
                return
            lo, hi = np.searchsorted(frames_sorted, [k, k + 1])
            for r in order[lo:hi]:
                x0, y0, x1, y1 = (int(v) for v in plan.box[r])
                t = clock()
                crop = pic.crop(x0, y0, x1, y1)
                t1 = clock()
                if self.crops_dir is not None:
                    self._save(crop, int(r))
                t2 = clock()
                resize_one(crop, pre, batch[len(rows)])
                st["convert"] += t1 - t
                st["save_crops"] += t2 - t1
                st["crop"] += clock() - t2
                rows.append(int(r))
                if len(rows) == bs:
                    if not self._put((batch, rows)):
                        return
                    batch = np.empty_like(batch)
                    rows = []
            rate = hi / max(time.perf_counter() - t0, 1e-9)
            self.progress.advance(k - last, crops=int(hi), crops_per_s=f"{rate:.1f}")
            last = k
        if rows:
            self._put((batch[: len(rows)], rows))
        self._put(_DONE)

    def _save(self, crop: np.ndarray, r: int) -> None:
        assert self.crops_dir is not None
        plan = self.plan
        save_crop(crop, self.crops_dir / crop_name(int(plan.track_id[r]), int(plan.frame[r]), int(plan.ordinal[r])),
                  self.jpeg_quality)


def encode_crop(crop: np.ndarray, jpeg_quality: int, path: Path) -> bytes:
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise OutputError(f"{path}: JPEG encoding failed")
    return bytes(buf.tobytes())


def write_crop(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)  # an OSError (disk full, ...) is reported for the output folder (output_errors)


def save_crop(crop: np.ndarray, path: Path, jpeg_quality: int) -> None:
    """One crop as a JPEG (the ``--save-crops`` output)."""
    write_crop(encode_crop(crop, jpeg_quality, path), path)


def embed_plan(source: FrameSource, plan: SamplePlan, embedder: Embedder, crops_dir: Path | None,
               config: ExtractConfig, progress: Progress,
               stages: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run producer + inference; return (features (K, D), filled mask (K,)); add seconds to ``stages``."""
    stages = {} if stages is None else stages
    feats = np.zeros((len(plan), embedder.feature_dim), dtype=np.float32)
    filled = np.zeros(len(plan), dtype=bool)
    if len(plan) == 0:
        return feats, filled
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, config.queue_batches))
    last_needed = int(plan.frame.max())
    progress.start("extract", last_needed, "frames")
    producer = _Producer(source, plan, embedder, q, crops_dir, config.jpeg_quality, progress)
    producer.start()
    embed_s = 0.0
    try:
        while True:
            item = q.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            batch, rows = item
            t = time.perf_counter()
            feats[rows] = embedder.run_prepared(batch)
            embed_s += time.perf_counter() - t
            filled[rows] = True
    finally:
        producer.stop.set()
        producer.join(timeout=30)
        progress.finish()
        for name, sec in producer.stages.items():
            stages[name] = stages.get(name, 0.0) + sec
        stages["embed"] = stages.get("embed", 0.0) + embed_s
    return feats, filled


def aggregate(track_id: np.ndarray, frame: np.ndarray, feats: np.ndarray, meta: dict[str, Any],
              dim: int) -> TrackFeatures:
    """Crops (parallel arrays sorted by track, then frame) -> per-track L2-normalised mean features."""
    items = []
    f = l2_normalize(feats)
    for tid in np.unique(track_id):
        m = track_id == tid
        items.append((int(tid), l2_normalize(f[m].mean(axis=0)), f[m], frame[m]))
    return TrackFeatures.from_tracks(items, meta, dim=dim)


def track_table(spans: dict[int, tuple[int, int, int]], tf: TrackFeatures, save_crops: bool,
                shifts: dict[int, list[int]] | None = None) -> dict[str, Any]:
    """``track_metadata.json``'s ``tracks``: ``spans`` maps track id -> (boxes, first frame, last frame);
    ``shifts`` track id -> frames each crop moved onto a frame decoded anyway (codec-aware sampling)."""
    done = {int(t): i for i, t in enumerate(tf.track_ids)}
    table: dict[str, Any] = {}
    for tid, (count, first, last) in spans.items():
        entry: dict[str, Any] = {"num_frames": int(count), "first_frame": int(first), "last_frame": int(last)}
        i = done.get(tid)
        fr = [int(x) for x in tf.frames_of(i)] if i is not None else []
        entry["frame_indices"] = fr
        entry["num_crops"] = len(fr)
        if shifts is not None:
            entry["frame_shifts"] = shifts.get(tid, [])
        if save_crops and i is not None:  # crop ordinals number a track's crops in frame order
            entry["crops"] = [f"{CROPS_DIR}/{crop_name(tid, f, j)}" for j, f in enumerate(fr)]
        if i is None:
            entry["skipped"] = "no usable box (all empty after clipping or past the end of the video)"
        table[str(tid)] = entry
    return table


def build_metadata(*, desc: dict[str, Any], dim: int, video: dict[str, Any], tracks: TracksReading | None,
                   sampling: SamplingConfig, stats: dict[str, Any], seconds: float, stages: dict[str, float],
                   command: dict[str, Any] | None, tf: TrackFeatures, spans: dict[int, tuple[int, int, int]],
                   save_crops: bool, shifts: dict[int, list[int]] | None = None) -> dict[str, Any]:
    """``track_metadata.json`` (docs/formats.md), the same keys for offline, online and segmented extraction.

    ``desc`` is the embedder's ``describe()`` (model, backend, batch size), ``dim`` its feature size;
    ``tracks`` how the tracks file was read (every later reader reads it the same way).
    """
    crops = int(stats.get("crops_embedded", 0))
    return {
        "tool": {"name": "trackreid", "version": __version__},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command or {},
        "video": video,
        "tracks_file": str(tracks.file) if tracks is not None else None,
        "tracks_reading": tracks.options() if tracks is not None else None,
        "model": desc["model"],
        "backend": desc["backend"],
        "batch_size": desc["batch_size"],
        "features": {"dim": dim, "dtype": "float32", "normalization": NORMALIZATION},
        "sampling": asdict(sampling),
        "stats": stats,
        "timing": {"seconds": round(seconds, 3),
                   "crops_per_second": round(crops / seconds, 2) if seconds > 0 else None,
                   "stages_seconds": {k: round(v, 3) for k, v in stages.items()}},
        "num_tracks": len(tf),
        "tracks": track_table(spans, tf, save_crops, shifts),
    }


class OutputStage:
    """A staging folder inside the output folder: outputs are written there and moved into place
    only when all succeeded (:meth:`publish`); :meth:`close` removes what is left."""

    def __init__(self, out: Path, overwrite: bool, save_crops: bool) -> None:
        check_output_dir(out, overwrite, OUTPUTS)
        self.out, self.save_crops = out, save_crops
        self.created_out = not out.exists()
        self.path: Path | None = None
        with output_errors(out):
            out.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=".trackreid-extract-", dir=out))
            if save_crops:
                (self.path / CROPS_DIR).mkdir()

    @property
    def crops_dir(self) -> Path | None:
        return self.path / CROPS_DIR if self.path is not None and self.save_crops else None

    def publish(self, tf: TrackFeatures, meta: dict[str, Any]) -> None:
        assert self.path is not None
        with output_errors(self.out):
            t = time.perf_counter()
            write_features(tf, self.path)
            meta["timing"]["stages_seconds"]["write"] = round(time.perf_counter() - t, 3)  # the features files
            (self.path / METADATA_NAME).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
            _publish(self.path, self.out, self.save_crops)

    def close(self) -> None:
        if self.path is not None and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
        out = self.out
        if self.created_out and out.exists() and not any(out.iterdir()):
            out.rmdir()


@contextmanager
def output_errors(out: Path | None) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        raise output_error(out if out is not None else Path(str(e.filename or ".")), e) from None


@dataclass
class Inputs:
    """A video, its tracks and the plan of crops for the whole video (made before any decoding)."""

    source: FrameSource
    tracks: Tracks
    reading: TracksReading | None  # how ``tracks`` was read from its file (None: given in memory)
    plan: SamplePlan

    @property
    def tracks_path(self) -> str | None:
        return str(self.reading.file) if self.reading is not None else None


def open_inputs(source: str | Path, tracks: str | Path | Tracks, config: ExtractConfig) -> Inputs:
    """Open the video, read the tracks and plan the crops of every track (the whole video)."""
    src = FrameSource.open(source, seek=config.seek)
    reading = None
    if isinstance(tracks, Tracks):
        trk = tracks
    else:
        reading = TracksReading(Path(tracks).absolute(), config.frame_offset, config.min_visibility,
                                config.tracks_format)
        trk = reading.read()
    referenced = src.referenced_frames() if config.sampling.max_shift > 0 else None
    plan = plan_samples(trk, src.info.width, src.info.height, config.sampling,
                        src.info.frame_count if src.info.kind == "images" else None, referenced)
    if len(plan) == 0 and len(trk):
        raise _nothing_to_crop(trk, src, str(tracks) if reading else None, plan.stats, src.info.frame_count)
    return Inputs(src, trk, reading, plan)


def assemble(inputs: Inputs, feats: np.ndarray, filled: np.ndarray, desc: dict[str, Any], config: ExtractConfig,
             command: dict[str, Any] | None, seconds: float, frames_decoded: int, *,
             frames_skipped: int = 0, stages: dict[str, float] | None = None,
             extra: dict[str, Any] | None = None) -> tuple[TrackFeatures, dict[str, Any]]:
    """Per-crop embeddings of the whole plan -> the track features and ``track_metadata.json``.

    ``desc`` is the embedder's ``describe()``: a segmented run merges parts embedded elsewhere.
    """
    src, plan, trk = inputs.source, inputs.plan, inputs.tracks
    if len(plan) and not filled.any():
        raise _nothing_to_crop(trk, src, inputs.tracks_path, {"boxes_past_end_of_video": len(plan)}, src.last_frame)
    missing = int((~filled).sum())
    stats = {**trk.stats, **plan.stats, "crops_past_end_of_video": missing, "crops_embedded": int(filled.sum()),
             "frames_decoded": int(frames_decoded), "frames_skipped_unreferenced": int(frames_skipped)}
    if missing:
        log.warning("%d planned crops lie past the last frame of %s; they were skipped", missing, src.info.path)
    dim = int(feats.shape[1])
    tf = aggregate(plan.track_id[filled], plan.frame[filled], feats[filled],
                   {"model": desc["model"], "source": str(src.info.path)}, dim)
    spans = {tid: (len(fr), int(fr.min()), int(fr.max())) for tid, fr in plan.track_rows.items()}
    shifts: dict[int, list[int]] | None = None
    if plan.shift is not None:
        shifts = {}
        for t, d in zip(plan.track_id[filled].tolist(), plan.shift[filled].tolist(), strict=True):
            shifts.setdefault(t, []).append(d)
    video = {**src.info.to_dict(), "frames_decoded": int(frames_decoded)}
    meta = build_metadata(desc=desc, dim=dim, video=video, tracks=inputs.reading, sampling=config.sampling,
                          stats=stats, seconds=seconds, stages=stages or {}, command=command, tf=tf, spans=spans,
                          save_crops=config.save_crops, shifts=shifts)
    meta.update(extra or {})
    return tf, meta


def write_outputs(tf: TrackFeatures, meta: dict[str, Any], stage: Path, out: Path, save_crops: bool) -> ExtractResult:
    """Write features and metadata into ``stage`` (which holds ``crops/`` if any), then move them to ``out``."""
    with output_errors(out):
        write_features(tf, stage)
        (stage / METADATA_NAME).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        _publish(stage, out, save_crops)
    return ExtractResult(tf, meta, out, out / CROPS_DIR if save_crops else None)


def extract(
    source: str | Path,
    tracks: str | Path | Tracks,
    embedder: Embedder,
    output_dir: str | Path | None = None,
    config: ExtractConfig | None = None,
    progress: Progress | None = None,
    command: dict[str, Any] | None = None,
) -> ExtractResult:
    """Extract per-track features; write them to ``output_dir`` when given.

    Returns the features and metadata in memory either way. ``command`` (the CLI's
    arguments) is recorded in the metadata.
    """
    config = config or ExtractConfig()
    progress = progress or NullProgress()
    t0 = time.perf_counter()
    out = Path(output_dir) if output_dir is not None else None
    if out is not None:
        check_output_dir(out, config.overwrite, OUTPUTS)  # before reading anything: fail fast
    inputs = open_inputs(source, tracks, config)
    src = inputs.source
    stage = OutputStage(out, config.overwrite, config.save_crops) if out is not None else None
    stages: dict[str, float] = {"plan": time.perf_counter() - t0}  # open, read tracks, demux index, plan
    try:
        with output_errors(out):
            feats, filled = embed_plan(src, inputs.plan, embedder, stage.crops_dir if stage else None, config,
                                       progress, stages)
        tf, meta = assemble(inputs, feats, filled, embedder.describe(), config, command, time.perf_counter() - t0,
                            src.frames_read, frames_skipped=src.frames_skipped, stages=stages)
        if stage is None:
            return ExtractResult(tf, meta, None, None)
        stage.publish(tf, meta)
        return ExtractResult(tf, meta, out, out / CROPS_DIR if (out is not None and config.save_crops) else None)
    finally:
        if stage is not None:
            stage.close()


def _nothing_to_crop(trk: Tracks, src: FrameSource, tracks_path: str | None, stats: dict[str, int],
                     frames: int | None) -> InputError:
    """The error for tracks that have no box inside the source: most likely another video's tracks."""
    name = tracks_path or "the tracks"
    info = src.info
    if stats.get("boxes_past_end_of_video"):
        where = (f"its frames run from frame {int(trk.frame.min())} to frame {int(trk.frame.max())}, but "
                 f"{info.path} has {frames} frames")
    else:
        where = f"all {len(trk)} boxes lie outside the {info.width}x{info.height} frames of {info.path}"
    return InputError(f"{name}: no box to crop: {where}. Are these the tracks of this video (--tracks, --source)? "
                      "Check --frame-offset for files that number frames differently")


def _publish(stage: Path, out: Path, crops: bool) -> None:
    """Move staged outputs into place (each a rename inside one file system)."""
    target = out / CROPS_DIR
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)  # another run's crops: they must not pass for this run's (prepare-data, adapt)
    elif target.exists() or target.is_symlink():
        target.unlink()
    if crops:
        os.replace(stage / CROPS_DIR, target)
    for name in (NPZ_NAME, PKL_NAME, METADATA_NAME):
        os.replace(stage / name, out / name)
