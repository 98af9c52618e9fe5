"""The main job: video + MOT tracks -> per-track OSNet features.

plan (which boxes) -> decode (one forward pass, only sampled frames converted) -> crop ->
embed (batched) -> aggregate -> write. Decoding and cropping run in a producer thread while
the calling thread runs inference, through a queue of at most ``queue_batches`` batches, so
memory is bounded by the batch size, not by the video's length.

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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from trackreid import __version__
from trackreid.embed.backend import Embedder
from trackreid.embed.preprocess import l2_normalize, resize_one
from trackreid.errors import OutputError
from trackreid.io.atomic import check_output_dir
from trackreid.io.features import NPZ_NAME, PKL_NAME, TrackFeatures, write_features
from trackreid.io.mot import Tracks, read_mot
from trackreid.io.video import FrameSource
from trackreid.progress import NullProgress, Progress
from trackreid.sampling import SamplePlan, SamplingConfig, plan_samples

log = logging.getLogger(__name__)

METADATA_NAME = "track_metadata.json"
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
    seek: bool = True  # sparse samples: skip groups of pictures that hold none (PyAV; timestamps checked)


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
        for k, img in self.source.frames(plan.frames_needed()):
            if self.stop.is_set():
                return
            lo, hi = np.searchsorted(frames_sorted, [k, k + 1])
            for r in order[lo:hi]:
                x0, y0, x1, y1 = (int(v) for v in plan.box[r])
                crop = img[y0:y1, x0:x1]
                if self.crops_dir is not None:
                    self._save(crop, int(r))
                resize_one(crop, pre, batch[len(rows)])
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
        path = self.crops_dir / crop_name(int(plan.track_id[r]), int(plan.frame[r]), int(plan.ordinal[r]))
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise OutputError(f"{path}: JPEG encoding failed")
        try:
            path.write_bytes(buf.tobytes())
        except OSError as e:
            raise OutputError(f"{path}: cannot write crop ({e.strerror})") from None


def embed_plan(source: FrameSource, plan: SamplePlan, embedder: Embedder, crops_dir: Path | None,
                config: ExtractConfig, progress: Progress) -> tuple[np.ndarray, np.ndarray]:
    """Run producer + inference; return (features (K, D), filled mask (K,))."""
    feats = np.zeros((len(plan), embedder.feature_dim), dtype=np.float32)
    filled = np.zeros(len(plan), dtype=bool)
    if len(plan) == 0:
        return feats, filled
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, config.queue_batches))
    last_needed = int(plan.frame.max())
    progress.start("extract", last_needed, "frames")
    producer = _Producer(source, plan, embedder, q, crops_dir, config.jpeg_quality, progress)
    producer.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            batch, rows = item
            feats[rows] = embedder.run_prepared(batch)
            filled[rows] = True
    finally:
        producer.stop.set()
        producer.join(timeout=30)
        progress.finish()
    return feats, filled


def _aggregate(plan: SamplePlan, feats: np.ndarray, filled: np.ndarray,
               meta: dict[str, Any]) -> TrackFeatures:
    items = []
    tids = plan.track_id[filled]
    frames = plan.frame[filled]
    f = l2_normalize(feats[filled])
    for tid in np.unique(tids):
        m = tids == tid
        items.append((int(tid), l2_normalize(f[m].mean(axis=0)), f[m], frames[m]))
    return TrackFeatures.from_tracks(items, meta, dim=feats.shape[1])


def _track_table(plan: SamplePlan, tf: TrackFeatures, save_crops: bool) -> dict[str, Any]:
    done = {int(t): i for i, t in enumerate(tf.track_ids)}
    table: dict[str, Any] = {}
    for tid, frames in plan.track_rows.items():
        entry: dict[str, Any] = {
            "num_frames": len(frames),
            "first_frame": int(frames.min()),
            "last_frame": int(frames.max()),
        }
        i = done.get(tid)
        fr = [int(x) for x in tf.frames_of(i)] if i is not None else []
        entry["frame_indices"] = fr
        entry["num_crops"] = len(fr)
        if save_crops and i is not None:
            m = plan.track_id == tid
            embedded = set(fr)
            entry["crops"] = [f"{CROPS_DIR}/{crop_name(tid, int(f), int(o))}"
                              for f, o in zip(plan.frame[m], plan.ordinal[m], strict=True) if int(f) in embedded]
        if i is None:
            entry["skipped"] = "no usable box (all empty after clipping or past the end of the video)"
        table[str(tid)] = entry
    return table


@dataclass
class Inputs:
    """A video, its tracks and the plan of crops for the whole video (made before any decoding)."""

    source: FrameSource
    tracks: Tracks
    tracks_path: str | None
    plan: SamplePlan


def open_inputs(source: str | Path, tracks: str | Path | Tracks, config: ExtractConfig) -> Inputs:
    """Open the video, read the tracks and plan the crops of every track."""
    src = FrameSource.open(source, seek=config.seek)
    if isinstance(tracks, Tracks):
        trk, tracks_path = tracks, None
    else:
        trk = read_mot(tracks, config.frame_offset, config.min_visibility, config.tracks_format)
        tracks_path = str(tracks)
    plan = plan_samples(trk, src.info.width, src.info.height, config.sampling,
                        src.info.frame_count if src.info.kind == "images" else None)
    return Inputs(src, trk, tracks_path, plan)


def assemble(inputs: Inputs, feats: np.ndarray, filled: np.ndarray, desc: dict[str, Any], config: ExtractConfig,
             command: dict[str, Any] | None, seconds: float, frames_decoded: int,
             extra: dict[str, Any] | None = None) -> tuple[TrackFeatures, dict[str, Any]]:
    """Per-crop embeddings of the whole plan -> the track features and the metadata."""
    src, plan = inputs.source, inputs.plan
    missing = int((~filled).sum())
    stats = {**inputs.tracks.stats, **plan.stats, "crops_past_end_of_video": missing,
             "crops_embedded": int(filled.sum()), "frames_decoded": int(frames_decoded)}
    if missing:
        log.warning("%d planned crops lie past the last frame of %s; they were skipped", missing, src.info.path)
    dim = int(feats.shape[1])
    meta: dict[str, Any] = {
        "tool": {"name": "trackreid", "version": __version__},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command or {},
        "video": {**src.info.to_dict(), "frames_decoded": int(frames_decoded)},
        "tracks_file": inputs.tracks_path,
        "model": desc["model"],
        "backend": desc["backend"],
        "batch_size": desc["batch_size"],
        "features": {"dim": dim, "dtype": "float32", "normalization": NORMALIZATION},
        "sampling": asdict(config.sampling),
        "stats": stats,
        "timing": {"seconds": round(seconds, 3),
                   "crops_per_second": round(int(filled.sum()) / seconds, 2) if seconds > 0 else None},
        **(extra or {}),
    }
    tf = _aggregate(plan, feats, filled, {"model": desc["model"], "source": src.info.path})
    meta["num_tracks"] = len(tf)
    meta["tracks"] = _track_table(plan, tf, config.save_crops)
    return tf, meta


def write_outputs(tf: TrackFeatures, meta: dict[str, Any], stage: Path, out: Path, save_crops: bool) -> ExtractResult:
    """Write features and metadata into ``stage`` (which holds ``crops/`` if any), then move them to ``out``."""
    try:
        write_features(tf, stage)
        (stage / METADATA_NAME).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
        _publish(stage, out, save_crops)
    except OSError as e:
        raise OutputError(f"{out}: cannot write outputs ({e.strerror or e}); check free space and "
                          "permissions") from None
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
        check_output_dir(out, config.overwrite, OUTPUTS)
    inputs = open_inputs(source, tracks, config)

    stage: Path | None = None
    created_out = False
    try:
        if out is not None:
            created_out = not out.exists()
            out.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix=".trackreid-extract-", dir=out))
        crops_dir = stage / CROPS_DIR if (stage is not None and config.save_crops) else None
        if crops_dir is not None:
            crops_dir.mkdir()
        feats, filled = embed_plan(inputs.source, inputs.plan, embedder, crops_dir, config, progress)
        tf, meta = assemble(inputs, feats, filled, embedder.describe(), config, command,
                            time.perf_counter() - t0, inputs.source.frames_read)
        if out is None or stage is None:
            return ExtractResult(tf, meta, None, None)
        return write_outputs(tf, meta, stage, out, config.save_crops)
    except OSError as e:
        raise OutputError(f"{out}: cannot write outputs ({e.strerror or e}); check free space and "
                          "permissions") from None
    finally:
        if stage is not None and stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
        if created_out and out is not None and out.exists() and not any(out.iterdir()):
            out.rmdir()


def _publish(stage: Path, out: Path, crops: bool) -> None:
    """Move staged outputs into place (each a rename inside one file system)."""
    if crops:
        target = out / CROPS_DIR
        if target.exists():
            shutil.rmtree(target)
        os.replace(stage / CROPS_DIR, target)
    for name in (NPZ_NAME, PKL_NAME, METADATA_NAME):
        os.replace(stage / name, out / name)
