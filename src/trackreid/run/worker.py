"""What a worker process does with one segment job (the same code for every engine).

The worker builds its embedder once per process (kept for the next job with the same spec),
decodes only the segment's frames (keyframe seek to its start), embeds the planned crops and
writes the part file and its done marker through :mod:`trackreid.run.store`. Errors a user can
fix (a corrupt video, ...) come back as a one-line message, not as an exception: retrying
them would fail again. Only a lost process (killed, node gone) is retried by the engine.
"""

from __future__ import annotations

import os
import socket
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trackreid.runtime import apply_env_defaults


class EventSink(Protocol):
    def put(self, item: Any) -> None: ...


@dataclass
class JobOutcome:
    job_id: str
    ok: bool
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


_EMBEDDERS: dict[Any, Any] = {}


def setup_worker(threads: int) -> None:
    """First thing in every worker process: environment defaults, then the thread budget."""
    apply_env_defaults()
    os.environ["TRACKREID_THREADS"] = str(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import cv2
    import torch

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def _embedder(spec: Any) -> Any:
    if spec not in _EMBEDDERS:
        from trackreid.embed.factory import build_embedder

        _EMBEDDERS.clear()
        choice = spec.choice() if spec.backend != "auto" and spec.device != "auto" else None
        _EMBEDDERS[spec] = build_embedder(spec.reid_model, device=spec.device, backend=spec.backend, arch=spec.arch,
                                          batch_size=spec.batch_size, half=spec.half, choice=choice)
    return _EMBEDDERS[spec]


class _EventProgress:
    """Forwards the decoder's progress to the driver (at most twice a second, first call at once)."""

    def __init__(self, job_id: str, sink: EventSink | None) -> None:
        self.job_id, self.sink, self.last = job_id, sink, 0.0

    def start(self, description: str, total: int | None, unit: str = "items") -> None:
        pass

    def advance(self, n: int = 1, **info: Any) -> None:
        now = time.monotonic()
        if self.sink is not None and now - self.last >= 0.5:
            self.last = now
            self.sink.put(("advance", self.job_id, {"crops": info.get("crops", 0), "pid": os.getpid()}))

    def finish(self) -> None:
        pass


def run_segment(job: Any, sink: EventSink | None = None, embedder: Any = None) -> JobOutcome:
    """Embed one segment and write its part; a :class:`TrackReidError` becomes a failed outcome.

    ``embedder``: use this one (a single in-process extract) instead of the process's own.
    """
    from trackreid.errors import TrackReidError
    from trackreid.extract import embed_plan
    from trackreid.io.video import FrameSource
    from trackreid.run import store

    host = socket.gethostname()
    if sink is not None:
        sink.put(("start", job.id, {"pid": os.getpid(), "host": host}))
    t0 = time.perf_counter()
    try:
        embedder = embedder or _embedder(job.embedder)
        src = FrameSource.open(job.video, seek=job.config.seek)
        Path(job.part_dir).mkdir(parents=True, exist_ok=True)
        crops = store.write_crops(job) if job.config.save_crops else nullcontext(None)
        with crops as crops_dir:
            feats, filled = embed_plan(src, job.plan, embedder, crops_dir, job.config,
                                       _EventProgress(job.id, sink))
        info = {"embedder": embedder.describe(), "seconds": round(time.perf_counter() - t0, 3),
                "frames_decoded": int(src.frames_read), "crops": int(filled.sum()), "host": host,
                "pid": os.getpid()}
        store.write_part(job, feats, filled, info)
        return JobOutcome(job.id, True, info=info)
    except TrackReidError as e:
        return JobOutcome(job.id, False, error=str(e))
    except Exception as e:  # noqa: BLE001 - reported as this job's failure; the other cameras go on
        return JobOutcome(job.id, False, error=f"{type(e).__name__}: {e}")
