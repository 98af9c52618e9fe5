"""Feature centralization: pull each track's feature towards its identity's centre.

Three training-free steps, after Pose2ID (Yuan et al., CVPR 2025, github.com/yuanc3/Pose2ID):

* **track centres** (:func:`track_centers`): the seed's ``centralize(all_features)``: the
  L2-normalised mean of a track's L2-normalised crop features.
* **IPG fusion** (:func:`ipg_fuse`): add the mean feature of pose-generated images of the same
  person, weighted by ``eta``, and re-normalise. The images come from Pose2ID's diffusion
  model (a GPU job we do not ship); :func:`generated_features` embeds a folder of them.
* **NFC**, Neighbour Feature Centralization (:func:`nfc`): add the features of each item's
  *mutual* nearest neighbours in the set and re-normalise.

:func:`centralize` chains them for one or several features files (base -> IPG -> NFC, the
order of Pose2ID's evaluation code) and records what it did in ``meta["centralize"]``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.embed.preprocess import l2_normalize
from trackreid.errors import InputError
from trackreid.io.features import TrackFeatures
from trackreid.progress import NullProgress, Progress

log = logging.getLogger(__name__)

METHODS = ("track", "nfc", "track+nfc")
SCOPES = ("per-file", "joint")
DEFAULT_CHUNK = 1024
_GEN_DIR = re.compile(r"^(?:track_?)?(\d+)$")


# --------------------------------------------------------------------------- track centres


def track_centers(tf: TrackFeatures) -> np.ndarray:
    """(T, D) float32: per track, the L2-normalised mean of its L2-normalised crop features.

    A track without crop rows keeps its stored ``features`` (normalised).
    """
    counts = np.diff(tf.offsets)
    out = l2_normalize(tf.features) if len(tf) else np.zeros((0, tf.feature_dim), np.float32)
    has = counts > 0
    if has.any():
        crops = l2_normalize(tf.all_features)
        sums = np.add.reduceat(crops, tf.offsets[:-1][has], axis=0)  # empty tracks own no rows
        out[has] = l2_normalize(sums / counts[has, None])
    return out


# --------------------------------------------------------------------------- NFC


def _check_matrix(features: np.ndarray, what: str = "features") -> np.ndarray:
    x = np.asarray(features)
    if x.ndim != 2:
        raise InputError(f"{what}: expected a 2-D array (N, D), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise InputError(f"{what}: expected numbers, got dtype {x.dtype}")
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise InputError(f"{what}: row {bad} holds NaN or infinite values; re-extract the features")
    return x


def _check_k(name: str, k: int) -> int:
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise InputError(f"--{name} {k!r}: expected a positive integer (Pose2ID uses 2)")
    return int(k)


def nearest_neighbours(x: np.ndarray, k: int, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Indices (N, min(k, N-1)) of each row's ``k`` nearest *other* rows of ``x``.

    ``x`` must be L2-normalised (rows of norm 1, or 0). The distance is the squared Euclidean
    distance, computed as ``2 - 2 x_i.x_j`` (and exactly for all-zero rows); neighbours are
    ordered by distance, ties by the lower row index. ``chunk`` rows are compared with all
    ``N`` at a time: the one large temporary is a ``chunk x N`` float32 block
    (``4 * chunk * N`` bytes, 410 MB for chunk 1024 and N = 100,000); the full N x N matrix
    is never formed.
    """
    import torch

    n = len(x)
    k = min(int(k), n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64)
    chunk = max(1, int(chunk))
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    zero_cols = torch.from_numpy(np.flatnonzero(~x.any(axis=1)))
    take = min(k + 1, n)
    out = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        rows = torch.arange(e - s)
        with torch.inference_mode():
            block = xt[s:e] @ xt.T  # similarity; larger = nearer
            if len(zero_cols):
                # |a - 0|^2 = 1 for a unit row, 0 for a zero row: the same order as similarity 0.5
                block[:, zero_cols] = 0.5
            block[rows, rows + s] = -torch.inf  # self excluded
            vals_t, idx_t = torch.topk(block, take, dim=1, largest=True, sorted=True)
        vals, idx = vals_t.numpy(), idx_t.numpy()
        order = np.lexsort((idx[:, :k], -vals[:, :k]), axis=1)  # distance, then index
        out[s:e] = np.take_along_axis(idx[:, :k], order, axis=1)
        if take > k:
            # The k-th and (k+1)-th are equally near: topk chose among the tie arbitrarily.
            for r in np.flatnonzero(vals[:, k - 1] == vals[:, k]):
                out[s + r] = _exact_row(block[r].numpy(), k)
    return out


def _exact_row(sim: np.ndarray, k: int) -> np.ndarray:
    """The k most similar indices of one row, ties broken by the lower index."""
    order = np.lexsort((np.arange(len(sim)), -sim))
    return order[:k]


def mutual_neighbours(features: np.ndarray, k1: int = 2, k2: int = 2,
                      chunk: int = DEFAULT_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """NFC's neighbour selection: ``(candidates (N, k1'), keep (N, k1') bool)``.

    ``candidates[i]`` are the ``k1`` nearest other rows of ``i`` (k1' = min(k1, N-1));
    ``keep[i, c]`` is true when ``i`` is also among the ``k2`` nearest rows of that candidate.
    With ``k1 == k2`` the relation is symmetric: ``j`` is kept for ``i`` iff ``i`` is kept for ``j``.
    """
    x = l2_normalize(_check_matrix(features).astype(np.float32, copy=False))
    return _mutual(x, _check_k("k1", k1), _check_k("k2", k2), chunk)


def _mutual(x: np.ndarray, k1: int, k2: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(x)
    nbr = nearest_neighbours(x, max(k1, k2), chunk)
    cand = nbr[:, :k1]
    back = nbr[cand][:, :, :k2]  # (N, k1', k2'): the candidates' own nearest rows
    keep = (back == np.arange(n)[:, None, None]).any(axis=2)
    return cand, keep


def nfc(features: np.ndarray, k1: int = 2, k2: int = 2, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Neighbour Feature Centralization (Pose2ID): (N, D) raw or normalised -> (N, D) normalised.

    1. L2-normalise the rows (``f``).
    2. For each ``i``: its ``k1`` nearest other rows by squared Euclidean distance (self
       excluded; ties go to the lower index); keep a neighbour ``j`` only if ``i`` is among
       ``j``'s ``k2`` nearest (mutual neighbours).
    3. ``f'_i = f_i + sum of f_j over the kept j`` (the original normalised features,
       unweighted; no item sees another's updated feature); L2-normalise.

    Defaults ``k1 = k2 = 2`` as in Pose2ID. Apply it to a query set and a gallery set
    *separately* (as the paper does), never to both at once. With ``k2 > k1`` we use ``i``'s
    true ``k2`` nearest, where Pose2ID's code silently caps ``k2`` at ``k1``.

    Memory: besides the input and the output (``4 * N * D`` bytes each), one ``chunk x N``
    float32 similarity block: about ``4 * chunk * N`` bytes (0.41 GB at N = 100,000 with the
    default chunk of 1024). Time is dominated by the ``N x N x D`` products.
    """
    out, _ = _nfc(features, k1, k2, chunk)
    return out


def _nfc(features: np.ndarray, k1: int, k2: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    x = l2_normalize(_check_matrix(features).astype(np.float32, copy=False))
    cand, keep = _mutual(x, _check_k("k1", k1), _check_k("k2", k2), chunk)
    out = x.copy()
    for c in range(cand.shape[1]):
        rows = np.flatnonzero(keep[:, c])
        out[rows] += x[cand[rows, c]]
    return l2_normalize(out), keep.sum(axis=1)


# --------------------------------------------------------------------------- IPG


def ipg_fuse(features: np.ndarray, generated: Sequence[np.ndarray | None], eta: float = 2.0) -> np.ndarray:
    """Fuse features of pose-generated images: ``normalize(f + eta * mean_j normalize(g_j))``.

    ``features`` (T, D); ``generated[i]`` is an (n_i, D) array of the raw embeddings of track
    ``i``'s generated images, or ``None`` / empty for a track without any (it is only
    normalised). ``f`` is L2-normalised first and every generated feature is L2-normalised
    before the mean, so ``eta`` weighs unit vectors whatever the model's feature scale
    (Pose2ID averages raw outputs of one model for both; with eta = 2 as in its evaluation).
    """
    x = l2_normalize(_check_matrix(features))
    if len(generated) != len(x):
        raise InputError(f"generated features for {len(generated)} tracks, expected {len(x)}")
    if not np.isfinite(eta) or eta < 0:
        raise InputError(f"--eta {eta!r}: expected a non-negative number (Pose2ID uses 2)")
    out = x.copy()
    for i, g in enumerate(generated):
        if g is None or len(g) == 0:
            continue
        g = _check_matrix(g, f"generated features of track {i}")
        if g.shape[1] != x.shape[1]:
            raise InputError(f"generated features of track {i}: dimension {g.shape[1]}, expected "
                             f"{x.shape[1]}; embed them with the model that made the track features")
        out[i] = x[i] + np.float32(eta) * l2_normalize(g).mean(axis=0)
    return l2_normalize(out)


def generated_folders(folder: str | Path, track_ids: Sequence[int] | np.ndarray) -> dict[int, list[Path]]:
    """Images per track in a generated-images folder: ``DIR/track_0001/*.jpg`` or ``DIR/1/*.png``."""
    from trackreid.datasets import IMAGE_SUFFIXES

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder of generated images (--generated); expected one "
                         "subfolder per track, e.g. track_0001/")
    known = {int(t) for t in track_ids}
    found: dict[int, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        m = _GEN_DIR.match(sub.name)
        if not m:
            raise InputError(f"{sub}: expected a track folder named track_NNNN or NNNN (the track id)")
        tid = int(m.group(1))
        if tid not in known:
            raise InputError(f"{sub}: track {tid} is not in the features file; generated images must "
                             "belong to tracks of the file they centralize")
        if tid in found:
            raise InputError(f"{sub}: a second folder for track {tid}")
        images = sorted(p for p in sub.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise InputError(f"{sub}: holds no images ({', '.join(IMAGE_SUFFIXES)})")
        found[tid] = images
    if not found:
        raise InputError(f"{folder}: holds no track folders (track_NNNN/ with the generated images)")
    return found


def generated_features(tf: TrackFeatures, folder: str | Path, embed: Callable[[list[np.ndarray]], np.ndarray],
                       progress: Progress | None = None) -> list[np.ndarray | None]:
    """Embed each track's generated images with ``embed`` (e.g. ``Embedder.embed``); ``None`` where absent."""
    import cv2

    folders = generated_folders(folder, tf.track_ids)
    progress = progress or NullProgress()
    progress.start("embed generated images", sum(len(v) for v in folders.values()), "images")
    out: list[np.ndarray | None] = []
    for tid in tf.track_ids:
        paths = folders.get(int(tid))
        if paths is None:
            out.append(None)
            continue
        crops = []
        for p in paths:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                raise InputError(f"{p}: cannot be read as an image")
            crops.append(img)
        out.append(np.asarray(embed(crops), dtype=np.float32))
        progress.advance(len(paths))
    progress.finish()
    return out


def model_path(tf: TrackFeatures, reid_model: str | Path | None, source: str = "features") -> str | Path:
    """The weights that made ``tf``: ``reid_model`` if given, else ``meta["model"]["path"]``."""
    meta_model = _meta_model(tf)
    if reid_model is not None:
        want = meta_model.get("weights_sha256")
        if want:
            from trackreid.models.weights import sha256_file
            from trackreid.models.zoo import resolve_weights

            path = resolve_weights(reid_model)
            if path.is_file() and sha256_file(path) != want:
                raise InputError(f"--reid-model {reid_model}: not the model that made {source} "
                                 f"(sha256 {want[:12]}... in its metadata); features of different "
                                 "models cannot be fused")
        return reid_model
    if meta_model.get("path"):
        return str(meta_model["path"])
    raise InputError(f"{source}: its metadata names no model; pass --reid-model with the weights that "
                     "extracted these features to embed the generated images")


def model_input_size(tf: TrackFeatures) -> tuple[int, int] | None:
    """The network input size (H, W) that made ``tf`` (``extract --reid-size``), from its metadata."""
    pre = _meta_model(tf).get("preprocess")
    if isinstance(pre, dict) and isinstance(pre.get("height"), int) and isinstance(pre.get("width"), int):
        return int(pre["height"]), int(pre["width"])
    return None


def _meta_model(tf: TrackFeatures) -> dict[str, Any]:
    m = tf.meta.get("model")
    return m if isinstance(m, dict) else {}


# --------------------------------------------------------------------------- pipeline


@dataclass(frozen=True)
class CentralizeConfig:
    method: str = "track"  # track | nfc | track+nfc
    k1: int = 2
    k2: int = 2
    scope: str = "per-file"  # per-file | joint (NFC over the tracks of all files together)
    eta: float = 2.0
    chunk: int = DEFAULT_CHUNK

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"--method {self.method!r}: expected one of {', '.join(METHODS)}")
        if self.scope not in SCOPES:
            raise InputError(f"--scope {self.scope!r}: expected one of {', '.join(SCOPES)}")
        _check_k("k1", self.k1)
        _check_k("k2", self.k2)
        if self.chunk < 1:
            raise InputError(f"--chunk {self.chunk}: expected a positive number of rows")

    @property
    def uses_nfc(self) -> bool:
        return self.method in ("nfc", "track+nfc")


def centralize(tfs: Sequence[TrackFeatures], config: CentralizeConfig | None = None, *,
               generated: Sequence[Sequence[np.ndarray | None] | None] | None = None,
               sources: Sequence[str] | None = None) -> list[TrackFeatures]:
    """Centralize the track features of one or several files; returns new :class:`TrackFeatures`.

    Per file: base features (``track``: :func:`track_centers`; ``nfc``: the stored
    ``features``), then IPG fusion where ``generated[f]`` is given (see
    :func:`generated_features`), then :func:`nfc` for ``nfc`` / ``track+nfc``, within each
    file (``scope="per-file"``) or across all files at once (``"joint"``). ``features`` is
    replaced; ``all_features`` and ``frame_indices`` are kept; ``meta["centralize"]`` records
    the method and its parameters.
    """
    config = config or CentralizeConfig()
    tfs = list(tfs)
    if not tfs:
        raise InputError("no features to centralize")
    sources = list(sources) if sources is not None else [f"input {i}" for i in range(len(tfs))]
    gens = list(generated) if generated is not None else [None] * len(tfs)
    if len(gens) != len(tfs) or len(sources) != len(tfs):
        raise InputError(f"{len(tfs)} features inputs but {len(gens)} generated sets / {len(sources)} names")
    if config.uses_nfc and config.scope == "joint":
        _check_joint(tfs, sources)

    base = [track_centers(tf) if config.method in ("track", "track+nfc") else l2_normalize(tf.features)
            for tf in tfs]
    for f, g in enumerate(gens):
        if g is not None:
            base[f] = ipg_fuse(base[f], g, config.eta)
    gained: list[np.ndarray | None] = [None] * len(tfs)
    if config.uses_nfc:
        if config.scope == "joint":
            bounds = np.cumsum([0] + [len(b) for b in base])
            joint, counts = _nfc(np.concatenate(base), config.k1, config.k2, config.chunk)
            base = [joint[bounds[f]:bounds[f + 1]] for f in range(len(tfs))]
            gained = [counts[bounds[f]:bounds[f + 1]] for f in range(len(tfs))]
        else:
            for f in range(len(tfs)):
                base[f], gained[f] = _nfc(base[f], config.k1, config.k2, config.chunk)

    out = []
    for f, tf in enumerate(tfs):
        record: dict[str, Any] = {
            "method": config.method,
            "k1": config.k1 if config.uses_nfc else None,
            "k2": config.k2 if config.uses_nfc else None,
            "scope": config.scope if config.uses_nfc else None,
            "eta": config.eta if gens[f] is not None else None,
            "input": sources[f],
            "inputs": sources,
            "num_tracks": len(tf),
        }
        if gens[f] is not None:
            record["tracks_with_generated"] = int(sum(g is not None and len(g) > 0 for g in gens[f] or ()))
        counts_f = gained[f]
        if counts_f is not None:
            record["tracks_with_mutual_neighbours"] = int((counts_f > 0).sum())
            record["mutual_neighbours_mean"] = round(float(counts_f.mean()), 4) if len(counts_f) else 0.0
        previous = tf.meta.get("centralize")
        if previous:
            record["previous"] = previous
        out.append(tf.with_features(base[f], centralize=record))
    return out


def _check_joint(tfs: Sequence[TrackFeatures], sources: Sequence[str]) -> None:
    dims = {tf.feature_dim for tf in tfs}
    if len(dims) > 1:
        raise InputError("--scope joint: the inputs have features of different dimensions "
                         f"({', '.join(f'{s}: {tf.feature_dim}' for s, tf in zip(sources, tfs, strict=True))})")
    shas = {s: _meta_model(tf).get("weights_sha256") for s, tf in zip(sources, tfs, strict=True)}
    if len({v for v in shas.values() if v}) > 1:
        raise InputError("--scope joint: the inputs were extracted with different models "
                         f"({', '.join(f'{s}: {v[:12]}' for s, v in shas.items() if v)}); their features "
                         "are not comparable; use --scope per-file or re-extract with one model")


def output_stems(inputs: Sequence[str | Path]) -> list[str]:
    """File stems for ``--output-dir``: ``<input stem>_enhanced`` (the folder name for a folder
    input), prefixed with the parent folder's name where two inputs share a stem."""
    paths = [Path(p) for p in inputs]
    names = [p.name if p.is_dir() else p.stem for p in paths]
    dup = {n for n in names if names.count(n) > 1}
    stems = [f"{p.resolve().parent.name}_{n}" if n in dup else n for p, n in zip(paths, names, strict=True)]
    if len(set(stems)) != len(stems):
        clash = sorted({s for s in stems if stems.count(s) > 1})
        raise InputError(f"inputs would write the same output name ({', '.join(clash)}_enhanced); "
                         "rename or move one of them")
    return [f"{s}_enhanced" for s in stems]
