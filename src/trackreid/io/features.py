"""Per-track features: the :class:`TrackFeatures` type and its two file formats.

* ``track_features.pkl``: the seed's structure, ``{track_id: {'features': (D,) float32,
  'all_features': (N, D) float32, 'frame_indices': [int, ...]}}``. Written for compatibility
  (pickle protocol 4, arrays rebuilt by ``numpy.ndarray(shape, dtype, bytearray)``, so numpy
  1.x and 2.x both load it: see :class:`SeedPickler`); read back only through
  :class:`RestrictedUnpickler` (numpy arrays, numpy scalars and builtins; anything else is
  refused without being executed).
* ``track_features.npz``: the same content without pickle (``np.load(allow_pickle=False)``),
  the format every other command reads by default. Arrays: ``track_ids`` (T,),
  ``features`` (T, D), ``all_features`` (M, D), ``offsets`` (T + 1,) so that track ``i`` owns
  rows ``offsets[i]:offsets[i + 1]``, ``frame_indices`` (M,), and ``meta`` (a JSON string).
"""

from __future__ import annotations

import io
import json
import logging
import pickle  # noqa: S403 - writing the seed's format; reading goes through RestrictedUnpickler
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.errors import InputError, UnsafeFileError
from trackreid.io.atomic import atomic_path

log = logging.getLogger(__name__)

PKL_NAME = "track_features.pkl"
# Protocol 4: Python >= 3.4, objects over 4 GB. (5 adds only out-of-band buffers, unused here.)
SEED_PICKLE_PROTOCOL = 4
NPZ_NAME = "track_features.npz"

_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"), ("_codecs", "encode"),
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "int"), ("builtins", "float"), ("builtins", "complex"),
    ("builtins", "str"), ("builtins", "bytes"), ("builtins", "bytearray"), ("builtins", "bool"),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Admits numpy arrays, numpy scalars and builtin containers; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        if module.startswith("numpy") and name.endswith(("Dtype", "DType")) or (
            module == "numpy.dtypes" and name.endswith("DType")
        ):
            return super().find_class(module, name)
        raise UnsafeFileError(f"refused to unpickle {module}.{name}: only numpy arrays, numpy scalars "
                              "and builtin types are allowed in a features pickle")


class SeedPickler(pickle.Pickler):
    """Writes arrays so that numpy 1.x and 2.x both load them.

    numpy 2 pickles an array through ``numpy._core.multiarray._reconstruct``, a module numpy
    1.x does not have, so step-4 code still on numpy 1.26 could not read our pickle. Here an
    array is rebuilt by ``numpy.ndarray(shape, dtype, bytearray(data))`` instead: the only
    globals in the file are ``numpy.ndarray``, ``numpy.dtype`` and ``builtins.bytearray``
    (public names in every numpy version, all admitted by :class:`RestrictedUnpickler`), and
    the loaded array is an ordinary writable C-ordered ndarray.
    """

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is np.ndarray and not obj.dtype.hasobject:
            c = np.ascontiguousarray(obj)
            return np.ndarray, (c.shape, c.dtype, bytearray(c.tobytes()))
        return NotImplemented


def dump_seed_pickle(obj: Any, f: Any) -> None:
    """Pickle ``obj`` (the seed's dict) to the binary file ``f`` in the numpy-1.x-compatible form."""
    SeedPickler(f, protocol=SEED_PICKLE_PROTOCOL).dump(obj)


def safe_pickle_load(path: Path) -> Any:
    """Read a pickle through :class:`RestrictedUnpickler`."""
    data = Path(path).read_bytes()
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafeFileError as e:
        raise UnsafeFileError(f"{path}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, MemoryError, RecursionError) as e:
        raise InputError(f"{path}: not a readable features pickle ({e}); expected the {PKL_NAME} that "
                         "`trackreid extract` writes") from None


@dataclass
class TrackFeatures:
    """Features of T tracks as parallel arrays; track ``i`` owns rows ``offsets[i]:offsets[i+1]``."""

    track_ids: np.ndarray  # (T,) int64
    features: np.ndarray  # (T, D) float32, the track's representative feature
    all_features: np.ndarray  # (M, D) float32, one row per crop
    offsets: np.ndarray  # (T + 1,) int64
    frame_indices: np.ndarray  # (M,) int64, frame number of each crop (as in the tracks file)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
        self.features = np.asarray(self.features, dtype=np.float32)
        self.all_features = np.asarray(self.all_features, dtype=np.float32)
        self.offsets = np.asarray(self.offsets, dtype=np.int64).reshape(-1)
        self.frame_indices = np.asarray(self.frame_indices, dtype=np.int64).reshape(-1)
        t = len(self.track_ids)
        if self.features.ndim != 2 or self.features.shape[0] != t:
            raise InputError(f"features: expected shape ({t}, D), got {self.features.shape}")
        d = self.features.shape[1]
        if self.all_features.ndim != 2 or (self.all_features.shape[1] != d and len(self.all_features)):
            raise InputError(f"all_features: expected shape (M, {d}), got {self.all_features.shape}")
        if self.offsets.shape != (t + 1,) or self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0):
            raise InputError(f"offsets: expected {t + 1} non-decreasing values from 0, got {self.offsets.shape}")
        m = int(self.offsets[-1])
        if len(self.all_features) != m or len(self.frame_indices) != m:
            raise InputError(f"all_features / frame_indices: expected {m} rows, got "
                             f"{len(self.all_features)} / {len(self.frame_indices)}")
        if len(np.unique(self.track_ids)) != t:
            raise InputError("track_ids: duplicate track ids")

    def __len__(self) -> int:
        return len(self.track_ids)

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[1])

    def crops_of(self, i: int) -> np.ndarray:
        return self.all_features[self.offsets[i]:self.offsets[i + 1]]

    def frames_of(self, i: int) -> np.ndarray:
        return self.frame_indices[self.offsets[i]:self.offsets[i + 1]]

    def crop_track_index(self) -> np.ndarray:
        """For every crop row, the index (0..T-1) of its track."""
        return np.repeat(np.arange(len(self)), np.diff(self.offsets))

    def with_features(self, features: np.ndarray, **meta: Any) -> TrackFeatures:
        """A copy with new representative features (e.g. centralized) and extra metadata."""
        return TrackFeatures(self.track_ids, features, self.all_features, self.offsets, self.frame_indices,
                             {**self.meta, **meta})

    @classmethod
    def from_tracks(cls, items: list[tuple[int, np.ndarray, np.ndarray, Any]],
                    meta: dict[str, Any] | None = None, dim: int | None = None) -> TrackFeatures:
        """Build from ``(track_id, feature (D,), all_features (N, D), frame_indices (N,))`` items.

        ``dim`` gives D when ``items`` may be empty.
        """
        rows = sorted(items, key=lambda r: r[0])
        dims = {np.asarray(r[1]).shape[-1] for r in rows} | ({dim} if dim is not None else set())
        if len(dims) > 1:
            raise InputError(f"tracks have features of different dimensions: {sorted(dims)}")
        d = dims.pop() if dims else 0
        offsets = np.concatenate([[0], np.cumsum([len(np.asarray(r[3])) for r in rows])]).astype(np.int64)
        allf = [np.asarray(r[2], dtype=np.float32).reshape(-1, d) for r in rows]
        return cls(
            np.array([int(r[0]) for r in rows], dtype=np.int64),
            np.stack([np.asarray(r[1], dtype=np.float32) for r in rows]) if rows else np.zeros((0, d), np.float32),
            np.concatenate(allf) if allf else np.zeros((0, d), np.float32),
            offsets,
            np.concatenate([np.asarray(r[3], dtype=np.int64) for r in rows]) if rows else np.zeros(0, np.int64),
            meta or {},
        )

    def to_seed_dict(self) -> dict[int, dict[str, Any]]:
        """The seed's pickle structure."""
        return {
            int(tid): {
                "features": self.features[i].copy(),
                "all_features": self.crops_of(i).copy(),
                "frame_indices": [int(f) for f in self.frames_of(i)],
            }
            for i, tid in enumerate(self.track_ids)
        }

    @classmethod
    def from_seed_dict(cls, data: Any, source: str = "features") -> TrackFeatures:
        if not isinstance(data, Mapping):
            raise InputError(f"{source}: expected a dict {{track_id: {{'features', 'all_features', "
                             f"'frame_indices'}}}}, found {type(data).__name__}")
        items = []
        for tid, entry in data.items():
            if not isinstance(entry, Mapping) or "features" not in entry:
                raise InputError(f"{source}: track {tid!r}: expected a dict with 'features', "
                                 f"'all_features' and 'frame_indices'")
            try:
                key = int(tid)
            except (TypeError, ValueError):
                raise InputError(f"{source}: track id {tid!r} is not an integer") from None
            feat = np.asarray(entry["features"], dtype=np.float32).reshape(-1)
            allf = np.asarray(entry.get("all_features", feat[None]), dtype=np.float32).reshape(-1, feat.shape[0])
            frames = np.asarray(entry.get("frame_indices", np.full(len(allf), -1)), dtype=np.int64).reshape(-1)
            if len(frames) != len(allf):
                raise InputError(f"{source}: track {key}: {len(allf)} features but {len(frames)} frame indices")
            items.append((key, feat, allf, frames))
        return cls.from_tracks(items)


def write_features(tf: TrackFeatures, out_dir: Path, stem: str = "track_features", pkl: bool = True) -> list[Path]:
    """Write ``<stem>.npz`` (safe) and, by default, ``<stem>.pkl`` (seed format), atomically."""
    out_dir = Path(out_dir)
    written = []
    npz = out_dir / f"{stem}.npz"
    with atomic_path(npz) as tmp, open(tmp, "wb") as f:
        np.savez(f, track_ids=tf.track_ids, features=tf.features, all_features=tf.all_features,
                 offsets=tf.offsets, frame_indices=tf.frame_indices,
                 meta=np.array(json.dumps(tf.meta, default=str)))
    written.append(npz)
    if pkl:
        p = out_dir / f"{stem}.pkl"
        with atomic_path(p) as tmp, open(tmp, "wb") as f:
            dump_seed_pickle(tf.to_seed_dict(), f)
        written.append(p)
    return written


def read_features(path: str | Path) -> TrackFeatures:
    """Read features from ``.npz``, ``.pkl`` (restricted) or an extract output folder.

    A file is read as named. A folder is read through its ``.npz`` (no pickle involved), else
    its ``.pkl``. The seed's pickle has no room for metadata (the model that made the features,
    which later commands check): when a sibling ``.npz`` of the same stem holds the same
    features, its metadata is taken; when it disagrees (the pickle was edited or replaced by
    another tool), a warning says so and the features come without metadata.
    """
    path = Path(path)
    if path.is_dir():
        for name in (NPZ_NAME, PKL_NAME):
            if (path / name).is_file():
                return read_features(path / name)
        raise InputError(f"{path}: no {NPZ_NAME} or {PKL_NAME} in this folder; run `trackreid extract` first")
    if not path.is_file():
        raise InputError(f"{path}: no such features file")
    if path.suffix == ".npz":
        return _read_npz(path)
    if path.suffix == ".pkl":
        tf = TrackFeatures.from_seed_dict(safe_pickle_load(path), str(path))
        sibling = path.with_suffix(".npz")
        if sibling.is_file():
            tf.meta = _sibling_meta(path, tf, sibling)
        return tf
    raise InputError(f"{path}: unknown features format {path.suffix!r}; expected .npz or .pkl written by "
                     "`trackreid extract`")


def _read_npz(path: Path) -> TrackFeatures:
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: not a trackreid features file (not an .npz archive of arrays); expected "
                         f"the {NPZ_NAME} that `trackreid extract` writes")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # e.g. a bare .npy array renamed to .npz
            raise ValueError(f"holds one {type(loaded).__name__}, not named arrays")
        with loaded as z:
            meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
            return TrackFeatures(z["track_ids"], z["features"], z["all_features"], z["offsets"],
                                 z["frame_indices"], meta)
    except (KeyError, ValueError, OSError, zipfile.BadZipFile) as e:
        raise InputError(f"{path}: not a trackreid features file ({e}); expected arrays track_ids, "
                         "features, all_features, offsets, frame_indices") from None


def _difference(a: TrackFeatures, b: TrackFeatures) -> str | None:
    """What differs between two feature sets (None when they hold the same tracks and values)."""
    if not np.array_equal(a.track_ids, b.track_ids):
        return f"track ids differ ({len(a)} vs {len(b)} tracks)"
    for name in ("features", "all_features", "offsets", "frame_indices"):
        x, y = getattr(a, name), getattr(b, name)
        if x.shape != y.shape or not np.array_equal(x, y):
            return f"'{name}' differs"
    return None


def _sibling_meta(pkl: Path, tf: TrackFeatures, npz: Path) -> dict[str, Any]:
    """The metadata of ``npz`` when it holds the same features as ``pkl``; else a warning and nothing."""
    try:
        other = _read_npz(npz)
    except InputError as e:
        log.warning("%s: read as named; the %s next to it is not readable (%s)", pkl, npz.name, e)
        return {}
    diff = _difference(tf, other)
    if diff:
        log.warning("%s: read as named, but %s next to it holds different features (%s); commands given "
                    "the folder read the .npz. Delete or rewrite the stale one", pkl, npz.name, diff)
        return {}
    return other.meta
