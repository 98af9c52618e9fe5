"""PCA for track features (512 -> 128 and the like): fit, apply, save, load.

Rows are L2-normalised before the PCA is fitted or applied (cosine geometry, the one every
other step uses), projected (optionally whitened), and L2-normalised again. The fit uses
scikit-learn; the fitted model is stored as an ``.npz`` without pickle:

``mean`` (D,), ``components`` (k, D), ``explained_variance`` (k,),
``explained_variance_ratio`` (k,), ``whiten`` (bool) and ``meta`` (a JSON string:
``format``, ``version``, ``source_dim``, ``dim``, ``n_samples``, ``fitted_on`` and, when the
features said so, the ``model`` that produced them, with its ``weights_sha256``).

Applying a PCA to features of another dimension or from another model is refused: the
projection would run and mean nothing.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.embed.preprocess import l2_normalize
from trackreid.errors import InputError, OutputError
from trackreid.io.atomic import atomic_path
from trackreid.io.features import TrackFeatures, read_features, write_features

log = logging.getLogger(__name__)

FORMAT = "trackreid-pca"
VERSION = 1
_ARRAYS = ("mean", "components", "explained_variance", "explained_variance_ratio", "whiten", "meta")


@dataclass
class PcaModel:
    mean: np.ndarray  # (D,) float64
    components: np.ndarray  # (k, D) float64
    explained_variance: np.ndarray  # (k,)
    explained_variance_ratio: np.ndarray  # (k,)
    whiten: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        self.components = np.asarray(self.components, dtype=np.float64)
        self.explained_variance = np.asarray(self.explained_variance, dtype=np.float64).reshape(-1)
        self.explained_variance_ratio = np.asarray(self.explained_variance_ratio, dtype=np.float64).reshape(-1)
        k = self.explained_variance.shape[0]
        if self.components.shape != (k, self.mean.shape[0]) or self.explained_variance_ratio.shape != (k,):
            raise InputError(f"PCA arrays do not fit together: mean {self.mean.shape}, components "
                             f"{self.components.shape}, explained_variance {self.explained_variance.shape}")

    @property
    def dim(self) -> int:
        return int(self.components.shape[0])

    @property
    def source_dim(self) -> int:
        return int(self.components.shape[1])

    @property
    def variance_kept(self) -> float:
        """Fraction of the (L2-normalised) features' variance the kept components explain."""
        return float(self.explained_variance_ratio.sum())

    @property
    def model(self) -> dict[str, Any] | None:
        m = self.meta.get("model")
        return m if isinstance(m, dict) else None

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N, k) L2-normalised reduced features."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.source_dim:
            raise InputError(f"PCA expects (N, {self.source_dim}) features, got {x.shape}")
        if len(x) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        y = (l2_normalize(x).astype(np.float64) - self.mean) @ self.components.T
        if self.whiten:
            y /= np.sqrt(np.maximum(self.explained_variance, 1e-12))
        return l2_normalize(y.astype(np.float32))


def model_identity(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The ``model`` entry (name, arch, weights_sha256) of a features file's metadata, if any."""
    m = meta.get("model")
    if not isinstance(m, dict):
        return None
    return {k: m[k] for k in ("name", "arch", "weights_sha256") if k in m}


def fit_pca(x: np.ndarray, dim: int, whiten: bool = False, meta: dict[str, Any] | None = None) -> PcaModel:
    """Fit a ``dim``-component PCA on the L2-normalised rows of ``x`` (N, D)."""
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise InputError(f"PCA needs a (N, D) feature matrix, got shape {x.shape}")
    n, d = x.shape
    if not 1 <= dim < d:
        raise InputError(f"--dim {dim}: expected 1..{d - 1} for {d}-d features")
    if n < dim:
        raise InputError(f"--dim {dim} needs at least {dim} feature rows to fit, found {n}; fit on a larger set "
                         "with --fit-on FILE or choose a smaller --dim")
    rows = l2_normalize(x).astype(np.float64)
    try:
        # Exact, and several times faster than a full SVD when rows outnumber dimensions (sklearn >= 1.5).
        pca = PCA(n_components=dim, svd_solver="covariance_eigh" if n >= d else "full").fit(rows)
    except ValueError:  # an older scikit-learn without that solver
        pca = PCA(n_components=dim, svd_solver="full").fit(rows)
    info = {"format": FORMAT, "version": VERSION, "source_dim": d, "dim": dim, "n_samples": n, **(meta or {})}
    return PcaModel(pca.mean_, pca.components_, pca.explained_variance_, pca.explained_variance_ratio_,
                    whiten, info)


def fit_rows(tf: TrackFeatures) -> np.ndarray:
    """The rows a PCA is fitted on: every crop's feature (or the track features when there are none)."""
    return tf.all_features if len(tf.all_features) else tf.features


def save_pca(pca: PcaModel, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".npz":
        raise InputError(f"{path}: a PCA model file must end in .npz")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, mean=pca.mean, components=pca.components, explained_variance=pca.explained_variance,
                 explained_variance_ratio=pca.explained_variance_ratio, whiten=np.array(pca.whiten),
                 meta=np.array(json.dumps(pca.meta, default=str)))
    return path


def load_pca(path: str | Path) -> PcaModel:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such PCA model file (--pca-model)")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if "track_ids" in files:
                raise InputError(f"{path}: this is a features file, not a PCA model; give the .pca.npz "
                                 "that `trackreid reduce` saved")
            missing = [k for k in _ARRAYS if k not in files]
            if missing:
                raise InputError(f"{path}: not a trackreid PCA model (missing {', '.join(missing)})")
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in _ARRAYS[:4]}
            whiten = bool(z["whiten"])
    except (ValueError, OSError, json.JSONDecodeError, zipfile.BadZipFile, EOFError) as e:
        raise InputError(f"{path}: not a readable PCA model ({e}); give the .pca.npz that `trackreid reduce` "
                         "saved") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise InputError(f"{path}: not a trackreid PCA model (format {found!r}, expected {FORMAT!r})")
    if int(meta.get("version", 0)) > VERSION:
        raise InputError(f"{path}: PCA format version {meta['version']} is newer than this trackreid "
                         f"understands ({VERSION}); upgrade trackreid")
    try:
        return PcaModel(arrays["mean"], arrays["components"], arrays["explained_variance"],
                        arrays["explained_variance_ratio"], whiten, meta)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


def check_compatible(pca: PcaModel, tf: TrackFeatures, features_name: str, pca_name: str) -> None:
    """Refuse features of another dimension or from another model than the PCA was fitted on."""
    if tf.feature_dim != pca.source_dim:
        raise InputError(f"{features_name}: features are {tf.feature_dim}-d but the PCA {pca_name} was fitted on "
                         f"{pca.source_dim}-d features; fit a PCA on these features (leave out --pca-model)")
    mine, theirs = model_identity(tf.meta), pca.model
    sha_a = (mine or {}).get("weights_sha256")
    sha_b = (theirs or {}).get("weights_sha256")
    if sha_a and sha_b and sha_a != sha_b:
        raise InputError(
            f"{features_name}: features come from model {mine.get('name', '?') if mine else '?'} "
            f"(sha256 {sha_a[:12]}...) but the PCA {pca_name} was fitted on features of "
            f"{theirs.get('name', '?') if theirs else '?'} (sha256 {sha_b[:12]}...); a PCA only fits the "
            "model it was fitted for. Fit one on these features (leave out --pca-model)")
    if not (sha_a and sha_b):
        log.warning("%s / %s: no model hash on one side, so the PCA cannot be checked against the model that "
                    "made the features", features_name, pca_name)


def apply_pca(pca: PcaModel, tf: TrackFeatures) -> TrackFeatures:
    """Project ``features`` and ``all_features``; re-normalised; same tracks, offsets and frames."""
    info = {"dim": pca.dim, "source_dim": pca.source_dim, "whiten": pca.whiten,
            "variance_kept": round(pca.variance_kept, 6), "fitted_on": pca.meta.get("fitted_on")}
    return TrackFeatures(tf.track_ids, pca.transform(tf.features), pca.transform(tf.all_features), tf.offsets,
                         tf.frame_indices, {**tf.meta, "pca": info})


@dataclass
class ReduceResult:
    features: TrackFeatures
    pca: PcaModel
    written: list[Path]
    pca_path: Path | None  # where a newly fitted PCA was saved (None when one was applied)


def output_stem(output: Path) -> tuple[Path, str]:
    """``out/reduced_features.pkl`` -> (``out``, ``reduced_features``)."""
    if output.suffix not in (".pkl", ".npz", ""):
        raise InputError(f"--output {output}: expected a name ending in .pkl or .npz (both are written)")
    return output.parent, output.stem if output.suffix else output.name


def reduce_file(features: str | Path, output: str | Path, *, dim: int | None = None, fit_on: str | Path | None = None,
                pca_model: str | Path | None = None, whiten: bool = False, save_pca_to: str | Path | None = None,
                overwrite: bool = False) -> ReduceResult:
    """``trackreid reduce``: read, fit (or load) a PCA, apply it, write ``<stem>.npz``/``.pkl`` (+ the PCA)."""
    features, output = Path(features), Path(output)
    out_dir, stem = output_stem(output)
    if pca_model is not None and (fit_on is not None or whiten):
        raise InputError("--pca-model applies a saved PCA; --fit-on and --whiten only apply when fitting one")
    if pca_model is None and dim is None:
        raise InputError("give --dim K to fit a PCA, or --pca-model FILE to apply a saved one")
    pca_path = None if pca_model is not None else Path(save_pca_to or out_dir / f"{stem}.pca.npz")
    targets = [out_dir / f"{stem}.npz", out_dir / f"{stem}.pkl"] + ([pca_path] if pca_path else [])
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise OutputError(f"{', '.join(existing)}: already exist(s); pass --overwrite or choose another --output")
    tf = read_features(features)
    if pca_model is not None:
        pca = load_pca(pca_model)
        if dim is not None and dim != pca.dim:
            raise InputError(f"--dim {dim} but the PCA {pca_model} reduces to {pca.dim} dims; leave --dim out")
        check_compatible(pca, tf, str(features), str(pca_model))
    else:
        assert dim is not None
        source = read_features(fit_on) if fit_on is not None else tf
        fitted_on = str(fit_on or features)
        if fit_on is not None:
            check_dims_and_model(source, tf, str(fit_on), str(features))
        meta: dict[str, Any] = {"fitted_on": Path(fitted_on).name}
        if model_identity(source.meta):
            meta["model"] = model_identity(source.meta)
        pca = fit_pca(fit_rows(source), dim, whiten=whiten, meta=meta)
    reduced = apply_pca(pca, tf)
    written = write_features(reduced, out_dir, stem)
    if pca_path is not None:
        save_pca(pca, pca_path)
    return ReduceResult(reduced, pca, written, pca_path)


def check_dims_and_model(fit: TrackFeatures, target: TrackFeatures, fit_name: str, target_name: str) -> None:
    """``--fit-on`` features must match the features being reduced (dimension and model)."""
    if fit.feature_dim != target.feature_dim:
        raise InputError(f"--fit-on {fit_name}: {fit.feature_dim}-d features, but {target_name} holds "
                         f"{target.feature_dim}-d ones; fit on features of the same model")
    a = (model_identity(fit.meta) or {}).get("weights_sha256")
    b = (model_identity(target.meta) or {}).get("weights_sha256")
    if a and b and a != b:
        raise InputError(f"--fit-on {fit_name}: made by another model (sha256 {a[:12]}...) than {target_name} "
                         f"(sha256 {b[:12]}...); fit on features of the same model")
