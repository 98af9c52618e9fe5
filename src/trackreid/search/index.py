"""The search index: ``Index.build`` / ``Index.open(path).add(...)`` / ``.search(...)`` / ``.info()``.

An index is a folder::

    runs/index/
      CURRENT            # the name of the version in use, e.g. "v000002" (replaced atomically)
      v000002/
        meta.sqlite      # cameras, tracks (time span, identity, crops), model sha256 + preprocessing
        vectors.faiss    # one L2-normalised feature per track, vector id = tracks.row

Every write (build, add) makes a whole new version in a temporary folder, renames it into
place, then replaces ``CURRENT``: a killed writer leaves the previous version in use and at
most a ``.v*.tmp`` folder, removed by the next write.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.associate.tracks import CameraInput, LoadedCamera, TrackSet, load_cameras
from trackreid.embed.preprocess import l2_normalize
from trackreid.errors import InputError, ModelError, OutputError
from trackreid.io.atomic import atomic_dir, atomic_path, output_error
from trackreid.io.extract_meta import seconds_frame, tracks_reading
from trackreid.search import vectors as vec
from trackreid.search.sources import RunSource
from trackreid.search.store import FORMAT, FORMAT_VERSION, Store, TrackRow

log = logging.getLogger(__name__)

CURRENT = "CURRENT"
DB_NAME = "meta.sqlite"
VECTORS_NAME = "vectors.faiss"
MAX_CROPS = 8  # crop paths kept per track (thumbnails)


@dataclass
class AddReport:
    """What a build or an add did."""

    path: Path
    version: str
    cameras: list[str]
    added: int
    skipped: int  # tracks already in the index
    total: int
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "version": self.version, "cameras": self.cameras, "added": self.added,
                "already_indexed": self.skipped, "total": self.total, "kind": self.kind}


@dataclass
class Hit:
    track: TrackRow
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.track.to_dict(), "similarity": round(self.similarity, 4)}


@dataclass
class SearchResult:
    """Tracks ranked by similarity, and the same tracks grouped by global identity (best group first)."""

    query: dict[str, Any]
    hits: list[Hit]
    filters: dict[str, Any] = field(default_factory=dict)

    def groups(self) -> list[dict[str, Any]]:
        out: dict[Any, list[Hit]] = {}
        for h in self.hits:  # hits are sorted: a group's first hit is its best
            key = ("id", h.track.identity) if h.track.identity is not None else ("track", h.track.row)
            out.setdefault(key, []).append(h)
        return [{"identity": hs[0].track.identity, "best_similarity": round(hs[0].similarity, 4),
                 "cameras": sorted({h.track.camera for h in hs}),
                 "tracks": [h.to_dict() for h in sorted(hs, key=lambda h: (h.track.start_s, h.track.camera))]}
                for hs in out.values()]

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "filters": self.filters, "results": [h.to_dict() for h in self.hits],
                "identities": self.groups()}


def _model_info(loaded: Sequence[LoadedCamera], tracks: TrackSet) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(weights sha256, model description, preprocessing) of the features; refused when unknown or mixed."""
    sha = tracks.meta.get("model_sha256")
    if not sha:
        raise InputError(f"{loaded[0].source}: the features name no model (weights sha256); the index must know the "
                         "model to refuse features and queries of another one: index extract output folders "
                         "(track_metadata.json beside track_features.npz)")
    model: dict[str, Any] = {}
    pre: dict[str, Any] | None = None
    for cam in loaded:
        m = cam.metadata.get("model")
        p = m.get("preprocess") if isinstance(m, dict) else None
        if not isinstance(p, dict):
            raise InputError(f"{cam.source}: its track_metadata.json records no preprocessing (model.preprocess); "
                             "re-run `trackreid extract` for this camera")
        if pre is None:
            model, pre = dict(m) if isinstance(m, dict) else {}, p
        elif p != pre:
            raise InputError(f"{cam.source}: extracted with preprocessing {p} but {loaded[0].source} with {pre}; "
                             "one index holds features made one way: extract every camera with the same --reid-size")
    return str(sha), model, pre or {}


def _track_rows(tracks: TrackSet, loaded: Sequence[LoadedCamera], camera_ids: Mapping[str, int],
                identities: Mapping[str, Mapping[int, int]] | None) -> list[tuple[Any, ...]]:
    """SQL rows (without the vector id) of every track of ``tracks``."""
    out = []
    for i in range(len(tracks)):
        cam = loaded[int(tracks.camera[i])]
        tid = int(tracks.track_id[i])
        # frames in the tracks file's own numbering (its frame_offset undone), as global_tracks/ writes them
        reading = cam.tracks or tracks_reading(cam.metadata, None)
        offset = reading.frame_offset if reading is not None else 0
        first = seconds_frame(float(tracks.start[i]), cam.fps, cam.time_offset) - offset
        last = seconds_frame(float(tracks.end[i]), cam.fps, cam.time_offset) - offset
        crops = [str(p.resolve()) for p in cam.crops.get(tid, [])[:MAX_CROPS]]
        ident = (identities or {}).get(cam.name, {}).get(tid)
        out.append((camera_ids[cam.name], tid, float(tracks.start[i]), float(tracks.end[i]), first, last,
                    None if ident is None else int(ident), json.dumps(crops)))
    return out


def _current(root: Path) -> str:
    if not root.exists():
        raise InputError(f"{root}: no such index; build one with `trackreid index build --features DIR --camera "
                         f"NAME ... --output {root}`")
    if not root.is_dir():
        raise InputError(f"{root}: is a file, not an index folder; pass the --output folder of `trackreid index build`")
    try:
        name = (root / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise InputError(f"{root}: not a search index (no {CURRENT} file); build it with `trackreid index build`, "
                         "or it is an index whose first build was interrupted: build it again") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{root / CURRENT}: unreadable ({e}); rebuild the index with `trackreid index build`") \
            from None
    if not name.startswith("v") or not name[1:].isdigit() or not (root / name).is_dir():
        raise InputError(f"{root / CURRENT}: names version {name[:40]!r}, which is not in {root}; the index is "
                         "damaged: rebuild it with `trackreid index build`")
    return name


class Index:
    """An open search index (one version of it); see the module docstring for the layout."""

    def __init__(self, root: Path, version: str, store: Store, vectors: Any) -> None:
        self.root, self.version, self.store, self.vectors = root, version, store, vectors
        self.settings = store.settings()
        self._embedder: Any = None

    # ---- opening and writing
    @classmethod
    def open(cls, path: str | Path) -> Index:
        root = Path(path)
        version = _current(root)
        store = Store.open(root / version / DB_NAME)
        s = store.settings()
        if s.get("format_version") != FORMAT_VERSION:
            raise InputError(f"{root}: index format version {s.get('format_version')!r}, this trackreid reads "
                             f"{FORMAT_VERSION}; rebuild it with `trackreid index build`")
        index = vec.read(root / version / VECTORS_NAME)
        if index.ntotal != store.count() or index.d != s.get("feature_dim"):
            raise InputError(f"{root / version}: {index.ntotal} vectors of {index.d} dimensions but {store.count()} "
                             f"tracks of {s.get('feature_dim')}; the index is damaged: rebuild it")
        vec.apply_settings(index, s.get("vectors", {}))
        return cls(root, version, store, index)

    @classmethod
    def build(cls, cameras: Sequence[CameraInput] | RunSource, output: str | Path, kind: str = "auto",
              overwrite: bool = False) -> AddReport:
        """A new index at ``output`` from extract output folders (or a `trackreid run` folder)."""
        root = Path(output)
        if root.exists() and not root.is_dir():
            raise OutputError(f"{root}: exists and is a file; --output must be a folder")
        if root.exists() and any(root.iterdir()):
            if not overwrite:
                raise OutputError(f"{root}: exists and is not empty; pass --overwrite to replace the index there, "
                                  "or `trackreid index add` to add cameras to it")
            if not (root / CURRENT).is_file():
                raise OutputError(f"{root}: not a search index (no {CURRENT}); --overwrite replaces only an index: "
                                  "choose another --output")
        vec.choose_kind(kind, 0)  # a bad --kind before any work
        vec.require_faiss()
        return _write(root, None, None, cameras, kind)

    def add(self, cameras: Sequence[CameraInput] | RunSource) -> AddReport:
        """A new version with the tracks of ``cameras`` added (tracks already indexed are skipped)."""
        return _write(self.root, self, self.store, cameras, str(self.settings.get("kind_requested", "auto")))

    def close(self) -> None:
        self.store.close()

    # ---- reading
    def info(self) -> dict[str, Any]:
        s = self.settings
        return {"path": str(self.root), "version": self.version, "tracks": self.store.count(),
                "identities": self.store.identities(), "cameras": self.store.cameras(),
                "vectors": {**s.get("vectors", {}), "ntotal": int(self.vectors.ntotal), "dim": int(self.vectors.d)},
                "model": {"sha256": s.get("model_sha256"), "name": s.get("model", {}).get("name"),
                          "path": s.get("model", {}).get("path")},
                "preprocess": s.get("preprocess"),
                "size_bytes": sum(p.stat().st_size for p in (self.root / self.version).iterdir())}

    def embedder(self, reid_model: str | Path | None = None) -> Any:
        """The embedder that made the indexed features: the recorded weights (or ``reid_model``), checked by
        sha256, with the recorded preprocessing; anything else is refused."""
        if self._embedder is not None:
            return self._embedder
        from trackreid.embed.factory import build_embedder

        s = self.settings
        model = s.get("model", {})
        pre = s.get("preprocess", {})
        weights = reid_model or model.get("path")
        if not weights:
            raise InputError(f"{self.root}: the index does not record where its model's weights are; pass "
                             "--reid-model with the weights the features were extracted with")
        if reid_model is None and not Path(str(weights)).exists():
            raise InputError(f"{self.root}: the index's model {weights} is not there any more; pass --reid-model with "
                             f"the same weights (sha256 {str(s.get('model_sha256'))[:12]}...)")
        emb = build_embedder(weights, device="cpu",
                             input_size=(int(pre.get("height", 256)), int(pre.get("width", 128))))
        got = emb.describe()["model"]
        if got.get("weights_sha256") != s.get("model_sha256"):
            raise ModelError(f"{weights}: weights sha256 {str(got.get('weights_sha256'))[:12]}... but the index "
                             f"{self.root} holds features of {str(s.get('model_sha256'))[:12]}...; queries must be "
                             "embedded by the model that made the index: pass its weights with --reid-model")
        if got.get("preprocess") != pre:
            raise ModelError(f"{weights}: this backend preprocesses {got.get('preprocess')}, the index was built "
                             f"with {pre}; a query embedded otherwise would not compare: use the index's model file")
        self._embedder = emb
        return emb

    def embed_images(self, paths: Sequence[str | Path], reid_model: str | Path | None = None) -> np.ndarray:
        """One pooled, L2-normalised query vector from images of one person."""
        from trackreid.evaluate import read_images

        images = read_images([Path(p) for p in paths])
        feats = self.embedder(reid_model).embed(images)
        return l2_normalize(l2_normalize(feats).mean(axis=0, keepdims=True))[0]

    def track_row(self, camera: str, track_id: int) -> TrackRow:
        row = self.store.track(camera, track_id)
        if row is None:
            names = self.store.camera_names()
            if camera not in names:
                from trackreid.suggest import did_you_mean

                raise InputError(f"--track {camera}:{track_id}: the index {self.root} has no camera {camera!r}"
                                 f"{did_you_mean(camera, names)}; its cameras: {', '.join(names)}")
            raise InputError(f"--track {camera}:{track_id}: camera {camera} has no track {track_id} in the index "
                             f"{self.root}; `trackreid index info --index {self.root}` lists what it holds")
        return row

    def search(self, *, images: Sequence[str | Path] = (), track: tuple[str, int] | None = None,
               identity: int | None = None, cameras: Sequence[str] = (), after: float | None = None,
               before: float | None = None, top_k: int = 20, reid_model: str | Path | None = None) -> SearchResult:
        """Tracks most similar to the query (images pooled, an indexed track, or an identity's tracks pooled)."""
        given = sum([bool(images), track is not None, identity is not None])
        if given != 1:
            raise InputError("give exactly one query: --image FILE (repeatable), --track CAMERA:ID or --identity N")
        if top_k < 1:
            raise InputError(f"--top-k {top_k}: expected a positive number of results")
        if after is not None and before is not None and after > before:
            raise InputError(f"--after {after:g} is later than --before {before:g}; the time window is empty")
        unknown = [c for c in cameras if c not in self.store.camera_names()]
        if unknown:
            raise InputError(f"--camera {unknown[0]}: not in the index {self.root}; its cameras: "
                             f"{', '.join(self.store.camera_names())}")
        if self.store.count() == 0:
            raise InputError(f"{self.root}: the index is empty (no tracks); add cameras with `trackreid index add`")
        query: dict[str, Any]
        if images:
            q = self.embed_images(images, reid_model)
            query = {"kind": "images", "images": [str(p) for p in images]}
        elif track is not None:
            row = self.track_row(*track)
            q = vec.vector(self.vectors, row.row)
            query = {"kind": "track", "track": row.to_dict()}
        else:
            rows = self.store.identity_rows(int(identity or 0))
            if not rows:
                raise InputError(f"--identity {identity}: no track of the index {self.root} has this global id"
                                 + ("" if self.store.identities() else " (the index holds no identities: build it "
                                    "with --run from a `trackreid run` folder)"))
            q = l2_normalize(np.stack([vec.vector(self.vectors, r) for r in rows]).mean(axis=0, keepdims=True))[0]
            query = {"kind": "identity", "identity": int(identity or 0), "tracks": len(rows)}
        filters = {"cameras": list(cameras), "after": after, "before": before}
        allowed = None
        if cameras or after is not None or before is not None:
            allowed = np.asarray(self.store.filtered_rows(cameras, after, before), dtype=np.int64)
            if not len(allowed):
                return SearchResult(query, [], filters)
        sims, ids = vec.search(self.vectors, q[None], top_k, allowed)
        found = [(int(i), float(s)) for i, s in zip(ids[0], sims[0], strict=True) if i >= 0]
        rows_by_id = self.store.rows([i for i, _ in found])
        return SearchResult(query, [Hit(rows_by_id[i], s) for i, s in found], filters)


def _next_version(root: Path) -> str:
    nums = [int(p.name[1:]) for p in root.glob("v*") if p.is_dir() and p.name[1:].isdigit()] if root.is_dir() else []
    return f"v{max(nums, default=0) + 1:06d}"


def _write(root: Path, old: Index | None, old_store: Store | None, source: Sequence[CameraInput] | RunSource,
           kind: str) -> AddReport:
    """Write the next version of the index at ``root`` (old + ``source``), then point CURRENT at it."""
    identities = source.global_ids if isinstance(source, RunSource) else None
    cameras = source.cameras if isinstance(source, RunSource) else list(source)
    tracks, loaded = load_cameras(cameras, with_crops=False)
    sha, model, pre = _model_info(loaded, tracks)
    if old is not None:
        s = old.settings
        if sha != s.get("model_sha256"):
            raise InputError(f"{loaded[0].source}: features of weights sha256 {sha[:12]}... "
                             f"({model.get('name')}), but the index {root} holds features of "
                             f"{str(s.get('model_sha256'))[:12]}... ({s.get('model', {}).get('name')}); features "
                             "of another model do not compare: extract with the index's model or build another index")
        if pre != s.get("preprocess"):
            raise InputError(f"{loaded[0].source}: extracted with preprocessing {pre}, the index {root} with "
                             f"{s.get('preprocess')}; extract with the same --reid-size or build another index")
    version = _next_version(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(root, e) from None
    for stale in root.glob(".v*.tmp"):  # what a killed writer left
        shutil.rmtree(stale, ignore_errors=True)
    with atomic_dir(root / version) as tmp:
        store = old_store.copy_to(tmp / DB_NAME) if old_store is not None else Store.create(tmp / DB_NAME)
        try:
            if old_store is None:
                for k, v in {"format": FORMAT, "format_version": FORMAT_VERSION, "model_sha256": sha, "model": model,
                             "preprocess": pre, "feature_dim": tracks.feature_dim, "kind_requested": kind}.items():
                    store.set(k, v)
            ids = {c.name: store.camera_id(c.name, c.fps, c.time_offset, c.source) for c in loaded}
            rows = _track_rows(tracks, loaded, ids, identities)
            keep = [i for i, r in enumerate(rows) if not store.has_track(r[0], r[1])]
            start = store.count()
            store.insert_tracks((start + j, *rows[i]) for j, i in enumerate(keep))
            new = np.ascontiguousarray(tracks.features[keep], dtype=np.float32)
            index, settings = _vectors(old, new, kind, start + len(keep))
            store.set("vectors", settings)
            store.commit()
        finally:
            store.close()
        vec.write(index, tmp / VECTORS_NAME)
        _fsync_dir(tmp)
    with atomic_path(root / CURRENT) as cur:
        cur.write_text(version + "\n", encoding="utf-8")
    for p in root.glob("v*"):
        if p.is_dir() and p.name != version:
            shutil.rmtree(p, ignore_errors=True)
    return AddReport(root, version, [c.name for c in loaded], len(keep), len(rows) - len(keep), start + len(keep),
                     settings["kind"])


def _vectors(old: Index | None, new: np.ndarray, kind: str, total: int) -> tuple[Any, dict[str, Any]]:
    """The next version's FAISS index: the old one plus ``new``, or rebuilt when ``auto`` now calls for another kind."""
    want = vec.choose_kind(kind, total)
    if old is not None:
        have = old.settings.get("vectors", {})
        if have.get("kind") == want:
            index = vec.read(old.root / old.version / VECTORS_NAME)  # a copy: the open one stays as it was
            vec.apply_settings(index, have)
            if len(new):
                index.add(new)
            return index, have
        new = np.concatenate([vec.all_vectors(old.vectors), new]) if len(new) else vec.all_vectors(old.vectors)
        log.info("index: %d tracks: rebuilding the vectors as %s (was %s)", total, want, have.get("kind"))
    return vec.build(new, want)


def _fsync_dir(folder: Path) -> None:
    for p in folder.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
