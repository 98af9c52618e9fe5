"""``run_site``: plan every camera, run the missing segments on an engine, merge, associate.

Resume: a camera whose marker holds the same key is skipped; otherwise only its segments
without a matching done marker run. One camera's failure (missing video, corrupt file, bad
tracks) is recorded in ``run.json`` and the others go on; association runs over the cameras
that finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trackreid import __version__
from trackreid.errors import InputError, TrackReidError
from trackreid.extract import ExtractResult
from trackreid.io.atomic import atomic_path
from trackreid.run import store
from trackreid.run.plan import CameraPlan, SegmentJob, embedder_spec, extract_config, plan_camera, resolve_spec
from trackreid.run.site import Site

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")
RUN_JSON = "run.json"
ASSOCIATE_DIR = "associate"
ASSOCIATE_MARKER = ".trackreid-run.json"

Event = tuple[str, str, dict[str, Any]]


@dataclass
class RunResult:
    output_dir: Path
    cameras: dict[str, ExtractResult]
    failures: dict[str, str]  # camera -> one-line message
    association: Any | None
    report: dict[str, Any] = field(default_factory=dict)  # what run.json holds

    @property
    def ok(self) -> bool:
        return not self.failures and not self.report.get("associate", {}).get("error")


def _weights_sha256(reid_model: str) -> tuple[str, str]:
    from trackreid.models.weights import sha256_file
    from trackreid.models.zoo import resolve_weights

    path = resolve_weights(reid_model)
    return str(path), sha256_file(path)


def _run_engine(engine: str, jobs: list[SegmentJob], on_event: Callable[[Event], None], workers: int | None,
                address: str | None) -> dict[str, Any]:
    if engine == "local":
        from trackreid.run.engines import local

        return local.run_jobs(jobs, on_event, workers)
    from trackreid.run.engines import ray as ray_engine

    return ray_engine.run_jobs(jobs, on_event, workers, address)


def _associate(site: Site, done: dict[str, ExtractResult], out: Path, keys: dict[str, str], force: bool,
               engine: str = "local", address: str | None = None, workers: int | None = None) -> tuple[
        Any, dict[str, Any]]:
    """Associate the cameras done; on the Ray engine with ``associate: {window: ...}`` the time shards of the
    neighbour search are Ray tasks (trackreid.associate.shards; the threshold and clustering join them here)."""
    from trackreid.associate import CameraInput, associate, write_association

    cams = [c for c in site.cameras if c.name in done]
    config = site.options.associate  # its topology is the file's content, read with the site file
    key = hashlib.sha256(json.dumps({"version": __version__,
                                     "cameras": [[c.name, keys[c.name], c.fps, c.time_offset] for c in cams],
                                     "options": config.to_dict()}, sort_keys=True, default=str)
                         .encode()).hexdigest()[:20]
    adir = out / ASSOCIATE_DIR
    try:
        marker = json.loads((adir / ASSOCIATE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        marker = {}
    if not force and marker.get("key") == key and (adir / "global_ids.json").is_file():
        return None, {"status": "skipped (unchanged)", "cameras": len(cams), **marker.get("summary", {})}
    t0 = time.perf_counter()
    inputs = [CameraInput(c.name, out / "cameras" / c.name, fps=c.fps, time_offset=c.time_offset, tracks=c.tracks)
              for c in cams]
    if engine == "ray" and config.window is not None:
        from trackreid.run.engines import ray as ray_engine

        with ray_engine.session(address, workers):
            result = associate(inputs, config, engine="ray")
    else:
        result = associate(inputs, config)
    write_association(result, adir, overwrite=True)
    summary = json.loads(json.dumps(result.summary, default=str))
    with atomic_path(adir / ASSOCIATE_MARKER) as tmp:
        tmp.write_text(json.dumps({"key": key, "summary": summary}), encoding="utf-8")
    return result, {"status": "done", "cameras": len(cams), "seconds": round(time.perf_counter() - t0, 3),
                    **summary}


def run_site(site: Site, output_dir: str | Path, engine: str = "local", workers: int | None = None,
             address: str | None = None, force: bool = False, segment_minutes: float | None = None,
             on_event: Callable[[Event], None] | None = None, command: dict[str, Any] | None = None,
             associate: bool = True) -> RunResult:
    """Extract every camera of ``site`` into ``output_dir/cameras/<name>/``, then associate them.

    ``on_event`` receives ``(kind, job_id, info)`` for kinds ``planned`` (job id ``""``,
    info ``{"jobs": n}``), ``start``, ``advance``, ``done``, ``failed``, ``retry``.
    """
    if engine not in ENGINES:
        raise InputError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    emit = on_event or (lambda e: None)
    out = Path(output_dir)
    t_start = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    opts = site.options
    assert opts.reid_model is not None
    config = extract_config(opts)
    weights_path, weights_sha = _weights_sha256(opts.reid_model)
    log.info("resolving the backend (%s on %s)", opts.backend, opts.device)
    spec = resolve_spec(embedder_spec(opts, opts.reid_model))
    minutes = segment_minutes or opts.segment_minutes

    failures: dict[str, str] = {}
    plans: dict[str, CameraPlan] = {}
    report_cams: dict[str, dict[str, Any]] = {}
    results: dict[str, ExtractResult] = {}
    jobs: list[SegmentJob] = []
    log.info("planning %d cameras", len(site.cameras))
    for cam in site.cameras:
        cam_dir = out / "cameras" / cam.name
        try:
            cplan = plan_camera(cam, config, spec, weights_sha, minutes, (cam_dir / store.PARTS_DIR).resolve())
        except TrackReidError as e:
            failures[cam.name] = str(e)
            report_cams[cam.name] = {"status": "failed", "error": str(e)}
            continue
        plans[cam.name] = cplan
        if not force and store.camera_done(cam_dir, cplan.key):
            results[cam.name] = store.load_camera(cam_dir)
            report_cams[cam.name] = {"status": "skipped (unchanged)", "segments": len(cplan.jobs)}
            continue
        if force:
            for j in cplan.jobs:
                store.done_path(j).unlink(missing_ok=True)
        store.clean_stale(cam_dir / store.PARTS_DIR)
        todo = [j for j in cplan.jobs if store.read_done(j) is None]
        report_cams[cam.name] = {"status": "pending", "segments": len(cplan.jobs),
                                 "segments_reused": len(cplan.jobs) - len(todo), "segments_run": len(todo)}
        jobs += todo
    emit(("planned", "", {"jobs": len(jobs), "cameras": len(site.cameras)}))
    log.info("extracting %d segments", len(jobs))
    outcomes = _run_engine(engine, jobs, emit, workers, address) if jobs else {}

    seg_errors: dict[str, list[str]] = {}
    for o in outcomes.values():
        if not o.ok:
            seg_errors.setdefault(o.job_id.split("/")[0], []).append(o.error or "failed")
    for name, cplan in plans.items():
        if name in results:
            continue
        cam_dir = out / "cameras" / name
        if name in seg_errors:
            failures[name] = seg_errors[name][0]
            report_cams[name].update(status="failed", error=seg_errors[name][0], errors=seg_errors[name])
            continue
        try:
            log.info("merging camera %s", name)
            results[name] = store.merge(cplan, cam_dir, config, command)
        except TrackReidError as e:
            failures[name] = str(e)
            report_cams[name].update(status="failed", error=str(e))
            continue
        meta = results[name].metadata
        report_cams[name].update(status="done", tracks=meta["num_tracks"], crops=meta["stats"]["crops_embedded"],
                                 seconds=meta["timing"]["seconds"],
                                 hosts=sorted({str(s.get("host")) for s in meta.get("segments", [])}))

    association = None
    assoc_report: dict[str, Any] = {"status": "not run"}
    if associate and len(results) >= 1:
        try:
            log.info("associating %d cameras", len(results))
            association, assoc_report = _associate(site, results, out, {n: p.key for n, p in plans.items()}, force,
                                                   engine, address, workers)
        except TrackReidError as e:
            assoc_report = {"status": "failed", "error": str(e)}
    report = {
        "tool": {"name": "trackreid", "version": __version__},
        "site": str(site.path),
        "command": command or {},
        "engine": engine,
        "address": address,
        "host": socket.gethostname(),
        "started": started,
        "seconds": round(time.perf_counter() - t_start, 3),
        "model": {"reid_model": opts.reid_model, "path": weights_path, "weights_sha256": weights_sha},
        "segment_minutes": minutes,
        "jobs": {"run": len(jobs), "failed": sum(1 for o in outcomes.values() if not o.ok)},
        "cameras": report_cams,
        "associate": assoc_report,
        "failures": [{"camera": k, "error": v} for k, v in failures.items()],
    }
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / RUN_JSON) as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return RunResult(out, results, failures, association, report)
