"""``trackreid live``: a site's videos replayed as if live, one process per camera, one associator.

Each camera process decodes its video, feeds every frame and that frame's rows of the tracks file
to a :class:`~trackreid.live.camera.LiveCamera` (an :class:`~trackreid.online.OnlineCollector`),
paced on the site clock (``time_offset + (frame - 1) / fps``) at ``speed`` times real time, or as
fast as it can (``speed=None``). A track ends when the tracks file stops reporting it for
``idle_frames`` frames; the camera process then sends it to this process, where a
:class:`~trackreid.associate.live.LiveAssociator` gives its identity (events appended to
``events.jsonl``). A camera process that fails or dies is reported; the others go on. At the
end: a last revision, each camera's extract files (``cameras/<name>/``) and the files of
``trackreid associate`` with the live identities (``associate/``), and ``live.json``.

Run again on the same output folder, it continues from ``live_state.sqlite``: the tracks already
associated keep their identities and are not added again.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.errors import InputError, TrackReidError
from trackreid.run.site import Camera, Site, SiteOptions

log = logging.getLogger(__name__)

EVENTS = "events.jsonl"
STATE = "live_state.sqlite"
REPORT = "live.json"
CAMERAS = "cameras"
ASSOCIATE = "associate"


@dataclass
class LiveRunResult:
    output_dir: Path
    failures: dict[str, str]  # camera -> one-line message
    report: dict[str, Any] = field(default_factory=dict)
    association: Any | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


def parse_speed(value: str) -> float | None:
    """``--speed``: ``max`` (None: as fast as decoding goes) or a positive factor of real time."""
    if str(value).strip().lower() == "max":
        return None
    try:
        v = float(value)
    except ValueError:
        raise InputError(f"--speed {value!r}: expected a positive factor of real time such as 1.0 or 10, "
                         "or max") from None
    if not (np.isfinite(v) and v > 0):
        raise InputError(f"--speed {value!r}: expected a positive factor of real time such as 1.0 or 10, or max")
    return v


def _camera_main(cam: Camera, options: SiteOptions, out_dir: str, sink: Any, speed: float | None, t0: float,
                 clock0: float, threads: int, idle_frames: int) -> None:
    """One camera process: decode, track ends, send them (module docstring)."""
    from trackreid.run.worker import setup_worker

    setup_worker(threads)
    name = cam.name
    try:
        from trackreid.embed.factory import build_embedder
        from trackreid.io.mot import TracksReading
        from trackreid.io.video import FrameSource
        from trackreid.live.camera import LiveCamera
        from trackreid.online import OnlineCollector, OnlineConfig
        from trackreid.run.plan import extract_config

        config = extract_config(options)
        reading = TracksReading(Path(cam.tracks).absolute(), config.frame_offset, config.min_visibility,
                                config.tracks_format)
        trk = reading.read()
        src = FrameSource.open(cam.video)
        fps = cam.fps or src.info.fps
        if not fps:
            raise InputError(f"camera {name}: the video's frame rate is unknown; set fps for it in the site file")
        embedder = build_embedder(str(options.reid_model), device=options.device, backend=options.backend,
                                  arch=options.arch, batch_size=options.batch_size)
        collector = OnlineCollector(embedder, out_dir, OnlineConfig(config.sampling, save_crops=options.save_crops,
                                                                    overwrite=True, idle_frames=idle_frames),
                                    source=str(cam.video), fps=float(fps), tracks_file=str(reading.file))
        camera = LiveCamera(name, collector, float(fps), cam.time_offset)
        sink.put(("started", name, {"pid": os.getpid(), "fps": float(fps)}))
        last = int(trk.frame.max()) if len(trk) else 0
        sent = frames = 0
        for k, pic in src.pictures(range(1, last + 1)):
            if speed is not None:
                due = t0 + (cam.time_offset + (k - 1) / fps - clock0) / speed
                wait = due - time.time()
                if wait > 0:
                    time.sleep(wait)
            frames += 1
            for track in camera.update_mot(k, pic, trk):
                sink.put(("track", name, track, time.time()))
                sent += 1
        for track in camera.close_stream():
            sink.put(("track", name, track, time.time()))
            sent += 1
        camera.finish()
        sink.put(("done", name, {"frames": frames, "tracks_sent": sent, "tracks_reappeared": camera.reappeared}))
    except TrackReidError as e:
        sink.put(("failed", name, str(e)))
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - this camera's failure; the others go on
        sink.put(("failed", name, f"{type(e).__name__}: {e}"))
        sys.exit(1)


def run_live(site: Site, output_dir: str | Path, speed: float | None = 1.0, *, overwrite: bool = False,
             idle_frames: int = 50, on_camera_start: Callable[[str, int], None] | None = None,
             command: dict[str, Any] | None = None) -> LiveRunResult:
    """Replay ``site`` as if live into ``output_dir`` (module docstring)."""
    import multiprocessing

    from trackreid.associate.live import LiveAssociator

    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is a file; --output-dir must be a folder")
    if overwrite:
        for stale in (EVENTS, STATE, f"{STATE}-wal", f"{STATE}-shm", REPORT):
            (out / stale).unlink(missing_ok=True)
        shutil.rmtree(out / ASSOCIATE, ignore_errors=True)
    elif (out / REPORT).exists():
        raise InputError(f"{out}: holds a finished live run ({REPORT}); pass --overwrite to replay it again or "
                         "choose another --output-dir")
    (out / CAMERAS).mkdir(parents=True, exist_ok=True)
    names = [c.name for c in site.cameras]
    events_file = open(out / EVENTS, "a", encoding="utf-8")  # noqa: SIM115 - closed in finally
    counts = {"assigned": 0, "merged": 0, "split": 0}

    def write_event(e: dict[str, Any]) -> None:
        counts[e["event"]] += 1
        events_file.write(json.dumps(e) + "\n")
        events_file.flush()

    live = LiveAssociator(names, site.options.associate, state=out / STATE, revise="background",
                          on_event=write_event)
    ctx = multiprocessing.get_context("spawn")
    sink = ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // len(names))
    t0 = time.time() + 0.5
    clock0 = min(c.time_offset for c in site.cameras)
    procs: dict[str, Any] = {}
    status: dict[str, str] = {}
    info: dict[str, dict[str, Any]] = {n: {} for n in names}
    failures: dict[str, str] = {}
    latency: list[float] = []
    skipped = 0
    t_start = time.perf_counter()
    try:
        for cam in site.cameras:
            p = ctx.Process(target=_camera_main, name=f"trackreid-live-{cam.name}", daemon=True,
                            args=(cam, site.options, str(out / CAMERAS / cam.name), sink, speed, t0, clock0,
                                  threads, idle_frames))
            p.start()
            procs[cam.name] = p
            status[cam.name] = "running"
            if on_camera_start is not None and p.pid is not None:
                on_camera_start(cam.name, p.pid)
        while "running" in status.values():
            try:
                kind, name, payload, *rest = sink.get(timeout=0.2)
            except queue.Empty:
                live.poll()
                for n, p in procs.items():
                    if status[n] == "running" and not p.is_alive():
                        status[n] = "failed"
                        failures[n] = f"the camera process died (exit code {p.exitcode})"
                        log.error("camera %s: %s; the other cameras go on", n, failures[n])
                continue
            if kind == "track":
                if live.has(name, payload.track_id):  # a rerun: associated before
                    skipped += 1
                    continue
                live.add(name, payload)
                latency.append(time.time() - rest[0])
            elif kind == "started":
                info[name].update(payload)
            elif kind == "done":
                status[name] = "done"
                info[name].update(payload)
            elif kind == "failed":
                status[name] = "failed"
                failures[name] = str(payload)
                log.error("camera %s failed: %s; the other cameras go on", name, payload)
        live.finish()
        replay_seconds = time.perf_counter() - t_start
        association = _write_association(site, out, live, status, overwrite=True)
        lat = np.asarray(latency) if latency else np.zeros(1)
        report = {
            "site": str(site.path), "speed": "max" if speed is None else speed, "idle_frames": idle_frames,
            "cameras": {n: {"status": status[n], **info[n], **({"error": failures[n]} if n in failures else {})}
                        for n in names},
            "tracks": live.n, "identities": len(set(live.identity.tolist())), "events": counts,
            "tracks_skipped_as_already_associated": skipped,
            "latency_seconds": {"tracks": len(latency), "p50": round(float(np.percentile(lat, 50)), 4),
                                "p99": round(float(np.percentile(lat, 99)), 4),
                                "max": round(float(lat.max()), 4),
                                "from": "the camera process finding the track ended to its identity"},
            "associator": live.stats, "threshold": live.threshold, "seconds": round(replay_seconds, 2),
            "command": command, "failures": [{"camera": n, "error": e} for n, e in failures.items()]}
        tmp = out / f".{REPORT}.tmp"
        tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, out / REPORT)
        return LiveRunResult(out, failures, report, association)
    finally:
        live.close()
        events_file.close()
        for p in procs.values():
            if p.is_alive():
                p.terminate()
            p.join(5)


def _write_association(site: Site, out: Path, live: Any, status: dict[str, str], overwrite: bool) -> Any:
    """The files of ``trackreid associate`` for the cameras that finished, with the live identities."""
    from trackreid.associate import CameraInput, associate, write_association

    done = [c for c in site.cameras if status[c.name] == "done"]
    if not done:
        return None
    cams = [CameraInput(c.name, out / CAMERAS / c.name, fps=c.fps, time_offset=c.time_offset, tracks=c.tracks)
            for c in done]
    result = associate(cams, site.options.associate)
    ids = live.global_ids()
    next_id = 1 + max((g for m in ids.values() for g in m.values()), default=0)
    global_ids: dict[str, dict[int, int]] = {}
    for cam, m in result.global_ids.items():
        global_ids[cam] = {}
        for tid in sorted(m):
            g = ids.get(cam, {}).get(tid)
            if g is None:  # a track without features (extract skipped it), or one the camera never sent
                g, next_id = next_id, next_id + 1
            global_ids[cam][tid] = g
    rows = [global_ids[result.tracks.cameras[c]][t] for c, t in zip(result.tracks.camera.tolist(),
                                                                     result.tracks.track_id.tolist(), strict=True)]
    _, result.labels = np.unique(np.asarray(rows, np.int64), return_inverse=True)
    result.global_ids = global_ids
    result.summary["live"] = {"identities_from": "trackreid live (the live associator's final identities)",
                              "revisions": live.stats["revisions"], "changes_refused": live.stats["changes_refused"]}
    write_association(result, out / ASSOCIATE, overwrite=overwrite)
    return result
