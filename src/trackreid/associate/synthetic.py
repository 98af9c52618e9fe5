"""Random multi-camera tracks with known identities, for property tests and the scale benchmark.

Each identity walks through a random sequence of cameras (a few seconds to a minute between
them) and leaves one or more tracks in each; a track's feature is the identity's direction
plus noise plus its camera's bias, L2-normalised. Identities and most of the noise live in a
``rank``-dimensional subspace, as real OSNet features do (93-96 % of their variance in 128 PCA
dimensions, docs/benchmarks.md); a tenth of the noise is isotropic. Pixels are never involved: this checks the
association machinery (constraints, clustering, threshold, scale), not the features.
"""

from __future__ import annotations

import numpy as np

from trackreid.associate.tracks import TrackSet
from trackreid.embed.preprocess import l2_normalize


def synthetic_tracks(num_tracks: int, num_cameras: int, tracks_per_identity: float = 10.0, dim: int = 128,
                     noise: float = 0.65, camera_bias: float = 0.3, seconds: float | None = None,
                     rank: int | None = None, seed: int = 0) -> tuple[TrackSet, np.ndarray]:
    """(tracks, identity of each track). About ``num_tracks`` tracks (exactly that many rows)."""
    rng = np.random.default_rng(seed)
    ids = max(1, int(round(num_tracks / tracks_per_identity)))
    seconds = seconds if seconds is not None else 36.0 * num_tracks / max(1, num_cameras)
    sub = min(dim, rank or dim)
    basis = np.linalg.qr(rng.standard_normal((dim, sub)))[0].T.astype(np.float32)  # (sub, dim) orthonormal rows
    centres = l2_normalize(rng.standard_normal((ids, sub)).astype(np.float32) @ basis)
    bias = rng.standard_normal((num_cameras, dim)).astype(np.float32) * (camera_bias / np.sqrt(dim))
    identity = np.sort(rng.integers(0, ids, num_tracks))
    camera = np.empty(num_tracks, np.int32)
    start = np.empty(num_tracks, np.float64)
    end = np.empty(num_tracks, np.float64)
    bounds = np.searchsorted(identity, np.arange(ids + 1))
    for p in range(ids):
        s, e = bounds[p], bounds[p + 1]
        if s == e:
            continue
        t = rng.uniform(0, seconds)
        cam = int(rng.integers(num_cameras))
        for r in range(s, e):
            if r > s and rng.random() < 0.8:  # move on to another camera (else a new track in the same one)
                cam = int(rng.integers(num_cameras))
                t += rng.uniform(5.0, 60.0)
            else:
                t += rng.uniform(0.5, 5.0) if r > s else 0.0
            dur = rng.uniform(2.0, 30.0)
            camera[r], start[r], end[r] = cam, t, t + dur
            t += dur
    # in blocks of rows (the same random stream as whole arrays): a 1.44M x 512 site holds one (N, dim) array
    step = 65536
    inside = np.concatenate([rng.standard_normal((min(step, num_tracks - s), sub)).astype(np.float32)
                             for s in range(0, num_tracks, step)] or [np.zeros((0, sub), np.float32)])
    feats = np.empty((num_tracks, dim), np.float32)
    for s in range(0, num_tracks, step):
        e = min(num_tracks, s + step)
        around = rng.standard_normal((e - s, dim)).astype(np.float32) * (noise * np.sqrt(0.1 / dim))
        block = centres[identity[s:e]] + inside[s:e] @ basis * (noise * np.sqrt(0.9 / sub)) + around
        block += bias[camera[s:e]]
        feats[s:e] = l2_normalize(block)
    track_id = np.empty(num_tracks, np.int64)
    for c in range(num_cameras):
        rows = np.flatnonzero(camera == c)
        track_id[rows] = np.arange(1, len(rows) + 1)
    ts = TrackSet([f"cam{c + 1}" for c in range(num_cameras)], camera, track_id, start, end, feats)
    return ts, identity
