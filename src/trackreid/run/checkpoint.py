"""A single long ``extract`` that checkpoints by segments (``trackreid extract --segment-minutes``).

The same plan, part files and merge as ``trackreid run``, in this process with the caller's
embedder: a kill or Ctrl-C loses at most the segment in progress, and running the same
command again continues from the finished parts (they live in ``OUTPUT/.parts/`` until the
outputs are written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trackreid.embed.backend import Embedder
from trackreid.errors import InputError
from trackreid.extract import OUTPUTS, ExtractConfig, ExtractResult
from trackreid.io.atomic import check_output_dir
from trackreid.progress import NullProgress, Progress
from trackreid.run import store
from trackreid.run.plan import EmbedderSpec, plan_camera
from trackreid.run.site import Camera
from trackreid.run.worker import run_segment


def extract_checkpointed(source: str | Path, tracks: str | Path, embedder: Embedder, output_dir: str | Path,
                         config: ExtractConfig, segment_minutes: float, progress: Progress | None = None,
                         command: dict[str, Any] | None = None) -> ExtractResult:
    """Like :func:`trackreid.extract.extract`, written to ``output_dir`` segment by segment (resumable)."""
    if segment_minutes <= 0:
        raise InputError(f"--segment-minutes must be positive, got {segment_minutes}")
    progress = progress or NullProgress()
    out = Path(output_dir)
    check_output_dir(out, config.overwrite, OUTPUTS)
    desc = embedder.describe()
    model = desc["model"]
    spec = EmbedderSpec(str(model.get("path")), desc["backend"].get("backend", "?"),
                        str(desc["backend"].get("device", "cpu")), model.get("arch"), embedder.batch_size)
    camera = Camera(out.name or "video", Path(source), Path(tracks))
    cplan = plan_camera(camera, config, spec, str(model.get("weights_sha256")), segment_minutes,
                        out / store.PARTS_DIR)
    store.clean_stale(out / store.PARTS_DIR)
    todo = [j for j in cplan.jobs if store.read_done(j) is None]
    progress.start("extract", len(cplan.jobs), "segments")
    progress.advance(len(cplan.jobs) - len(todo))
    try:
        for job in todo:
            outcome = run_segment(job, embedder=embedder)
            if not outcome.ok:
                raise InputError(outcome.error or f"segment {job.id} failed")
            progress.advance(1, crops=outcome.info.get("crops"))
    finally:
        progress.finish()
    return store.merge(cplan, out, config, command)
