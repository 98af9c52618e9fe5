"""Feature centralization: track centres, NFC (against a slow reference), IPG fusion, the CLI."""

from __future__ import annotations

import collections
import json
import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from trackreid.centralize import (
    CentralizeConfig,
    centralize,
    generated_folders,
    ipg_fuse,
    mutual_neighbours,
    nearest_neighbours,
    nfc,
    output_stems,
    track_centers,
)
from trackreid.cli.main import main
from trackreid.embed.preprocess import l2_normalize
from trackreid.errors import InputError, UnsafeFileError
from trackreid.io.features import TrackFeatures, read_features, safe_pickle_load, write_features

# --------------------------------------------------------------------------- slow reference


def reference_nfc(features: np.ndarray, k1: int, k2: int) -> tuple[np.ndarray, list[list[int]]]:
    """NFC written the obvious way: loops, float64 squared distances, sort by (distance, index)."""
    f = [np.asarray(r, dtype=np.float64) for r in features]
    f = [r / max(np.sqrt((r * r).sum()), 1e-12) for r in f]
    n = len(f)

    def nearest(i: int, k: int) -> list[int]:
        d = [(float(((f[i] - f[j]) ** 2).sum()), j) for j in range(n) if j != i]
        return [j for _, j in sorted(d)[:k]]

    kept = [[j for j in nearest(i, k1) if i in nearest(j, k2)] for i in range(n)]
    out = []
    for i in range(n):
        v = f[i].copy()
        for j in kept[i]:
            v = v + f[j]
        out.append(v / max(np.sqrt((v * v).sum()), 1e-12))
    return np.array(out), kept


def kept_lists(features: np.ndarray, k1: int, k2: int, chunk: int = 1024) -> list[list[int]]:
    cand, keep = mutual_neighbours(features, k1, k2, chunk)
    return [[int(j) for j, k in zip(cand[i], keep[i], strict=True) if k] for i in range(len(cand))]


@pytest.mark.parametrize(("n", "d", "k1", "k2", "chunk", "seed"), [
    (120, 16, 2, 2, 7, 0),
    (150, 8, 2, 2, 1024, 1),
    (90, 32, 3, 2, 16, 2),
    (90, 4, 2, 4, 5, 3),
    (60, 12, 5, 5, 1, 4),
])
def test_nfc_equals_reference_on_random_data(n: int, d: int, k1: int, k2: int, chunk: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32) * rng.uniform(0.5, 20, size=(n, 1)).astype(np.float32)
    want, want_kept = reference_nfc(x, k1, k2)
    assert kept_lists(x, k1, k2, chunk) == want_kept
    got = nfc(x, k1=k1, k2=k2, chunk=chunk)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, want, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    assert sum(map(len, want_kept)) > 0  # the test exercises the sums


def test_nfc_ties_go_to_the_lower_index() -> None:
    # Rows with exactly four ones: every similarity is a multiple of 1/4, so ties are exact.
    rng = np.random.default_rng(5)
    x = np.zeros((80, 8), dtype=np.float32)
    for row in x:
        row[rng.choice(8, 4, replace=False)] = 1
    x[10] = x[3]  # exact duplicates too
    x[11] = x[3]
    want, want_kept = reference_nfc(x, 2, 2)
    for chunk in (3, 1024):
        assert kept_lists(x, 2, 2, chunk) == want_kept
        np.testing.assert_allclose(nfc(x, chunk=chunk), want, atol=2e-6)


def test_nfc_with_zero_rows_uses_true_squared_distances() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    x[[4, 17]] = 0  # |a - 0|^2 = 1: nearer than any row at cosine < 0.5
    want, want_kept = reference_nfc(x, 2, 2)
    assert kept_lists(x, 2, 2) == want_kept
    np.testing.assert_allclose(nfc(x), want, atol=2e-6)


def test_mutual_neighbours_are_symmetric_when_k1_equals_k2() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 10)).astype(np.float32)
    for k in (1, 2, 4):
        cand, keep = mutual_neighbours(x, k, k)
        adj = np.zeros((300, 300), dtype=bool)
        adj[np.repeat(np.arange(300), cand.shape[1]), cand.ravel()] = keep.ravel()
        assert (adj == adj.T).all()
        assert not adj.diagonal().any()
        assert adj.sum() > 0


def test_nfc_ignores_a_neighbour_that_is_not_mutual() -> None:
    # a's nearest is b, but b's two nearest are c and d: b is not a mutual neighbour of a.
    a, b, c, d = [1.0, 0.0], [0.6, 0.8], [0.5, 0.866], [0.4, 0.9165]
    x = np.array([a, b, c, d], dtype=np.float32)
    assert nearest_neighbours(l2_normalize(x), 2)[0].tolist() == [1, 2]
    assert nearest_neighbours(l2_normalize(x), 2)[1].tolist() == [2, 3]
    out = nfc(x, k1=2, k2=2)
    np.testing.assert_allclose(out[0], l2_normalize(x)[0], atol=1e-7)  # unchanged
    np.testing.assert_allclose(out[1], l2_normalize(l2_normalize(x)[[1, 2, 3]].sum(0)), atol=1e-6)


def test_nfc_chunk_size_does_not_change_the_result() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(257, 24)).astype(np.float32)
    full = nfc(x, chunk=10_000)
    for chunk in (1, 13, 64, 256):
        np.testing.assert_array_equal(nfc(x, chunk=chunk), full)


def test_nfc_small_sets_and_bad_input() -> None:
    np.testing.assert_allclose(nfc(np.array([[3.0, 4.0]])), [[0.6, 0.8]], atol=1e-7)  # no neighbour
    two = nfc(np.array([[1.0, 0.0], [0.0, 2.0]]))  # each is the other's only neighbour
    np.testing.assert_allclose(two, [[2 ** -0.5, 2 ** -0.5]] * 2, atol=1e-7)
    assert nfc(np.zeros((0, 5))).shape == (0, 5)
    with pytest.raises(InputError, match="row 1 holds NaN"):
        nfc(np.array([[1.0, 0.0], [np.nan, 1.0]]))
    with pytest.raises(InputError, match="2-D"):
        nfc(np.ones(5))
    with pytest.raises(InputError, match="--k1 0"):
        nfc(np.ones((3, 2)), k1=0)


# --------------------------------------------------------------------------- track centres


def make_tracks(rng: np.random.Generator, counts: list[int], d: int = 8, meta: dict | None = None) -> TrackFeatures:
    items = []
    for i, c in enumerate(counts):
        allf = rng.normal(size=(c, d)).astype(np.float32) * rng.uniform(1, 9)
        feat = allf.mean(0) if c else rng.normal(size=d).astype(np.float32)
        items.append((i * 3 + 1, feat, allf, np.arange(c) * 2 + i))
    return TrackFeatures.from_tracks(items, meta)


def test_track_centers_are_normalised_means_of_normalised_crops() -> None:
    tf = make_tracks(np.random.default_rng(9), [3, 1, 0, 5])
    got = track_centers(tf)
    for i in range(len(tf)):
        crops = tf.crops_of(i)
        # a track without crops keeps its own feature
        m = (crops / np.linalg.norm(crops, axis=1, keepdims=True)).mean(0) if len(crops) else tf.features[i]
        np.testing.assert_allclose(got[i], m / np.linalg.norm(m), atol=1e-6)


# --------------------------------------------------------------------------- pipeline


def test_scope_joint_runs_nfc_over_all_files_and_per_file_within_each() -> None:
    rng = np.random.default_rng(10)
    a, b = make_tracks(rng, [2] * 30), make_tracks(rng, [3] * 25)
    cfg = CentralizeConfig(method="track+nfc", scope="joint")
    ja, jb = centralize([a, b], cfg, sources=["a", "b"])
    joint = nfc(np.concatenate([track_centers(a), track_centers(b)]))
    np.testing.assert_allclose(np.concatenate([ja.features, jb.features]), joint, atol=1e-7)
    pa, pb = centralize([a, b], CentralizeConfig(method="track+nfc"))
    np.testing.assert_allclose(pa.features, nfc(track_centers(a)), atol=1e-7)
    np.testing.assert_allclose(pb.features, nfc(track_centers(b)), atol=1e-7)
    assert ja.meta["centralize"]["scope"] == "joint" and pa.meta["centralize"]["scope"] == "per-file"
    np.testing.assert_array_equal(ja.all_features, a.all_features)
    np.testing.assert_array_equal(ja.frame_indices, a.frame_indices)
    # method nfc centralizes the stored features, not the crop means
    (n,) = centralize([a], CentralizeConfig(method="nfc"))
    np.testing.assert_allclose(n.features, nfc(a.features), atol=1e-7)


def test_joint_scope_refuses_features_of_different_models() -> None:
    rng = np.random.default_rng(11)
    a = make_tracks(rng, [2] * 4, meta={"model": {"weights_sha256": "a" * 64}})
    b = make_tracks(rng, [2] * 4, meta={"model": {"weights_sha256": "b" * 64}})
    with pytest.raises(InputError, match="different models"):
        centralize([a, b], CentralizeConfig(method="nfc", scope="joint"), sources=["a", "b"])


def test_ipg_fuse_formula_and_tracks_without_images() -> None:
    rng = np.random.default_rng(12)
    f = rng.normal(size=(3, 6)).astype(np.float32) * 5
    g0 = rng.normal(size=(4, 6)).astype(np.float32) * 3
    out = ipg_fuse(f, [g0, None, np.zeros((0, 6), np.float32)], eta=2.0)
    fn = f / np.linalg.norm(f, axis=1, keepdims=True)
    want0 = fn[0] + 2.0 * (g0 / np.linalg.norm(g0, axis=1, keepdims=True)).mean(0)
    np.testing.assert_allclose(out[0], want0 / np.linalg.norm(want0), atol=1e-6)
    np.testing.assert_allclose(out[1:], fn[1:], atol=1e-6)
    with pytest.raises(InputError, match="dimension 5"):
        ipg_fuse(f, [np.ones((2, 5)), None, None])


def test_generated_folder_layout_is_checked(tmp_path: Path) -> None:
    for name in ("track_0001", "4"):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "pose0.png"), np.zeros((8, 4, 3), np.uint8))
    found = generated_folders(tmp_path, [1, 4, 7])
    assert sorted(found) == [1, 4] and found[1][0].name == "pose0.png"
    with pytest.raises(InputError, match="track 4 is not in the features"):
        generated_folders(tmp_path, [1, 7])
    (tmp_path / "poses").mkdir()
    with pytest.raises(InputError, match="track_NNNN"):
        generated_folders(tmp_path, [1, 4])


def test_output_stems() -> None:
    assert output_stems(["runs/cam1.npz", "runs/cam2.pkl"]) == ["cam1_enhanced", "cam2_enhanced"]
    assert output_stems(["a/cam1/track_features.pkl", "a/cam2/track_features.pkl"]) == [
        "cam1_track_features_enhanced", "cam2_track_features_enhanced"]
    with pytest.raises(InputError, match="same output name"):
        output_stems(["x/c/track_features.pkl", "y/c/track_features.npz"])


# --------------------------------------------------------------------------- CLI and file safety


def write_input(tmp_path: Path, tf: TrackFeatures, stem: str = "track_features") -> Path:
    write_features(tf, tmp_path, stem)
    (tmp_path / f"{stem}.npz").unlink()  # make the CLI read the seed's pickle (restricted)
    return tmp_path / f"{stem}.pkl"


def test_cli_round_trip_writes_seed_pkl_and_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tf = make_tracks(np.random.default_rng(13), [3, 4, 2, 5, 1, 3])
    src = write_input(tmp_path, tf)
    out = tmp_path / "out" / "enhanced_features.pkl"
    rc = main(["centralize", "--features", str(src), "--output", str(out), "--method", "track+nfc", "-q"])
    assert rc == 0
    assert "6 tracks, method track+nfc" in capsys.readouterr().out
    seed = safe_pickle_load(out)
    want = nfc(track_centers(tf))
    assert sorted(seed) == tf.track_ids.tolist()
    for i, tid in enumerate(tf.track_ids):
        entry = seed[int(tid)]
        assert set(entry) == {"features", "all_features", "frame_indices"}
        np.testing.assert_allclose(entry["features"], want[i], atol=1e-7)
        np.testing.assert_array_equal(entry["all_features"], tf.crops_of(i))
        assert entry["frame_indices"] == tf.frames_of(i).tolist()
    back = read_features(out.with_suffix(".npz"))
    rec = back.meta["centralize"]
    assert (rec["method"], rec["k1"], rec["k2"], rec["scope"], rec["eta"]) == ("track+nfc", 2, 2, "per-file", None)
    assert rec["inputs"] == [str(src)]
    # an existing output is not replaced without --overwrite
    assert main(["centralize", "--features", str(src), "--output", str(out), "-q"]) == 2
    assert main(["centralize", "--features", str(src), "--output", str(out), "--overwrite", "-q"]) == 0
    np.testing.assert_allclose(read_features(out.with_suffix(".npz")).features, track_centers(tf), atol=1e-7)


def test_cli_several_files_write_one_output_each(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    a, b = make_tracks(rng, [2] * 8), make_tracks(rng, [2] * 6)
    (tmp_path / "cam1").mkdir()
    (tmp_path / "cam2").mkdir()
    pa, pb = write_input(tmp_path / "cam1", a), write_input(tmp_path / "cam2", b)
    out = tmp_path / "enhanced"
    assert main(["centralize", "--features", str(pa), "--features", str(pb), "--output-dir", str(out),
                 "--method", "nfc", "--scope", "joint", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "cam1_track_features_enhanced.npz", "cam1_track_features_enhanced.pkl",
        "cam2_track_features_enhanced.npz", "cam2_track_features_enhanced.pkl"]
    got = read_features(out / "cam2_track_features_enhanced.npz")
    np.testing.assert_allclose(got.features, nfc(np.concatenate([a.features, b.features]))[8:], atol=1e-7)
    assert got.meta["centralize"]["inputs"] == [str(pa), str(pb)]
    # several inputs need --output-dir
    assert main(["centralize", "--features", str(pa), "--features", str(pb), "-q"]) == 2


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload", ["counter", "os.system"])
def test_cli_refuses_pickles_with_other_classes_without_running_them(
        tmp_path: Path, payload: str, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "ran"
    bad = tmp_path / "track_features.pkl"
    obj = collections.Counter(a=1) if payload == "counter" else _RunsCode(marker)
    bad.write_bytes(pickle.dumps({1: {"features": obj}}))
    rc = main(["centralize", "--features", str(bad), "--output", str(tmp_path / "e.pkl")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "refused to unpickle" in err and ("collections.Counter" in err or "system" in err)
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["track_features.pkl"]  # nothing written
    with pytest.raises(UnsafeFileError):
        read_features(bad)


@pytest.mark.parametrize("name", ["features.json", "features.pkl", "features.npz", "features.txt"])
def test_cli_refuses_files_in_other_formats(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / name
    f.write_text(json.dumps({"1": {"features": [0.1, 0.2]}}))
    rc = main(["centralize", "--features", str(f), "--output", str(tmp_path / "e.pkl")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("trackreid centralize: error: ") and str(f) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_cli_refuses_a_bare_npy_renamed_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "features.npz"
    with open(f, "wb") as fh:
        np.save(fh, np.zeros((3, 4), np.float32))
    assert main(["centralize", "--features", str(f), "--output", str(tmp_path / "e.pkl")]) == 2
    assert "not a trackreid features file" in capsys.readouterr().err


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="session")
def cuhk03_embedded(msmt_pth: Path, cuhk03_features):  # type: ignore[no-untyped-def]
    """CUHK03 val embedded once with the shared msmt17 .pth: (query set, gallery set, fq, fg)."""
    return cuhk03_features(msmt_pth)


def test_nfc_reproduces_the_cuhk03_reference(cuhk03_embedded) -> None:  # type: ignore[no-untyped-def]
    from trackreid.evaluate import cosine_distance, evaluate_ranking

    q, g, fq, fg = cuhk03_embedded
    base = evaluate_ranking(cosine_distance(fq, fg), q.pids, g.pids, q.camids, g.camids)
    assert abs(base.mAP - 41.0) <= 0.5 and abs(base.rank1 - 40.8) <= 0.5
    # query and gallery centralized separately, as in Pose2ID
    m = evaluate_ranking(cosine_distance(nfc(fq), nfc(fg)), q.pids, g.pids, q.camids, g.camids)
    assert abs(m.mAP - 47.3) <= 0.5
    assert abs(m.rank1 - 44.1) <= 0.5


def test_ipg_with_real_images_and_weights(tmp_path: Path, msmt_pth: Path, market_pth: Path,
                                          cuhk03_embedded, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from trackreid.embed.factory import build_embedder
    from trackreid.models.weights import load_model

    q, g, fq, _ = cuhk03_embedded
    pids = [int(p) for p in np.unique(q.pids)[:4]]
    items = []
    for pid in pids:
        rows = np.flatnonzero(q.pids == pid)
        items.append((pid, fq[rows].mean(0), fq[rows], np.arange(len(rows)) + 1))
    meta = {"model": load_model(msmt_pth).describe()}
    tf = TrackFeatures.from_tracks(items, meta)
    write_features(tf, tmp_path, "track_features")  # the .npz beside the .pkl carries the metadata
    src = tmp_path / "track_features.pkl"
    # "generated" images: the person's camera-B crops, for two of the four tracks
    gen = tmp_path / "generated"
    paths: dict[int, list[Path]] = {}
    for pid, folder in ((pids[0], f"track_{pids[0]:04d}"), (pids[2], str(pids[2]))):
        (gen / folder).mkdir(parents=True)
        paths[pid] = []
        for p in [g.paths[i] for i in np.flatnonzero(g.pids == pid)][:3]:
            dst = gen / folder / p.name
            dst.write_bytes(p.read_bytes())
            paths[pid].append(dst)
    out = tmp_path / "enhanced.pkl"
    assert main(["centralize", "--features", str(src), "--output", str(out), "--generated", str(gen),
                 "--eta", "2", "--device", "cpu", "-q"]) == 0
    got = read_features(out.with_suffix(".npz"))
    assert got.meta["centralize"]["tracks_with_generated"] == 2 and got.meta["centralize"]["eta"] == 2.0

    emb = build_embedder(msmt_pth, device="cpu")
    centers = track_centers(tf)
    for i, pid in enumerate(pids):
        c = centers[i]
        if pid in paths:
            gf = emb.embed([cv2.imread(str(p)) for p in paths[pid]])
            v = c / np.linalg.norm(c) + 2.0 * (gf / np.linalg.norm(gf, axis=1, keepdims=True)).mean(0)
            want = v / np.linalg.norm(v)
        else:
            want = c
        np.testing.assert_allclose(got.features[i], want, atol=1e-5)
        assert float(got.features[i] @ centers[i]) < 1 - 1e-3 if pid in paths else True

    # another model's weights are refused: its features are not comparable
    capsys.readouterr()
    assert main(["centralize", "--features", str(src), "--output", str(tmp_path / "x.pkl"), "--generated",
                 str(gen), "--reid-model", str(market_pth), "--device", "cpu"]) == 2
    assert "not the model that made" in capsys.readouterr().err
    # without a model in the metadata, --reid-model is required
    bare = write_input(tmp_path / "bare", TrackFeatures.from_tracks(items))
    assert main(["centralize", "--features", str(bare), "--output", str(tmp_path / "y.pkl"), "--generated",
                 str(gen), "--device", "cpu"]) == 2
    assert "pass --reid-model" in capsys.readouterr().err
