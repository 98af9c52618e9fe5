"""The sparse similarity graph: projected search above the exact limit, de-biasing, options consistent."""

from __future__ import annotations

import numpy as np
import pytest

from trackreid.associate.graph import build_graph, camera_hub_scores, debiased, hub_scores, knn
from trackreid.associate.synthetic import synthetic_tracks
from trackreid.associate.tracks import TrackSet
from trackreid.embed.preprocess import l2_normalize
from trackreid.errors import InputError


def test_projected_search_finds_what_the_exact_search_finds() -> None:
    ts, identity = synthetic_tracks(3000, 20, dim=512, rank=96, seed=2)
    exact, exact_sim, _ = knn(ts.features, 20)
    approx, approx_sim, _ = knn(ts.features, 20, exact_limit=0)  # forced through the 64-d projection
    same = identity[exact] == identity[:, None]
    found = np.array([np.isin(exact[i][same[i]], approx[i]).all() for i in range(len(ts))])
    assert found.mean() > 0.99
    # re-scored in full dimension: the similarities are the true cosines
    rows = np.repeat(np.arange(len(ts)), approx.shape[1])
    cos = np.einsum("ij,ij->i", ts.features[rows], ts.features[approx.ravel()]).reshape(approx.shape)
    assert np.allclose(cos, approx_sim, atol=1e-5)
    assert np.all(np.diff(approx_sim, axis=1) <= 1e-6)  # ordered by similarity
    assert not np.any(approx == np.arange(len(ts))[:, None])  # never itself


def test_debias_removes_a_camera_offset() -> None:
    rng = np.random.default_rng(0)
    people = l2_normalize(rng.standard_normal((30, 64)))
    offset = l2_normalize(rng.standard_normal((2, 64))) * 1.5  # a strong per-camera look
    feats = np.concatenate([people + offset[0], people + offset[1]]) + 0.05 * rng.standard_normal((60, 64))
    ts = TrackSet(["a", "b"], np.repeat([0, 1], 30), np.tile(np.arange(30), 2), np.zeros(60), np.ones(60),
                  l2_normalize(feats))
    partner = np.concatenate([np.arange(30, 60), np.arange(30)])  # the same person in the other camera

    def nearest_is_partner(f: np.ndarray) -> float:
        sim = f @ f.T
        np.fill_diagonal(sim, -np.inf)
        return float((sim.argmax(axis=1) == partner).mean())

    fixed, means = debiased(ts)
    assert nearest_is_partner(ts.features) < 0.1  # the camera's look wins: the nearest is a stranger
    assert nearest_is_partner(fixed) == 1.0
    assert np.allclose(means[0], ts.features[:30].mean(axis=0), atol=1e-6)


def test_hubness_correction_takes_the_hub_out_of_the_nearest_pairs() -> None:
    # camera 0: a hub (0.9 to everyone in camera 1) and a track close to b0 only (0.85); camera 1: b0..b4
    camera = np.array([0, 0, 1, 1, 1, 1, 1])
    i = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    j = np.array([2, 3, 4, 5, 6, 2, 3, 4, 5, 6])
    sim = np.array([0.9] * 5 + [0.85, 0.3, 0.3, 0.3, 0.3], np.float32)
    r = hub_scores(camera, i, j, sim, k=10)
    np.testing.assert_allclose(r, [0.9, (0.85 + 4 * 0.3) / 5, 0.875, 0.6, 0.6, 0.6, 0.6], atol=1e-6)
    scaled = sim - (r[i] + r[j]) / 2
    b0 = j == 2
    assert i[b0][np.argmax(sim[b0])] == 0  # raw cosine: the hub wins b0
    assert i[b0][np.argmax(scaled[b0])] == 1  # corrected: b0 goes to the track close to it alone
    np.testing.assert_allclose(hub_scores(camera, i, j, sim, k=1)[1], 0.85)
    # in a built graph the edges, any pair's similarity and the null carry the same correction
    ts, _ = synthetic_tracks(200, 4, dim=32, seed=3)
    plain, hub = build_graph(ts, 10), build_graph(ts, 10, scale_k=5)
    assert np.array_equal(plain.i, hub.i) and hub.info["scale_k"] == 5
    r = hub_scores(ts.camera, plain.i, plain.j, plain.sim, 5)
    np.testing.assert_allclose(hub.sim, plain.sim - (r[plain.i] + r[plain.j]) / 2, atol=1e-5)
    assert hub.null is not None and plain.null is not None and hub.null[0] < plain.null[0]


def test_per_camera_hub_correction_is_csls_per_target_camera() -> None:
    # against a brute force written here: r_i(c) = mean of i's k best cosines with camera c's tracks, itself left out
    ts, _ = synthetic_tracks(120, 3, dim=16, seed=5)
    feats, _ = debiased(ts)
    full = feats @ feats.T
    np.fill_diagonal(full, -np.inf)
    k = 4
    want = np.zeros((len(ts), 3), np.float32)
    for c in range(3):
        top = np.sort(full[:, ts.camera == c], axis=1)[:, ::-1][:, :k]
        want[:, c] = top.mean(axis=1)
    r = camera_hub_scores(feats, ts.camera, 3, k)
    np.testing.assert_allclose(r, want, atol=1e-5)
    # a camera with fewer than k other tracks: the mean over those there are (itself never counts)
    two = camera_hub_scores(feats[:3], np.array([0, 0, 1]), 2, 5)
    np.testing.assert_allclose(two[0], [feats[0] @ feats[1], feats[0] @ feats[2]], atol=1e-5)
    g = build_graph(ts, 10, scale_k=k, hub_per_camera=True)
    plain = build_graph(ts, 10)
    cam = ts.camera
    np.testing.assert_allclose(g.sim, plain.sim - (want[g.i, cam[g.j]] + want[g.j, cam[g.i]]) / 2, atol=1e-5)
    assert g.info["hub_per_camera"] and g.null is not None and plain.null is not None and g.null[0] < plain.null[0]
    # in a 3-camera site it differs from the pooled version (a track's best matches in two cameras mixed)
    pooled = build_graph(ts, 10, scale_k=k)
    assert not np.allclose(pooled.sim, g.sim, atol=1e-3)


@pytest.mark.parametrize("opts", [{}, {"rerank": True}, {"set_similarity": True}, {"centralize": "nfc"},
                                  {"debias": False}, {"scale_k": 5}, {"scale_k": 5, "rerank": True},
                                  {"scale_k": 5, "hub_per_camera": True}])
def test_edges_unique_and_similarity_consistent(opts: dict) -> None:
    ts, _ = synthetic_tracks(300, 4, dim=32, seed=4)
    counts = np.full(len(ts), 3)
    rng = np.random.default_rng(0)
    crops = l2_normalize(np.repeat(ts.features, 3, axis=0) + 0.1 * rng.standard_normal((900, 32)))
    ts = TrackSet(ts.cameras, ts.camera, ts.track_id, ts.start, ts.end, ts.features, crops,
                  np.concatenate([[0], np.cumsum(counts)]))
    g = build_graph(ts, 10, **opts)
    assert np.all(g.i < g.j) and len(np.unique(g.i * len(ts) + g.j)) == len(g.i)
    assert np.allclose(g.similarity(g.i, g.j), g.sim, atol=1e-5)


def test_average_linkage_with_every_pair_is_dense_average_linkage() -> None:
    # no constraint can fire (every track alone in time): with k = N - 1 the sparse clustering is
    # sklearn's dense average linkage; with a small k the pairs that are not edges count at the
    # null's median, so it stays close to it (the edge-only mean chains)
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import adjusted_rand_score

    from trackreid.associate.cluster import cluster_graph
    from trackreid.associate.constraints import Constraints

    base, identity = synthetic_tracks(240, 6, tracks_per_identity=6, dim=64, noise=0.9, seed=7)
    n = len(base)
    ts = TrackSet(base.cameras, base.camera, base.track_id, np.arange(n) * 10.0, np.arange(n) * 10.0 + 1,
                  base.features)
    cons = Constraints(ts)
    for thr in (0.2, 0.35):
        dense = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                        distance_threshold=1.0 - thr).fit_predict(ts.features)
        full = build_graph(ts, n - 1, debias=False)
        assert adjusted_rand_score(dense, cluster_graph(ts, full, thr, cons).labels) == 1.0
        sparse = build_graph(ts, 5, debias=False)
        assert adjusted_rand_score(dense, cluster_graph(ts, sparse, thr, cons).labels) > 0.9
        sparse.null = None  # the first version: the mean over the edges alone
        assert adjusted_rand_score(dense, cluster_graph(ts, sparse, thr, cons).labels) < 0.9


def test_null_is_random_cross_camera_pairs() -> None:
    from trackreid.associate.graph import NULL_PAIRS, cross_camera_pairs

    ts, identity = synthetic_tracks(150, 3, dim=32, seed=1)
    i, j = cross_camera_pairs(ts)
    counts = np.bincount(ts.camera)
    assert len(i) == (counts.sum() ** 2 - (counts ** 2).sum()) // 2  # a small site: every cross-camera pair
    assert np.all(ts.camera[i] != ts.camera[j]) and np.all(i < j)
    big, _ = synthetic_tracks(20_000, 50, dim=16, seed=2)
    i, j = cross_camera_pairs(big)
    assert len(i) == NULL_PAIRS and np.all(big.camera[i] != big.camera[j])
    assert len(np.unique(i * len(big) + j)) > 0.99 * NULL_PAIRS  # spread over the site, not a few tracks
    g = build_graph(ts, 10)
    assert g.null_sims is not None and g.null is not None and len(g.null_sims) == g.info["null"]["pairs"]
    assert np.allclose(g.null_sims, g.similarity(*cross_camera_pairs(ts)), atol=1e-6)
    one_camera = TrackSet(["a"], np.zeros(5, np.int32), np.arange(5), np.zeros(5), np.ones(5), ts.features[:5])
    assert build_graph(one_camera, 3).null is None  # nothing to estimate it from


def test_same_camera_margin_keeps_look_alikes_of_one_camera_apart() -> None:
    """Two look-alike tracks of one camera 1 s apart (the revisit gap allows them) and a cross-camera
    pair just as similar: at a cut the margin lifts the same-camera pair over, only the cross pair joins."""
    from trackreid.associate.cluster import cluster_graph
    from trackreid.associate.constraints import Constraints

    e = np.eye(6, dtype=np.float32)
    h = np.float32(np.sqrt(0.75))
    feats = np.stack([e[0], 0.5 * e[0] + h * e[1], e[2],  # camera 0: tracks 0 and 1 look alike (cosine 0.5)
                      0.5 * e[2] + h * e[3], e[4], e[5]])  # camera 1: track 3 is as close to track 2 (0.5)
    ts = TrackSet(["a", "b"], [0, 0, 0, 1, 1, 1], [1, 2, 3, 1, 2, 3], [0, 2, 0, 0, 2, 0], [1, 3, 3, 1, 3, 3],
                  feats)
    cons = Constraints(ts, revisit_gap=3.0)
    plain = build_graph(ts, 5, debias=False)
    strict = build_graph(ts, 5, debias=False, same_camera_margin=0.1)
    assert strict.info["same_camera_margin"] == 0.1 and plain.info["same_camera_margin"] == 0.0
    np.testing.assert_allclose(strict.similarity(np.array([0, 2]), np.array([1, 3])), [0.4, 0.5], atol=1e-6)
    same = ts.camera[strict.i] == ts.camera[strict.j]
    np.testing.assert_allclose(strict.sim, plain.sim - 0.1 * same, atol=1e-6)
    np.testing.assert_allclose(strict.sim, strict.similarity(strict.i, strict.j), atol=1e-6)
    assert strict.null == plain.null  # the null is cross-camera: the auto cut does not move
    before = cluster_graph(ts, plain, 0.45, cons).labels
    after = cluster_graph(ts, strict, 0.45, cons).labels
    assert before[0] == before[1] and before[2] == before[3]
    assert after[0] != after[1] and after[2] == after[3]
    with pytest.raises(InputError, match="same-camera margin"):
        build_graph(ts, 5, same_camera_margin=-0.1)
