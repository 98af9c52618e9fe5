"""Constraints hold on every whole cluster, whatever the input (property test), and the clustering links
what is clearly one person."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackreid.associate import Constraints, TrackSet, cluster
from trackreid.associate.cluster import cluster_graph
from trackreid.associate.constraints import parse_topology
from trackreid.associate.graph import build_graph
from trackreid.associate.motion import Endpoints
from trackreid.associate.synthetic import synthetic_tracks
from trackreid.embed.preprocess import l2_normalize
from trackreid.errors import InputError


def violations(ts: TrackSet, labels: np.ndarray, links: dict | None, max_gap: float | None,
               revisit_gap: float | None = None, motion: Endpoints | None = None) -> list[str]:
    """Brute force, independent of the code under test: every pair, every path step."""
    out = []
    for g in np.unique(labels):
        m = np.flatnonzero(labels == g)
        for a in m:
            for b in m:
                if a < b and ts.camera[a] == ts.camera[b] and ts.start[a] <= ts.end[b] and ts.start[b] <= ts.end[a]:
                    out.append(f"overlap {a} {b}")
        for c in np.unique(ts.camera[m]):
            visit = sorted((i for i in m.tolist() if ts.camera[i] == c), key=lambda i: (ts.start[i], i))
            for p, q in zip(visit[:-1], visit[1:], strict=True):
                if revisit_gap is not None and ts.start[q] - ts.end[p] > revisit_gap:
                    out.append(f"revisit {p} {q}")
                if motion is not None and not motion.allows(p, q, ts.start[q] - ts.end[p]):
                    out.append(f"motion {p} {q}")
        path = sorted(m.tolist(), key=lambda i: (ts.start[i], i))
        reach = -math.inf
        for p, q in zip(path[:-1], path[1:], strict=True):
            reach = max(reach, ts.end[p])
            if max_gap is not None and ts.start[q] - reach > max_gap:
                out.append(f"gap {p} {q}")
            if links is not None and ts.camera[p] != ts.camera[q]:
                key = tuple(sorted((int(ts.camera[p]), int(ts.camera[q]))))
                if key not in links:
                    out.append(f"not linked {p} {q}")
                elif not links[key][0] <= ts.start[q] - ts.end[p] <= links[key][1]:
                    out.append(f"transit {p} {q}")
    return out


@st.composite
def scenes(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(2, 40))
    cams = draw(st.integers(1, 4))
    ids = draw(st.integers(1, max(1, n // 2)))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    identity = rng.integers(0, ids, n)
    centres = l2_normalize(rng.standard_normal((ids, 8)))
    feats = l2_normalize(centres[identity] + rng.standard_normal((n, 8)) * draw(st.floats(0.05, 1.0)))
    start = np.round(rng.uniform(0, 60, n), 1)  # rounded: ties and touching spans happen
    end = start + np.round(rng.uniform(0, 20, n), 1)
    ts = TrackSet([f"c{i}" for i in range(cams)], rng.integers(0, cams, n), np.arange(n), start, end, feats)
    links = None
    if cams > 1 and draw(st.booleans()):
        links = {}
        for a in range(cams):
            for b in range(a + 1, cams):
                if rng.random() < 0.7:
                    lo = float(np.round(rng.uniform(-10, 10), 1))
                    links[(a, b)] = (lo, lo + float(np.round(rng.uniform(0, 40), 1)))
    max_gap = draw(st.one_of(st.none(), st.floats(0, 30)))
    revisit_gap = draw(st.one_of(st.none(), st.floats(0, 30)))
    threshold = draw(st.floats(-0.5, 0.95))
    linkage = draw(st.sampled_from(["average", "single", "complete"]))
    k = draw(st.integers(1, 12))
    motion = None
    if draw(st.booleans()):  # image motion at both ends of each track; some tracks without boxes
        motion = Endpoints(*(rng.uniform(0, 600, (n, 2)) if i % 3 == 0 else rng.normal(0, 100, (n, 2)) if i % 3 == 1
                             else rng.uniform(50, 200, n) for i in range(6)), known=rng.random(n) < 0.8)
    return ts, links, max_gap, revisit_gap, threshold, linkage, k, motion


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_constraints_never_violated(scene) -> None:  # type: ignore[no-untyped-def]
    ts, links, max_gap, revisit_gap, threshold, linkage, k, motion = scene
    topo = None if links is None else {"links": [
        {"cameras": [ts.cameras[a], ts.cameras[b]], "transit": [lo, hi]} for (a, b), (lo, hi) in links.items()]}
    cons = Constraints(ts, topo, max_gap, revisit_gap, motion)
    graph = build_graph(ts, k, debias=False)
    labels = cluster_graph(ts, graph, threshold, cons, linkage).labels
    assert labels.shape == (len(ts),)
    assert sorted(np.unique(labels).tolist()) == list(range(labels.max() + 1))
    assert violations(ts, labels, links, max_gap, revisit_gap, motion) == []


def test_revisit_gap_splits_two_visits_and_keeps_a_broken_track() -> None:
    # one person (identical features): cam a at 0-5 s, broken at 6-9 s (gap 1 s), back at 40-45 s (gap 31 s)
    f = l2_normalize(np.ones((4, 8), np.float32))
    ts = TrackSet(["a", "b"], np.array([0, 0, 0, 1]), np.arange(4), np.array([0.0, 6.0, 40.0, 12.0]),
                  np.array([5.0, 9.0, 45.0, 15.0]), f)
    graph = build_graph(ts, 3, debias=False)
    free = cluster_graph(ts, graph, 0.5, Constraints(ts)).labels
    assert len(np.unique(free)) == 1  # without the rule: one identity
    result = cluster_graph(ts, graph, 0.5, Constraints(ts, revisit_gap=3.0))
    labels = result.labels
    assert labels[0] == labels[1] and labels[2] != labels[0]  # the broken track joins, the second visit does not
    assert result.rejections["revisit_gap"] >= 1
    assert violations(ts, labels, None, None, 3.0) == []
    with pytest.raises(InputError, match="--revisit-gap"):
        Constraints(ts, revisit_gap=-1.0)


def test_cli_defaults_are_the_library_defaults() -> None:
    from trackreid.associate.api import AssociateConfig
    from trackreid.cli import associate as cli
    from trackreid.cli.main import build_parser

    args = build_parser().parse_args(["associate", "--features", "f", "--output-dir", "o"])
    assert cli.config_from_args(args) == AssociateConfig()


def test_constraints_matter_and_clear_identities_are_found() -> None:
    ts, identity = synthetic_tracks(3000, 12, tracks_per_identity=8, dim=128, seed=3)
    cons = Constraints(ts, max_gap=300.0)
    labels = cluster(ts, 0.45, cons, k=20)
    # each found cluster is one identity, and nearly every identity is one cluster
    purity = sum(np.bincount(identity[labels == g]).max() for g in np.unique(labels)) / len(ts)
    assert purity > 0.99
    assert len(np.unique(labels)) <= 1.05 * len(np.unique(identity))
    assert violations(ts, labels, None, 300.0) == []
    # without the overlap constraint, two simultaneous tracks of one camera would merge: here they cannot
    clone = TrackSet(["a"], [0, 0], [1, 2], [0.0, 5.0], [10.0, 15.0], l2_normalize(np.ones((2, 4))))
    assert cluster(clone, 0.5, Constraints(clone), graph=build_graph(clone, 1, debias=False)).tolist() == [0, 1]
    apart = TrackSet(["a"], [0, 0], [1, 2], [0.0, 11.0], [10.0, 15.0], l2_normalize(np.ones((2, 4))))
    assert cluster(apart, 0.5, Constraints(apart), graph=build_graph(apart, 1, debias=False)).tolist() == [0, 0]


def test_path_through_a_third_camera_is_allowed() -> None:
    # cam0 -> cam1 -> cam2; cam0-cam2 is not a listed pair, yet the person passed through cam1
    ts = TrackSet(["a", "b", "c"], [0, 2, 1], [1, 1, 1], [0.0, 40.0, 20.0], [10.0, 50.0, 30.0],
                  l2_normalize(np.ones((3, 4))))
    topo = {"links": [{"cameras": ["a", "b"], "transit": [5, 15]}, {"cameras": ["b", "c"], "transit": [5, 15]}]}
    assert cluster(ts, 0.5, Constraints(ts, topo), graph=build_graph(ts, 2, debias=False)).tolist() == [0, 0, 0]
    short = {"links": [{"cameras": ["a", "b"], "transit": [5, 15]}, {"cameras": ["b", "c"], "transit": [0, 5]}]}
    assert len(set(cluster(ts, 0.5, Constraints(ts, short), graph=build_graph(ts, 2, debias=False)).tolist())) == 2


@pytest.mark.parametrize("spec, message", [
    ({"links": [{"cameras": ["a", "x"]}]}, "camera 'x' is not one of the cameras"),
    ({"links": [{"cameras": ["a", "bb"]}]}, "did you mean 'b'"),
    ({"links": [{"cameras": ["a"]}]}, "exactly two camera names"),
    ({"links": [{"cameras": ["a", "b"], "transit": [30, 2]}]}, "larger than max"),
    ({"links": [{"cameras": ["a", "b"], "trasit": [2, 30]}]}, "did you mean 'transit'"),
    ({"links": [{"cameras": ["a", "b"]}, {"cameras": ["b", "a"]}]}, "listed twice"),
    ({"cameras": []}, "'links' list"),
])
def test_bad_topology(spec: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_topology(spec, ["a", "b"])
