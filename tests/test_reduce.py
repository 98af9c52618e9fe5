"""`trackreid reduce`: PCA fit / save / load / apply, and refusals of mismatched inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.decomposition import PCA

from trackreid.cli.main import main
from trackreid.errors import InputError, OutputError
from trackreid.io.features import TrackFeatures, read_features, safe_pickle_load, write_features
from trackreid.reduce import fit_pca, load_pca, reduce_file, save_pca

SHA_A = "a" * 64
SHA_B = "b" * 64


def make_features(seed: int = 0, tracks: int = 12, per_track: int = 15, dim: int = 64, rank: int = 8,
                  sha: str | None = SHA_A) -> TrackFeatures:
    """Features with a known structure: ``rank`` strong directions plus a little noise."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(99).normal(size=(rank, dim))  # shared by every file of one "model"
    items = []
    for t in range(tracks):
        centre = rng.normal(size=rank) * 3
        allf = (centre + rng.normal(size=(per_track, rank))) @ basis + 0.05 * rng.normal(size=(per_track, dim))
        allf = np.abs(allf).astype(np.float32)
        feat = allf.mean(0)
        items.append((100 + t, feat / np.linalg.norm(feat), allf, np.arange(per_track) * 3 + t))
    meta = {"model": {"name": "m.pth", "arch": "osnet_x0_25", "weights_sha256": sha}} if sha else {}
    return TrackFeatures.from_tracks(items, meta)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, seed, sha in (("a", 0, SHA_A), ("b", 1, SHA_A), ("other_model", 2, SHA_B)):
        write_features(make_features(seed, sha=sha), tmp_path / name)
        out[name] = tmp_path / name / "track_features.pkl"
    return out


def test_fit_apply_keeps_structure_and_normalises(tmp_path: Path, files: dict[str, Path]) -> None:
    r = reduce_file(files["a"], tmp_path / "out" / "reduced_features.pkl", dim=16)
    assert [p.name for p in r.written] == ["reduced_features.npz", "reduced_features.pkl"]
    assert r.pca_path == tmp_path / "out" / "reduced_features.pca.npz"
    src = read_features(files["a"])
    seed = safe_pickle_load(tmp_path / "out" / "reduced_features.pkl")  # the seed's structure
    assert sorted(seed) == [int(t) for t in src.track_ids]
    entry = seed[int(src.track_ids[3])]
    assert set(entry) == {"features", "all_features", "frame_indices"}
    assert entry["features"].shape == (16,) and entry["all_features"].shape == (15, 16)
    assert entry["frame_indices"] == [int(f) for f in src.frames_of(3)]
    red = read_features(tmp_path / "out" / "reduced_features.npz")
    np.testing.assert_allclose(np.linalg.norm(red.all_features, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(red.features, axis=1), 1.0, atol=1e-5)
    assert red.meta["model"]["weights_sha256"] == SHA_A and red.meta["pca"]["dim"] == 16
    # 8 strong directions (made non-linear by abs and normalisation): 16 of 64 components keep most of
    # the variance, where 16 random directions would keep about a quarter.
    assert r.pca.variance_kept > 0.9


def test_saved_pca_round_trip(tmp_path: Path, files: dict[str, Path]) -> None:
    fitted = reduce_file(files["a"], tmp_path / "a_red.pkl", dim=16)
    assert fitted.pca_path is not None
    with np.load(fitted.pca_path, allow_pickle=False) as z:  # no pickle inside
        assert json.loads(str(z["meta"]))["source_dim"] == 64
    loaded = load_pca(fitted.pca_path)
    np.testing.assert_array_equal(loaded.components, fitted.pca.components)
    applied = reduce_file(files["b"], tmp_path / "b_red.npz", pca_model=fitted.pca_path)
    b = read_features(files["b"])
    np.testing.assert_allclose(applied.features.all_features, fitted.pca.transform(b.all_features), atol=1e-6)
    assert applied.pca_path is None and not (tmp_path / "b_red.pca.npz").exists()


def test_transform_is_sklearns_projection() -> None:
    x = make_features().all_features
    ours = fit_pca(x, 10)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    ref = PCA(10, svd_solver="full").fit(xn).transform(xn)
    np.testing.assert_allclose(ours.transform(x), ref / np.linalg.norm(ref, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(ours.explained_variance_ratio, PCA(10, svd_solver="full").fit(xn)
                               .explained_variance_ratio_, rtol=1e-5)
    whitened = fit_pca(x, 10, whiten=True)
    refw = PCA(10, whiten=True, svd_solver="full").fit(xn).transform(xn)
    np.testing.assert_allclose(whitened.transform(x), refw / np.linalg.norm(refw, axis=1, keepdims=True), atol=1e-4)


def test_fit_on_another_file(tmp_path: Path, files: dict[str, Path]) -> None:
    r = reduce_file(files["a"], tmp_path / "r.pkl", dim=8, fit_on=files["b"])
    assert r.pca.meta["fitted_on"] == "track_features.pkl" and r.pca.meta["n_samples"] == 180
    with pytest.raises(InputError, match="another model"):
        reduce_file(files["a"], tmp_path / "r2.pkl", dim=8, fit_on=files["other_model"])


def test_refuses_pca_of_another_dimension(tmp_path: Path, files: dict[str, Path]) -> None:
    pca = fit_pca(make_features(dim=32).all_features, 8, meta={"model": {"weights_sha256": SHA_A}})
    save_pca(pca, tmp_path / "p32.npz")
    with pytest.raises(InputError, match="features are 64-d but the PCA .* was fitted on 32-d"):
        reduce_file(files["a"], tmp_path / "x.pkl", pca_model=tmp_path / "p32.npz")
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "x.pkl").exists()


def test_refuses_pca_of_another_model(tmp_path: Path, files: dict[str, Path]) -> None:
    fitted = reduce_file(files["a"], tmp_path / "a.pkl", dim=8)
    with pytest.raises(InputError, match="a PCA only fits the model it was fitted for"):
        reduce_file(files["other_model"], tmp_path / "o.pkl", pca_model=fitted.pca_path)
    with pytest.raises(InputError, match="reduces to 8 dims"):
        reduce_file(files["b"], tmp_path / "b.pkl", pca_model=fitted.pca_path, dim=16)


def test_refuses_files_that_are_not_pca_models(tmp_path: Path, files: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="features file, not a PCA model"):
        load_pca(files["a"].with_suffix(".npz"))
    np.savez(tmp_path / "objects.npz", mean=np.array([{"x": 1}], dtype=object))
    with pytest.raises(InputError, match="not a trackreid PCA model|not a readable PCA model"):
        load_pca(tmp_path / "objects.npz")
    with pytest.raises(InputError, match="no such PCA model"):
        load_pca(tmp_path / "missing.npz")


@pytest.mark.parametrize(("kw", "words"), [
    ({"dim": 64}, "expected 1..63"),
    ({"dim": 500}, "expected 1..63"),
    ({}, "give --dim"),
    ({"dim": 8, "whiten": True, "pca_model": "p.npz"}, "only apply when fitting"),
])
def test_bad_requests(tmp_path: Path, files: dict[str, Path], kw: dict, words: str) -> None:
    with pytest.raises(InputError, match=words):
        reduce_file(files["a"], tmp_path / "r.pkl", **kw)


def test_too_few_rows_to_fit() -> None:
    with pytest.raises(InputError, match="needs at least 32 feature rows"):
        fit_pca(np.random.default_rng(0).random((20, 64)), 32)


def test_cli(tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reduced_features.pkl"
    assert main(["reduce", "--features", str(files["a"]), "--dim", "16", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "PCA 64 -> 16" in text and "% of the variance" in text and "reduced_features.pca.npz" in text
    assert main(["reduce", "--features", str(files["a"]), "--dim", "16", "--output", str(out)]) != 0
    assert "--overwrite" in capsys.readouterr().err
    with pytest.raises(OutputError):
        reduce_file(files["a"], out, dim=16)
