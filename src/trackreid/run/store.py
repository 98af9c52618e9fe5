"""Part files, done markers and the merge into a camera's extract outputs.

``OUT/cameras/<name>/.parts/seg_<first>_<last>.npz`` holds one segment's embeddings (rows of
the camera's whole plan, raw features, which rows were filled); ``.done.json`` beside it is
written last and holds the camera key (config and weights hash). Both are written atomically
(temporary name, then rename), so a killed worker leaves either nothing or a finished part.
When every segment is done, the parts are merged into the usual extract outputs
(``track_features.npz/.pkl``, ``track_metadata.json``, ``crops/``), a camera marker
``.trackreid-run.json`` records the key, and the parts are removed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.errors import InputError, OutputError
from trackreid.extract import CROPS_DIR, METADATA_NAME, ExtractConfig, ExtractResult, assemble, write_outputs
from trackreid.io.atomic import atomic_dir, atomic_path
from trackreid.io.extract_meta import read_metadata
from trackreid.io.features import NPZ_NAME, read_features
from trackreid.run.plan import CameraPlan, SegmentJob

PARTS_DIR = ".parts"
MARKER = ".trackreid-run.json"


def part_path(job: SegmentJob) -> Path:
    return Path(job.part_dir) / f"{job.name}.npz"


def done_path(job: SegmentJob) -> Path:
    return Path(job.part_dir) / f"{job.name}.done.json"


def crops_path(job: SegmentJob) -> Path:
    return Path(job.part_dir) / f"{job.name}.crops"


def read_done(job: SegmentJob) -> dict[str, Any] | None:
    """The segment's done marker when it matches the job's key and its part file exists, else None."""
    try:
        info = json.loads(done_path(job).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("key") != job.key or not part_path(job).is_file():
        return None
    return info


def write_part(job: SegmentJob, feats: np.ndarray, filled: np.ndarray, info: dict[str, Any]) -> None:
    """The part file, then its done marker (each atomically; the marker last)."""
    with atomic_path(part_path(job)) as tmp, open(tmp, "wb") as f:
        np.savez(f, rows=job.rows, features=feats, filled=filled)
    with atomic_path(done_path(job)) as tmp:
        tmp.write_text(json.dumps({**info, "key": job.key, "first": job.first, "last": job.last}, default=str),
                       encoding="utf-8")


def clean_stale(part_dir: Path) -> None:
    """Remove what a killed writer left (temporary files and folders); finished parts stay."""
    if part_dir.is_dir():
        for p in part_dir.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)


def camera_done(cam_dir: Path, key: str) -> bool:
    try:
        marker = json.loads((cam_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("key") == key and (cam_dir / NPZ_NAME).is_file() \
        and (cam_dir / METADATA_NAME).is_file()


def load_camera(cam_dir: Path) -> ExtractResult:
    meta = read_metadata(cam_dir)
    crops = cam_dir / CROPS_DIR
    return ExtractResult(read_features(cam_dir), meta, cam_dir, crops if crops.is_dir() else None)


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (or copy) every file of ``src`` into ``dst``, merging folders."""
    for root, _dirs, files in os.walk(src):
        target = dst / Path(root).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for f in files:
            try:
                os.link(Path(root) / f, target / f)
            except OSError:
                shutil.copy2(Path(root) / f, target / f)


def merge(cplan: CameraPlan, cam_dir: Path, config: ExtractConfig, command: dict[str, Any] | None) -> ExtractResult:
    """Merge the camera's finished parts into its extract outputs; write the marker; drop the parts."""
    plan = cplan.inputs.plan
    infos = []
    feats: np.ndarray | None = None
    filled = np.zeros(len(plan), dtype=bool)
    for job in cplan.jobs:
        info = read_done(job)
        if info is None:
            raise InputError(f"{part_path(job)}: segment {job.id} is not finished; run again to complete it")
        with np.load(part_path(job), allow_pickle=False) as z:
            rows, f, ok = z["rows"], z["features"], z["filled"]
        if not np.array_equal(rows, job.rows):
            raise InputError(f"{part_path(job)}: its rows do not match the plan; delete it and run again")
        if feats is None:
            feats = np.zeros((len(plan), f.shape[1]), dtype=np.float32)
        feats[rows] = f
        filled[rows] = ok
        infos.append(info)
    if feats is None:  # a video without any crop: dimension from the model, when a worker reported it
        feats = np.zeros((0, 0), dtype=np.float32)
    # what makes features differ (threads and notes do not)
    backends = {json.dumps({k: v for k, v in (i["embedder"].get("backend") or {}).items()
                            if k in ("backend", "device", "half", "providers")}, sort_keys=True) for i in infos}
    if len(backends) > 1:
        raise InputError(f"{cam_dir}: the segments of camera {cplan.camera.name} ran on different backends "
                         f"({'; '.join(sorted(backends))}); their features do not mix: run again with --force")
    desc = infos[0]["embedder"] if infos else {"model": {}, "backend": {}, "batch_size": None}
    seconds = float(sum(i.get("seconds", 0.0) for i in infos))
    decoded = int(sum(i.get("frames_decoded", 0) for i in infos))
    extra = {"segments": [{"first": i["first"], "last": i["last"], "seconds": i.get("seconds"),
                           "host": i.get("host"), "crops": i.get("crops")} for i in infos]}
    tf, meta = assemble(cplan.inputs, feats, filled, desc, config, command, seconds, decoded, extra=extra)
    cam_dir.mkdir(parents=True, exist_ok=True)
    (cam_dir / MARKER).unlink(missing_ok=True)  # the outputs are about to change: no marker may vouch for them
    stage = Path(tempfile.mkdtemp(prefix=".trackreid-merge-", suffix=".tmp", dir=cam_dir))
    try:
        if config.save_crops:
            (stage / CROPS_DIR).mkdir()
            for job in cplan.jobs:
                if crops_path(job).is_dir():
                    _link_tree(crops_path(job), stage / CROPS_DIR)
        result = write_outputs(tf, meta, stage, cam_dir, config.save_crops)
    except OSError as e:
        raise OutputError(f"{cam_dir}: cannot write outputs ({e.strerror or e})") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    with atomic_path(cam_dir / MARKER) as tmp:
        tmp.write_text(json.dumps({"key": cplan.key, "segments": len(cplan.jobs)}), encoding="utf-8")
    shutil.rmtree(cam_dir / PARTS_DIR, ignore_errors=True)
    return result


def write_crops(job: SegmentJob) -> Any:
    """Context manager: a temporary folder that becomes the segment's crops folder on success."""
    return atomic_dir(crops_path(job))
