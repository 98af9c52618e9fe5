"""Time windows and shards (trackreid.associate.shards): the sharded search gives the unsharded graph to the bit
and the same identities, with seams cutting through people's tracks; constraints hold across seams; the
clustering's component filter changes nothing."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_associate_constraints import scenes, violations
from trackreid.associate import AssociateConfig, Constraints, TrackSet
from trackreid.associate.cluster import cluster_graph
from trackreid.associate.graph import build_graph
from trackreid.associate.shards import plan_shards
from trackreid.associate.synthetic import synthetic_tracks
from trackreid.associate.threshold import auto_threshold
from trackreid.errors import InputError


def same_graph(a, b) -> bool:  # type: ignore[no-untyped-def]
    return bool(np.array_equal(a.i, b.i) and np.array_equal(a.j, b.j) and np.array_equal(a.sim, b.sim))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes(), st.floats(0.5, 40), st.floats(0.5, 30))
def test_sharded_equals_unsharded_and_constraints_hold_across_seams(scene, window: float,  # type: ignore[no-untyped-def]
                                                                     shard: float) -> None:
    ts, links, max_gap, revisit_gap, threshold, linkage, k, motion = scene
    topo = None if links is None else {"links": [
        {"cameras": [ts.cameras[a], ts.cameras[b]], "transit": [lo, hi]} for (a, b), (lo, hi) in links.items()]}
    cons = Constraints(ts, topo, max_gap, revisit_gap, motion)
    whole = build_graph(ts, k, debias=False, window=window, shard_seconds=math.inf)
    sharded = build_graph(ts, k, debias=False, window=window, shard_seconds=shard)
    assert same_graph(whole, sharded)
    # every edge is within the window; every track has min(k, its candidates) neighbours
    def near(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # b is a candidate of a
        return ~((ts.start[b] > ts.end[a] + window) | (ts.end[b] < ts.start[a] - window))

    assert (near(whole.i, whole.j) | near(whole.j, whole.i)).all()
    labels = cluster_graph(ts, sharded, threshold, cons, linkage).labels
    assert np.array_equal(labels, cluster_graph(ts, whole, threshold, cons, linkage).labels)
    assert violations(ts, labels, links, max_gap, revisit_gap, motion) == []


def brute_neighbours(ts: TrackSet, window: float, k: int) -> list[set[int]]:
    """Each track's k most similar tracks within the window, by brute force (independent of the search)."""
    sim = ts.features @ ts.features.T
    out = []
    for r in range(len(ts)):
        near = ~((ts.start > ts.end[r] + window) | (ts.end < ts.start[r] - window))
        ok = np.flatnonzero(near & (np.arange(len(ts)) != r))
        out.append(set(ok[np.argsort(-sim[r, ok])[:k]].tolist()))
    return out


def test_each_track_gets_its_k_nearest_within_the_window() -> None:
    ts, _ = synthetic_tracks(600, 5, seconds=2000, dim=32, seed=4)
    graph = build_graph(ts, 6, debias=False, window=60, shard_seconds=45)
    got: list[set[int]] = [set() for _ in range(len(ts))]
    for a, b in zip(graph.i.tolist(), graph.j.tolist(), strict=True):
        got[a].add(b)
        got[b].add(a)
    want = brute_neighbours(ts, 60, 6)
    assert all(w <= g for w, g in zip(want, got, strict=True))  # an edge is in one track's list or the other's
    assert set(zip(graph.i.tolist(), graph.j.tolist(), strict=True)) == {
        (min(r, q), max(r, q)) for r, w in enumerate(want) for q in w}


def test_seams_through_people_give_the_identities_of_one_shard() -> None:
    """A site of 3,000 tracks cut every 5 minutes: hundreds of people straddle a seam; the answer is the
    unsharded one, and the window loses nothing against comparing all pairs."""
    ts, identity = synthetic_tracks(3000, 20, seconds=900.0, dim=64, seed=2)
    shards = plan_shards(ts.start, ts.end, 600.0, 300.0)
    core = np.zeros(len(ts), np.int64)
    for s, sh in enumerate(shards):
        core[sh.core] = s
    straddle = sum(len(np.unique(core[identity == p])) > 1 for p in np.unique(identity))
    assert len(shards) >= 3 and straddle >= 50
    cons = Constraints(ts, max_gap=120.0)
    labels = []
    for kw in ({"shard_seconds": 300.0}, {"shard_seconds": math.inf}, {"window": None}):
        graph = build_graph(ts, 20, **{"window": 600.0, **kw})  # type: ignore[arg-type]
        thr, _ = auto_threshold(ts, cons, graph)
        labels.append(cluster_graph(ts, graph, thr, cons).labels)
    assert np.array_equal(labels[0], labels[1])
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(labels[2], labels[0]) > 0.99
    assert adjusted_rand_score(identity, labels[0]) >= adjusted_rand_score(identity, labels[2]) - 0.01


def test_a_track_alone_in_its_window_has_no_edges() -> None:
    feats = np.eye(4, dtype=np.float32)[[0, 0, 1, 1]]
    ts = TrackSet(["a", "b"], np.array([0, 1, 0, 1]), np.arange(4), np.array([0.0, 5, 1000, 5000]),
                  np.array([2.0, 6, 1001, 5001]), feats)
    graph = build_graph(ts, 3, debias=False, window=60)
    assert list(zip(graph.i.tolist(), graph.j.tolist(), strict=True)) == [(0, 1)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_clustering_only_needs_the_edges_inside_components(scene) -> None:  # type: ignore[no-untyped-def]
    """within_reach drops the edges between components of mergeable edges: the labels are those with every edge."""
    ts, links, max_gap, revisit_gap, threshold, linkage, k, motion = scene
    cons = Constraints(ts, None, max_gap, revisit_gap, motion)
    graph = build_graph(ts, k, debias=False)
    labels = cluster_graph(ts, graph, threshold, cons, linkage).labels
    cluster_module = importlib.import_module("trackreid.associate.cluster")  # the package exports cluster()
    real = cluster_module.within_reach
    try:
        cluster_module.within_reach = lambda n, i, *a: np.ones(len(i), bool)  # type: ignore[assignment]
        every = cluster_graph(ts, graph, threshold, cons, linkage).labels
    finally:
        cluster_module.within_reach = real  # type: ignore[assignment]
    assert np.array_equal(labels, every)


@pytest.mark.parametrize("value", [0, -5, float("nan"), float("inf"), "soon", True])
def test_bad_window_is_one_clear_error(value: object) -> None:
    with pytest.raises(InputError, match="--window"):
        AssociateConfig(window=value)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="--window"):
        build_graph(synthetic_tracks(20, 2, seed=0)[0], 3, window=value)  # type: ignore[arg-type]


def test_window_in_site_yml() -> None:
    assert AssociateConfig.from_mapping({"window": 900}, "site.yml: associate").window == 900
    assert AssociateConfig.from_mapping({"window": "none"}, "site.yml: associate").window is None
    with pytest.raises(InputError, match="site.yml: associate: window"):
        AssociateConfig.from_mapping({"window": -1}, "site.yml: associate")


def test_window_refuses_the_options_that_compare_all_pairs() -> None:
    ts, _ = synthetic_tracks(50, 3, seed=0)
    for kw in ({"rerank": True}, {"centralize": "nfc"}, {"scale_k": 5, "hub_per_camera": True}):
        with pytest.raises(InputError, match="drop --window"):
            build_graph(ts, 5, window=60, **kw)  # type: ignore[arg-type]


def test_window_on_the_command_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from trackreid.cli.main import main

    rc = main(["associate", "--quiet", "--features", str(tmp_path), "--output-dir", str(tmp_path / "o"),
               "--window", "-5"])
    assert rc != 0 and "--window -5" in capsys.readouterr().err


@pytest.mark.ray
def test_ray_shards_equal_local_shards() -> None:
    ray = pytest.importorskip("ray", reason="pip install 'trackreid[ray]'")
    ts, _ = synthetic_tracks(800, 6, seconds=1200, dim=32, seed=5)
    local = build_graph(ts, 8, window=120, shard_seconds=200)
    ray.init(num_cpus=2, log_to_driver=False)
    try:
        remote = build_graph(ts, 8, window=120, shard_seconds=200, engine="ray")
    finally:
        ray.shutdown()
    assert same_graph(local, remote) and len(local.i) > 0
