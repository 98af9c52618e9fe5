"""``associate``: one global identity per person across cameras, in memory."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.associate.cluster import cluster_graph
from trackreid.associate.config import REVISIT_GAP, SAME_CAMERA_MARGIN, AssociateConfig
from trackreid.associate.constraints import Constraints
from trackreid.associate.corrections import Corrections, Resolved, describe_changes, resolve
from trackreid.associate.corrections import summary as corrections_summary
from trackreid.associate.graph import Graph, build_graph
from trackreid.associate.motion import Endpoints
from trackreid.associate.result import Association
from trackreid.associate.threshold import auto_threshold
from trackreid.associate.tracks import CameraInput, CameraTracksFile, LoadedCamera, TrackSet, load_cameras
from trackreid.associate.transit import MIN_SD, MIN_STEPS, SPREAD, learn_topology
from trackreid.progress import NullProgress, Progress

log = logging.getLogger(__name__)

__all__ = ["REVISIT_GAP", "SAME_CAMERA_MARGIN", "AssociateConfig", "Association", "associate",
           "associate_to_folder", "build_constraints", "read_tracks_files"]

_REFUSED = {"same_camera_overlap": "share a moment in one camera", "cannot_link": "a cannot-link keeps apart"}


def read_tracks_files(tracks: TrackSet, loaded: Sequence[CameraTracksFile],
                      motion_gate: bool = True) -> tuple[Endpoints, dict[str, set[int]]]:
    """Each camera's tracks file, read once as extract read it: the motion endpoints of its tracks (when
    ``motion_gate`` and its fps is known; see :mod:`trackreid.associate.motion`) and the track ids it holds."""
    endpoints = Endpoints.empty(len(tracks))
    ids: dict[str, set[int]] = {}
    for c, cam in enumerate(loaded):
        if cam.tracks is None:
            continue
        mot = cam.tracks.read()
        ids[cam.name] = {int(t) for t in mot.ids}
        if motion_gate and cam.fps:
            rows = np.flatnonzero(tracks.camera == c)
            endpoints.fill(rows, tracks.track_id[rows], mot, float(cam.fps))
    return endpoints, ids


def build_constraints(tracks: TrackSet, loaded: Sequence[CameraTracksFile], config: AssociateConfig,
                      endpoints: Endpoints | None = None, resolved: Resolved | None = None) -> Constraints:
    """The :class:`Constraints` that ``config`` asks for; the motion gate reads each camera's tracks file
    (unless ``endpoints`` from :func:`read_tracks_files` are given).

    With ``topology="auto"`` these are the first pass's constraints (no topology); see :func:`associate`.
    ``resolved``: a reviewer's corrections that apply (:func:`trackreid.associate.corrections.resolve`).
    """
    if config.motion_gate and endpoints is None:
        endpoints = read_tracks_files(tracks, loaded)[0]
    topology = None if config.learns_topology else config.topology
    return Constraints(tracks, topology, config.max_gap, config.revisit_gap,
                       endpoints if config.motion_gate else None,
                       resolved.cannot if resolved else (), resolved.must if resolved else ())


def associate(cameras: Sequence[CameraInput], config: AssociateConfig | None = None,
              progress: Progress | None = None, engine: str = "local") -> Association:
    """One global identity per person across ``cameras``; see docs/associate.md.

    ``engine="ray"`` searches the time shards of ``config.window`` as Ray tasks (:mod:`.shards`)."""
    config = config or AssociateConfig()
    progress = progress or NullProgress()
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    tracks, loaded = load_cameras(cameras, config.fps, need_seconds=config.time_constraints(),
                                  with_crops=config.set_similarity)
    endpoints, file_ids = read_tracks_files(tracks, loaded, config.motion_gate)
    resolved = resolve(config.corrections, tracks) if isinstance(config.corrections, Corrections) else None
    constraints = build_constraints(tracks, loaded, config, endpoints, resolved)
    times["load"] = time.perf_counter() - t0
    t = time.perf_counter()
    graph = build_graph(tracks, config.k, debias=config.debias, centralize=config.centralize,
                        set_similarity=config.set_similarity, rerank=config.rerank, scale_k=config.hub_k,
                        hub_per_camera=True, same_camera_margin=config.same_camera_margin, progress=progress,
                        window=config.window, engine=engine)
    times["graph"] = time.perf_counter() - t
    t = time.perf_counter()
    if config.threshold == "auto":
        threshold, info = auto_threshold(tracks, constraints, graph, method=config.threshold_method)
        info["chosen"] = "auto"
    else:
        threshold = float(config.threshold)
        # the histogram, for the report
        auto_value, info = auto_threshold(tracks, constraints, graph, method=config.threshold_method)
        info.update(chosen="fixed", threshold=threshold, why=f"fixed with --threshold {threshold:g}",
                    auto_would_choose=auto_value, method="fixed")
    times["threshold"] = time.perf_counter() - t
    t = time.perf_counter()
    result = cluster_graph(tracks, graph, threshold, constraints, config.linkage, progress)
    learned = None
    if config.learns_topology:  # second pass, inside the windows the first one shows (trackreid.associate.transit)
        spec, learned = learn_topology(tracks, result.labels)
        constraints = constraints.with_topology(spec)
        first = int(result.labels.max(initial=-1)) + 1
        result = cluster_graph(tracks, graph, threshold, constraints, config.linkage, progress)
    if resolved is not None:
        for decision, reason in result.refused.items():
            resolved.refuse(decision, f"would put in one identity two tracks that {_REFUSED[reason]}")
        before = cluster_graph(tracks, graph, threshold, constraints.without_corrections(), config.linkage).labels
        describe_changes(resolved, before, result.labels)
    times["cluster"] = time.perf_counter() - t
    labels = result.labels
    gid = labels + 1
    global_ids: dict[str, dict[int, int]] = {c.name: {} for c in loaded}
    for row, (c, tid) in enumerate(zip(tracks.camera.tolist(), tracks.track_id.tolist(), strict=True)):
        global_ids[tracks.cameras[c]][tid] = int(gid[row])
    next_id = int(gid.max(initial=0)) + 1
    without = 0
    for cam in loaded:
        for tid in sorted(file_ids.get(cam.name, set()) - set(global_ids[cam.name])):  # tracks extract skipped
            global_ids[cam.name][tid] = next_id
            next_id += 1
            without += 1
    times["total"] = time.perf_counter() - t0
    summary = _summary(tracks, labels, loaded, threshold, info, constraints, result.rejections, graph,
                       config, times, without)
    if resolved is not None and isinstance(config.corrections, Corrections):
        summary["corrections"] = corrections_summary(config.corrections, resolved)
    if learned is not None:
        summary["constraints"]["topology_learned"] = {
            "from": f"a first association at the same threshold ({first} identities), cross-camera steps within "
                    f"identities; window = median +- {SPREAD:g} x max(1.4826 x MAD, {MIN_SD:g} s), a pair with "
                    f"fewer than {MIN_STEPS} steps unbounded",
            "pairs": learned}
    log.debug("associate: %d tracks of %d cameras -> %d identities (%d in several cameras); threshold %.3f (%s)",
             len(tracks), len(loaded), summary["identities"], summary["identities_multi_camera"], threshold,
             info.get("method"))
    return Association(tracks, labels, global_ids, threshold, info, summary, loaded, result.merges, graph, config,
                       constraints)


def _summary(tracks: TrackSet, labels: np.ndarray, loaded: list[LoadedCamera], threshold: float,
             info: dict[str, Any], constraints: Constraints, rejections: dict[str, int], graph: Graph,
             config: AssociateConfig, times: dict[str, float], without: int) -> dict[str, Any]:
    g = int(labels.max(initial=-1)) + 1
    cams_per_id = np.zeros(g, np.int64)
    if len(labels):
        pairs = np.unique(labels * len(tracks.cameras) + tracks.camera)
        cams_per_id = np.bincount(pairs // len(tracks.cameras), minlength=g)
    per_count = Counter(cams_per_id.tolist())
    return {
        "cameras": [{"name": c.name, "camera_id": i + 1, "tracks": c.num_tracks, "features": c.source,
                     "fps": c.fps, "fps_from": c.fps_from, "time_offset": c.time_offset,
                     "tracks_file": str(c.tracks.file) if c.tracks else None,
                     "tracks_reading": c.tracks.options() if c.tracks else None}
                    for i, c in enumerate(loaded)],
        "camera_ids": "mtmc.txt's camera_id is the camera's 1-based position in 'cameras'",
        "tracks": len(tracks),
        "tracks_without_features": without,
        "identities": g + without,
        "identities_multi_camera": int((cams_per_id >= 2).sum()),
        "identities_per_number_of_cameras": {str(k): int(v) for k, v in sorted(per_count.items())},
        "cross_camera_links": int(np.maximum(cams_per_id - 1, 0).sum()),
        "threshold": {k: v for k, v in info.items() if k != "histogram"},
        "constraints": {**constraints.describe(), "rejected_merges": rejections},
        "graph": graph.info,
        "model_sha256": tracks.meta.get("model_sha256"),
        "config": config.to_dict(),
        "timings_seconds": {k: round(v, 3) for k, v in times.items()},
    }


def associate_to_folder(cameras: Sequence[CameraInput], output_dir: str | Path, config: AssociateConfig | None = None,
                        overwrite: bool = False, progress: Progress | None = None,
                        engine: str = "local") -> Association:
    """:func:`associate`, then :func:`~trackreid.associate.outputs.write_association` (what the CLI runs).

    The output folder is checked first, so a run that could not write fails before any work.
    """
    from trackreid.associate.outputs import produces, write_association
    from trackreid.io.atomic import check_output_dir

    check_output_dir(Path(output_dir), overwrite, produces())
    result = associate(cameras, config, progress, engine)
    write_association(result, output_dir, overwrite=overwrite)
    return result
