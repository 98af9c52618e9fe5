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


class Associator:
    """The site's side of a replay: the :class:`LiveAssociator`, ``events.jsonl`` and what the cameras said.

    Cameras send it ``(kind, camera, payload, ...)`` messages through :meth:`put` (``started``,
    ``track`` with the time it was sent, ``done``, ``failed``); in-process for the local engine,
    as one Ray actor for the Ray engine (:mod:`trackreid.live.ray_engine`)."""

    def __init__(self, cameras: list[str], config: Any, state: str, events: str) -> None:
        from trackreid.associate.live import LiveAssociator

        self.counts = {"assigned": 0, "merged": 0, "split": 0}
        self.live = LiveAssociator(cameras, config, state=state, revise="background", on_event=self._write)
        written = _complete_lines(Path(events))
        self.file = open(events, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if self.live.n:  # a rerun after a kill: the events stored but not yet written, once
            for e in self.live.events(since=written):
                self._write(e)
        self.status = dict.fromkeys(cameras, "running")
        self.info: dict[str, dict[str, Any]] = {n: {} for n in cameras}
        self.failures: dict[str, str] = {}
        self.latency: list[float] = []
        self.skipped = 0

    def _write(self, e: dict[str, Any]) -> None:
        self.counts[e["event"]] += 1
        self.file.write(json.dumps(e) + "\n")
        self.file.flush()

    def put(self, item: tuple[Any, ...]) -> None:
        kind, name, payload, *rest = item
        if kind == "track":
            if self.live.has(name, payload.track_id):  # a rerun: associated before
                self.skipped += 1
                return
            self.live.add(name, payload)
            self.latency.append(time.time() - rest[0])
        elif kind == "started":
            self.info[name].update(payload)
        elif kind == "done":
            self.status[name] = "done"
            self.info[name].update(payload)
        elif kind == "failed":
            self.fail(name, str(payload))

    def fail(self, name: str, message: str) -> None:
        if self.status[name] == "running":
            self.status[name] = "failed"
            self.failures[name] = message
            log.error("camera %s failed: %s; the other cameras go on", name, message)

    def poll(self) -> dict[str, str]:
        self.live.poll()
        return dict(self.status)

    def finish(self) -> dict[str, Any]:
        """The last revision; what the report and the files need."""
        self.live.finish()
        return {"global_ids": self.live.global_ids(), "stats": dict(self.live.stats), "tracks": self.live.n,
                "identities": len(set(self.live.identity.tolist())), "threshold": self.live.threshold,
                "status": dict(self.status), "info": self.info, "failures": dict(self.failures),
                "latency": list(self.latency), "counts": dict(self.counts), "skipped": self.skipped}

    def close(self) -> None:
        self.live.close()
        self.file.close()


def _complete_lines(path: Path) -> int:
    """The last event ``seq`` in ``path``, after cutting a line a killed writer left half-written (0: none)."""
    if not path.is_file():
        return 0
    data = path.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    if len(keep) != len(data):
        with open(path, "r+b") as f:
            f.truncate(len(keep))
    lines = keep.splitlines()
    return int(json.loads(lines[-1])["seq"]) if lines else 0


def prepare_output(out: Path, overwrite: bool) -> None:
    """Check ``out`` and clear a finished run from it when ``overwrite``."""
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


def run_live(site: Site, output_dir: str | Path, speed: float | None = 1.0, *, overwrite: bool = False,
             idle_frames: int = 50, on_camera_start: Callable[[str, int], None] | None = None,
             command: dict[str, Any] | None = None, engine: str = "local",
             address: str | None = None) -> LiveRunResult:
    """Replay ``site`` as if live into ``output_dir`` (module docstring); ``engine="ray"``: camera tasks on
    the Ray cluster's nodes, the associator one actor on this node (:mod:`trackreid.live.ray_engine`)."""
    import multiprocessing

    out = Path(output_dir)
    prepare_output(out, overwrite)
    names = [c.name for c in site.cameras]
    t0 = time.time() + 0.5
    clock0 = min(c.time_offset for c in site.cameras)
    t_start = time.perf_counter()
    if engine == "ray":
        from trackreid.live import ray_engine

        final = ray_engine.replay(site, out, speed, idle_frames, t0, clock0, address)
    else:
        final = _replay_local(site, out, speed, idle_frames, t0, clock0, on_camera_start, multiprocessing)
    replay_seconds = time.perf_counter() - t_start
    status, failures = final["status"], final["failures"]
    association = _write_association(site, out, final, status, overwrite=True)
    lat = np.asarray(final["latency"]) if final["latency"] else np.zeros(1)
    report = {
        "site": str(site.path), "speed": "max" if speed is None else speed, "idle_frames": idle_frames,
        "engine": engine,
        "cameras": {n: {"status": status[n], **final["info"][n], **({"error": failures[n]} if n in failures else {})}
                    for n in names},
        "tracks": final["tracks"], "identities": final["identities"], "events": final["counts"],
        "tracks_skipped_as_already_associated": final["skipped"],
        "latency_seconds": {"tracks": len(final["latency"]), "p50": round(float(np.percentile(lat, 50)), 4),
                            "p99": round(float(np.percentile(lat, 99)), 4), "max": round(float(lat.max()), 4),
                            "from": "the camera process finding the track ended to its identity"},
        "associator": final["stats"], "threshold": final["threshold"], "seconds": round(replay_seconds, 2),
        "command": command, "failures": [{"camera": n, "error": e} for n, e in failures.items()]}
    tmp = out / f".{REPORT}.tmp"
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, out / REPORT)
    return LiveRunResult(out, failures, report, association)


def _replay_local(site: Site, out: Path, speed: float | None, idle_frames: int, t0: float, clock0: float,
                  on_camera_start: Callable[[str, int], None] | None, multiprocessing: Any) -> dict[str, Any]:
    names = [c.name for c in site.cameras]
    handler = Associator(names, site.options.associate, str(out / STATE), str(out / EVENTS))
    ctx = multiprocessing.get_context("spawn")
    sink = ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // len(names))
    procs: dict[str, Any] = {}
    try:
        for cam in site.cameras:
            p = ctx.Process(target=_camera_main, name=f"trackreid-live-{cam.name}", daemon=True,
                            args=(cam, site.options, str(out / CAMERAS / cam.name), sink, speed, t0, clock0,
                                  threads, idle_frames))
            p.start()
            procs[cam.name] = p
            if on_camera_start is not None and p.pid is not None:
                on_camera_start(cam.name, p.pid)
        while "running" in handler.status.values():
            try:
                item = sink.get(timeout=0.2)
            except queue.Empty:
                handler.poll()
                for n, p in procs.items():
                    if handler.status[n] == "running" and not p.is_alive():
                        handler.fail(n, f"the camera process died (exit code {p.exitcode})")
                continue
            handler.put(item)
        return handler.finish()
    finally:
        handler.close()
        for p in procs.values():
            if p.is_alive():
                p.terminate()
            p.join(5)


def _write_association(site: Site, out: Path, final: dict[str, Any], status: dict[str, str], overwrite: bool) -> Any:
    """The files of ``trackreid associate`` for the cameras that finished, with the live identities."""
    from trackreid.associate import CameraInput, associate, write_association

    done = [c for c in site.cameras if status[c.name] == "done"]
    if not done:
        return None
    cams = [CameraInput(c.name, out / CAMERAS / c.name, fps=c.fps, time_offset=c.time_offset, tracks=c.tracks)
            for c in done]
    result = associate(cams, site.options.associate)
    ids = final["global_ids"]
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
                              "revisions": final["stats"]["revisions"],
                              "changes_refused": final["stats"]["changes_refused"]}
    write_association(result, out / ASSOCIATE, overwrite=overwrite)
    return result
