"""Tracks from one or several feature files (one per camera), with display labels.

One file: a track is labelled by its id (``"7"``). Several files: ``"camera:track"``
(``"cam2:7"``), where the camera is named ``NAME`` in ``NAME=PATH``, else after the file (its
stem, or its folder when the file is the standard ``track_features.npz/.pkl``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trackreid.embed.preprocess import l2_normalize
from trackreid.errors import InputError
from trackreid.io.features import NPZ_NAME, PKL_NAME, TrackFeatures, read_features


@dataclass
class LabelledTracks:
    """Tracks of one or more cameras as parallel lists/arrays, in file order then track-id order."""

    labels: list[str]
    cameras: list[str]
    track_ids: np.ndarray  # (T,)
    features: np.ndarray  # (T, D), L2-normalised representative features
    sources: list[TrackFeatures]  # the files, in camera order
    camera_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def multi_camera(self) -> bool:
        return len(self.sources) > 1

    def crop_features(self) -> tuple[np.ndarray, np.ndarray]:
        """All crop features (M, D), L2-normalised, and the index (0..T-1) of each crop's track."""
        feats, owner, start = [], [], 0
        for tf in self.sources:
            feats.append(tf.all_features)
            owner.append(tf.crop_track_index() + start)
            start += len(tf)
        if not feats:
            return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
        return l2_normalize(np.concatenate(feats)), np.concatenate(owner)


def camera_name(path: Path) -> str:
    path = Path(path)
    if path.is_dir():
        return path.resolve().name
    if path.name in (NPZ_NAME, PKL_NAME):
        return path.resolve().parent.name
    return path.stem


def split_spec(spec: str) -> tuple[str | None, Path]:
    """``NAME=PATH`` -> (NAME, PATH); a plain path -> (None, PATH)."""
    if "=" in spec and not Path(spec).exists():
        name, _, path = spec.partition("=")
        if not name:
            raise InputError(f"--features {spec!r}: empty camera name before '='")
        return name, Path(path)
    return None, Path(spec)


def combine_tracks(items: list[tuple[str, TrackFeatures]]) -> LabelledTracks:
    """Several cameras' features (name, features) as one labelled set."""
    if not items:
        raise InputError("no features given; pass --features track_features.npz (once per camera)")
    names = [n for n, _ in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"two feature files have the camera name {dup[0]!r}; name them with "
                         "--features NAME=PATH")
    dims = {tf.feature_dim for _, tf in items if len(tf)}
    if len(dims) > 1:
        raise InputError(f"feature files have different dimensions {sorted(dims)}; they come from different "
                         "models and cannot be compared")
    multi = len(items) > 1
    labels, cameras, ids, feats = [], [], [], []
    for name, tf in items:
        for tid in tf.track_ids:
            labels.append(f"{name}:{tid}" if multi else str(int(tid)))
            cameras.append(name)
        ids.append(tf.track_ids)
        feats.append(tf.features)
    if not labels:
        raise InputError("the feature files hold no tracks")
    return LabelledTracks(labels, cameras, np.concatenate(ids), l2_normalize(np.concatenate(feats)),
                          [tf for _, tf in items], names)


def load_tracks(specs: list[str | Path]) -> LabelledTracks:
    """Read ``--features`` values (``PATH`` or ``NAME=PATH``, one per camera)."""
    items = []
    for spec in specs:
        name, path = split_spec(str(spec))
        items.append((name or camera_name(path), read_features(path)))
    return combine_tracks(items)
