"""Videos -> segments: the work units of ``trackreid run``.

The sampling plan (which crops of which track) is made for the whole video first, so that
even sampling over a track's life holds across segments; a segment is then the plan's crops
on frames ``first..last``. Each camera gets a key (hash of everything its features depend on:
sampling options, how the tracks file is read, model weights, the backend as resolved on the
driver, video file, tracks file); a segment's part file is reused only when its done marker
holds the same key.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trackreid import __version__
from trackreid.extract import ExtractConfig, Inputs, open_inputs
from trackreid.run.site import Camera, SiteOptions
from trackreid.sampling import SamplePlan, SamplingConfig

DEFAULT_FPS = 25.0


@dataclass(frozen=True)
class EmbedderSpec:
    """How a worker builds its embedder (each worker process builds it once).

    :func:`resolve_spec` decides ``auto`` once, on the driver: every segment of a camera then
    runs the same backend, device and precision, and the camera key says which.
    """

    reid_model: str
    backend: str = "auto"
    device: str = "auto"
    arch: str | None = None
    batch_size: int = 32
    half: bool = False

    def choice(self) -> Any:
        """The resolved :class:`~trackreid.embed.factory.BackendChoice` (after :func:`resolve_spec`)."""
        from trackreid.embed.factory import BackendChoice

        return BackendChoice(self.backend, self.device, self.half)


@dataclass
class SegmentJob:
    """One unit of work, sent to a worker: embed the plan's crops on frames ``first..last``."""

    camera: str
    index: int
    first: int
    last: int
    video: str
    plan: SamplePlan  # the crops of this segment only
    rows: np.ndarray  # their row numbers in the camera's whole plan
    part_dir: str
    key: str
    config: ExtractConfig
    embedder: EmbedderSpec

    @property
    def id(self) -> str:
        return f"{self.camera}/{self.index:04d}"

    @property
    def name(self) -> str:
        return f"seg_{self.first:08d}_{self.last:08d}"


@dataclass
class CameraPlan:
    camera: Camera
    inputs: Inputs
    key: str
    jobs: list[SegmentJob]


def extract_config(options: SiteOptions) -> ExtractConfig:
    sampling = SamplingConfig(max_crops_per_track=options.max_crops_per_track, strategy=options.sampling,
                              min_height=options.min_box_height)
    return ExtractConfig(sampling=sampling, save_crops=options.save_crops, frame_offset=options.frame_offset,
                         min_visibility=options.min_visibility, tracks_format=options.tracks_format, overwrite=True)


def embedder_spec(options: SiteOptions, reid_model: str) -> EmbedderSpec:
    return EmbedderSpec(reid_model, options.backend, options.device, options.arch, options.batch_size)


def resolve_spec(spec: EmbedderSpec) -> EmbedderSpec:
    """``spec`` with ``auto`` decided on this machine (backend, device, precision), as every worker will run it."""
    from dataclasses import replace

    from trackreid.embed.factory import choose_backend

    choice = choose_backend(spec.reid_model, device=spec.device, backend=spec.backend, arch=spec.arch,
                            half=spec.half)
    return replace(spec, backend=choice.backend, device=choice.device, half=choice.half)


def _file_id(path: Path, content: bool) -> dict[str, Any]:
    st = path.stat()
    ident: dict[str, Any] = {"path": str(path.resolve()), "size": st.st_size}
    if content:
        ident["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        ident["mtime_ns"] = st.st_mtime_ns
    return ident


def camera_key(camera: Camera, config: ExtractConfig, spec: EmbedderSpec, weights_sha256: str) -> str:
    """What a camera's features depend on, hashed (videos by path, size and mtime; tracks by content)."""
    video = Path(camera.video)
    desc = {
        "version": __version__,
        "video": _file_id(video, content=False) if video.is_file() else str(video),
        "tracks": _file_id(Path(camera.tracks), content=True),
        "sampling": asdict(config.sampling),
        "frame_offset": config.frame_offset,
        "min_visibility": config.min_visibility,
        "tracks_format": config.tracks_format,
        "save_crops": config.save_crops,
        "weights_sha256": weights_sha256,
        "embedder": {k: v for k, v in asdict(spec).items() if k != "reid_model"},
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:20]


def plan_camera(camera: Camera, config: ExtractConfig, spec: EmbedderSpec, weights_sha256: str,
                segment_minutes: float, part_dir: Path) -> CameraPlan:
    """Plan the whole video, then cut it into segments of ``segment_minutes`` (frames at the video's fps)."""
    inputs = open_inputs(camera.video, camera.tracks, config)
    key = camera_key(camera, config, spec, weights_sha256)
    plan = inputs.plan
    fps = camera.fps or inputs.source.info.fps or DEFAULT_FPS
    length = max(1, round(segment_minutes * 60 * fps))
    last_needed = int(plan.frame.max()) if len(plan) else 0
    jobs = []
    for i in range(math.ceil(last_needed / length)):
        first, last = i * length + 1, (i + 1) * length
        sub, rows = plan.select(first, last)
        if len(rows):
            jobs.append(SegmentJob(camera.name, i, first, last, str(camera.video), sub, rows, str(part_dir), key,
                                   config, spec))
    return CameraPlan(camera, inputs, key, jobs)
