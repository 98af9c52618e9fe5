"""The label-free threshold: known mixtures, the negatives floor, a many-camera site, and a clustering it makes work."""

from __future__ import annotations

import numpy as np
import pytest

from trackreid.associate import Constraints, auto_threshold
from trackreid.associate.cluster import cluster_graph
from trackreid.associate.graph import build_graph
from trackreid.associate.synthetic import synthetic_tracks
from trackreid.associate.threshold import (
    CHANCE_MATCHES,
    LINK_WEIGHT,
    bayes_cut,
    camera_candidates,
    chance_cut,
    fit_cut,
    mutual_cross_camera,
    other_camera_tracks,
    overlapping_pairs,
    plot_threshold,
    two_sided_cut,
)
from trackreid.associate.tracks import TrackSet
from trackreid.embed.preprocess import l2_normalize


@pytest.mark.parametrize("neg_mean, pos_mean, false_share", [(0.1, 0.7, 0.0), (0.2, 0.6, 0.3), (0.3, 0.8, 0.4)])
def test_cut_between_known_mixtures(neg_mean: float, pos_mean: float, false_share: float) -> None:
    rng = np.random.default_rng(0)
    neg = rng.normal(neg_mean, 0.05, 5000)
    n_pos = 600
    n_false = int(false_share * n_pos)  # mutual nearest neighbours that are two people
    pos = np.concatenate([rng.normal(pos_mean, 0.05, n_pos - n_false), rng.normal(neg_mean + 0.05, 0.05, n_false)])
    value, info = fit_cut(neg, pos)
    assert neg_mean + 0.1 < value < pos_mean - 0.1, info
    assert value >= np.quantile(neg, 0.9)
    assert info["method"].startswith(("gmm", "otsu"))
    assert "why" in info and info["negatives"] == 5000


@pytest.mark.parametrize("prior", [0.01, 0.05, 0.2])
def test_bayes_cut_on_a_known_mixture(prior: float) -> None:
    # null N(0, 0.1) of two people; positives N(0.5, 0.08)
    rng = np.random.default_rng(2)
    null = rng.normal(0.0, 0.1, 100_000)
    clean = rng.normal(0.5, 0.08, 800)
    value, info = bayes_cut(null, clean, prior)
    # the exact crossing of the true densities: prior * N(x; 0.5, 0.08) = (1 - prior) * N(x; 0, 0.1)
    from scipy.optimize import brentq
    from scipy.stats import norm

    exact = brentq(lambda x: np.log(prior) + norm.logpdf(x, 0.5, 0.08) - np.log(1 - prior) - norm.logpdf(x, 0, 0.1),
                   0.0, 0.5)
    assert info["method"] == "bayes" and "more likely one person" in info["why"]
    assert info["null_median"] == pytest.approx(0.0, abs=0.01) and info["null_sd"] == pytest.approx(0.1, abs=0.01)
    assert info["positives_median"] == pytest.approx(0.5, abs=0.01)
    assert value == pytest.approx(exact, abs=0.01)
    # a 15 % tail of wrong matches among the positives moves the robust fit, and the cut, only a little
    tailed, tinfo = bayes_cut(null, np.concatenate([clean, rng.normal(0.15, 0.05, 140)]), prior)
    assert tinfo["positives_median"] == pytest.approx(0.5, abs=0.04) and tailed == pytest.approx(exact, abs=0.05)
    # a rarer match needs more evidence: the cut rises as the prior falls
    assert bayes_cut(null, clean, prior / 4)[0] > value


def test_bayes_cut_falls_back_with_too_few_positives() -> None:
    value, info = bayes_cut(np.random.default_rng(0).normal(0, 0.1, 1000), np.array([0.6, 0.7]), 0.01)
    assert info["method"] == "fallback" and "--threshold" in info["why"] and value == pytest.approx(0.65)


def test_never_below_the_negatives_quantile() -> None:
    rng = np.random.default_rng(1)
    neg = np.concatenate([rng.normal(0.1, 0.05, 4000), rng.normal(0.55, 0.02, 1000)])  # a hard tail
    pos = rng.normal(0.7, 0.05, 500)
    value, info = fit_cut(neg, pos)
    assert value == pytest.approx(np.quantile(neg, 0.9))
    assert info["method"].endswith("negatives-floor")


def test_too_few_pairs_falls_back_and_says_so() -> None:
    value, info = fit_cut(np.array([0.1, 0.2]), np.array([0.9]))
    assert info["method"] == "fallback" and "--threshold" in info["why"]
    assert value == pytest.approx(np.quantile([0.1, 0.2], 0.9))


def test_auto_threshold_separates_synthetic_identities(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ts, identity = synthetic_tracks(4000, 8, dim=128, seed=5)
    cons = Constraints(ts)
    graph = build_graph(ts, 20)
    value, info = auto_threshold(ts, cons, graph)
    assert info["method"] == "chance" and info["null_pairs"] > 1000 and "chance matches" in info["why"]
    assert info["candidates"] == pytest.approx(other_camera_tracks(ts))
    bayes, binfo = auto_threshold(ts, cons, graph, method="bayes")
    assert binfo["method"] == "bayes" and binfo["prior"] < 0.5
    mixture, _ = auto_threshold(ts, cons, graph, method="mixture")
    assert np.isfinite(mixture) and np.isfinite(bayes)
    i, j = overlapping_pairs(ts)
    assert len(i) > 100
    assert np.all(cons.overlapping(i, j))  # every sampled negative really overlaps in one camera
    m = mutual_cross_camera(ts, graph)
    assert len(m) > 0 and np.mean(identity[graph.i[m]] == identity[graph.j[m]]) > 0.8  # mostly one person
    labels = cluster_graph(ts, graph, value, cons).labels
    purity = sum(np.bincount(identity[labels == g]).max() for g in np.unique(labels)) / len(ts)
    assert purity > 0.98, info["why"]
    assert len(np.unique(labels)) < 1.5 * len(np.unique(identity)), info["why"]
    png = plot_threshold(info, tmp_path / "h.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chance_cut_on_a_known_null() -> None:
    # two people ~ N(0.02, 0.1), with 3 % of one-person pairs around 0.5 that the robust fit ignores
    rng = np.random.default_rng(3)
    null = np.concatenate([rng.normal(0.02, 0.1, 97_000), rng.normal(0.5, 0.1, 3_000)])
    from scipy.stats import norm

    exact = 0.02 + 0.1 * norm.isf(CHANCE_MATCHES / 1000)  # 0.355
    assert chance_cut(null[:97_000], 1000.0)[0] == pytest.approx(exact, abs=0.005)
    value, info = chance_cut(null, 1000.0)
    assert info["method"] == "chance" and "0.4 chance matches per track" in info["why"]
    assert info["null_median"] == pytest.approx(0.02, abs=0.01) and info["null_sd"] == pytest.approx(0.1, abs=0.01)
    assert value == pytest.approx(exact, abs=0.025)  # the one-person minority moves the robust fit a little
    # more tracks to be fooled by (a bigger site) need a higher cut; fewer, a lower one
    assert chance_cut(null, 100_000.0)[0] > value + 0.05 > chance_cut(null, 20.0)[0] + 0.05
    few, finfo = chance_cut(null[:5], 1000.0)
    assert finfo["method"] == "fallback" and "--threshold" in finfo["why"] and few == pytest.approx(0.5)


def test_many_camera_site_where_the_previous_default_failed() -> None:
    # 1,000 tracks of 100 identities over 100 cameras (each person seen by about 10): the scale
    # benchmark's data. The previous default (Bayes cut against the graph's cross-camera edges,
    # average over the edges alone) cut at 0.28 and chained 100 people into 57 clusters.
    from sklearn.metrics import adjusted_rand_score

    ts, identity = synthetic_tracks(1000, 100, dim=512, rank=96, seed=1)
    cons = Constraints(ts)
    graph = build_graph(ts, 20)
    assert graph.null is not None and abs(graph.null[0]) < 0.02  # two people, after de-biasing: about 0
    value, info = auto_threshold(ts, cons, graph)
    bayes, _ = auto_threshold(ts, cons, graph, method="bayes")
    same = identity[graph.i] == identity[graph.j]
    wrong_above = float(np.mean(graph.sim[~same] >= value))
    assert wrong_above < 0.03 and float(np.mean(graph.sim[same] >= value)) > 0.99, info["why"]
    assert bayes < value - 0.03 and np.mean(graph.sim[~same] >= bayes) > 3 * wrong_above  # its null held one person
    new = cluster_graph(ts, graph, value, cons).labels
    assert adjusted_rand_score(identity, new) > 0.98
    # the previous clustering (pairs that are not edges left out of the average) at the previous cut
    old_graph = build_graph(ts, 20)
    old_graph.null = None
    old = cluster_graph(ts, old_graph, bayes, cons).labels
    assert adjusted_rand_score(identity, old) < 0.7 and old.max() + 1 < 80
    # the new linkage alone already holds at the low cut: one stray edge no longer joins two people
    assert adjusted_rand_score(identity, cluster_graph(ts, graph, bayes, cons).labels) > 0.95


def test_two_sided_cut_follows_the_positives_where_the_null_alone_cannot() -> None:
    # the same null of two people (a camera of 64 tracks) and three models: the chance cut is the
    # same for all, the two-sided cut rises with the positives and stays near the chance cut for a weak model
    rng = np.random.default_rng(0)
    null = rng.normal(0.0, 0.1, 4096)
    chance, _ = chance_cut(null, 64.0)
    cuts = {}
    for name, (m1, s1) in {"weak": (0.30, 0.10), "medium": (0.45, 0.08), "strong": (0.65, 0.05)}.items():
        pos = rng.normal(m1, s1, 40)  # 40 mutual nearest neighbours: 80 of the 128 (track, camera) rows
        value, info = two_sided_cut(null, pos, chance, 64.0, 128)
        assert info["method"] == "two-sided" and "more likely one of them" in info["why"]
        likely = np.sort(pos[pos >= chance])
        # at the cut, weight x share x the positives' density equals (1 - share)^2 x n x the null's density
        from scipy.stats import norm

        share = min(0.95, 2 * len(likely) / 128)
        m, s = np.median(likely), max(1.4826 * np.median(np.abs(likely - np.median(likely))), 0.03)
        lhs = LINK_WEIGHT * share * norm.pdf(value, m, s)
        rhs = (1 - share) ** 2 * 64 * norm.pdf(value, info["null_median"], info["null_sd"])
        assert lhs == pytest.approx(rhs, rel=0.05)
        cuts[name] = value
    assert cuts["weak"] < chance + 0.01 < cuts["medium"] < cuts["strong"] - 0.1


def test_two_sided_cut_keeps_the_chance_cut_without_likely_positives() -> None:
    rng = np.random.default_rng(1)
    null = rng.normal(0.0, 0.1, 2000)
    chance, _ = chance_cut(null, 30.0)
    value, info = two_sided_cut(null, np.array([chance + 0.1, chance + 0.2, chance - 0.1]), chance, 30.0, 60)
    assert value == chance and info["method"] == "two-sided (chance)" and "likely positives" in info["why"]
    assert camera_candidates(synthetic_tracks(200, 1, seed=0)[0]) == (0.0, 0)


def look_alike_site(seed: int) -> tuple[TrackSet, np.ndarray]:
    """Two cameras of 64 tracks: 48 people in both (one person looks alike in both: cosine ~0.75), 16 in one
    camera only, each with a look-alike stranger in the other camera (cosine ~0.4): a null whose body says
    little about its tail, the case where the chance cut alone links strangers."""
    rng = np.random.default_rng(seed)
    dim = 256
    people = l2_normalize(rng.standard_normal((112, dim)).astype(np.float32))
    for k in range(16):  # single a (48 + k, camera 1) looks like single b (80 + k, camera 2)
        people[80 + k] = l2_normalize(0.65 * people[48 + k] + 0.76 * people[80 + k])
    cam1 = list(range(48)) + list(range(48, 64))
    cam2 = list(range(48)) + list(range(80, 96))
    ident = np.array(cam1 + cam2)
    camera = np.array([0] * 64 + [1] * 64, np.int32)
    feats = people[ident] + rng.standard_normal((128, dim)).astype(np.float32) * (0.55 / np.sqrt(dim))
    start = np.concatenate([np.arange(64) * 10.0, np.arange(64) * 10.0 + 3.0])
    tid = np.concatenate([np.arange(1, 65), np.arange(1, 65)])
    ts = TrackSet(["cam1", "cam2"], camera, tid, start, start + 5.0, l2_normalize(feats))
    return ts, ident


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_sided_cut_beats_the_chance_cut_where_strangers_look_alike(seed: int) -> None:
    from sklearn.metrics import adjusted_rand_score

    ts, ident = look_alike_site(seed)
    cons = Constraints(ts)
    graph = build_graph(ts, 20)
    chance, _ = auto_threshold(ts, cons, graph, method="chance")
    value, info = auto_threshold(ts, cons, graph, method="two-sided")
    assert value > chance + 0.05, info["why"]
    ari = {name: adjusted_rand_score(ident, cluster_graph(ts, graph, cut, cons).labels)
           for name, cut in (("chance", chance), ("two-sided", value))}
    assert ari["two-sided"] > ari["chance"] + 0.05, (ari, info["why"])
    assert ari["two-sided"] > 0.8, (ari, info["why"])


@pytest.mark.parametrize("cameras", [2, 30])
def test_mutual_neighbours_are_the_same_whatever_the_slices(cameras: int) -> None:
    # the scale path finds each track's best match per camera slice by slice; the answer must not
    # depend on where the slices fall (brute force over all directed edges here)
    ts, _ = synthetic_tracks(1500, cameras, seed=cameras)
    graph = build_graph(ts, 20)
    cam = ts.camera
    best: dict[tuple[int, int], tuple[float, int]] = {}
    for a, b, s in zip(graph.i.tolist(), graph.j.tolist(), graph.sim.tolist(), strict=True):
        if cam[a] == cam[b]:
            continue
        for src, dst in ((a, b), (b, a)):
            key = (src, int(cam[dst]))
            if key not in best or s > best[key][0]:
                best[key] = (s, dst)
    expected = sorted({(min(s, d), max(s, d)) for (s, c), (_, d) in best.items()
                       if best.get((d, int(cam[s])), (0, -1))[1] == s})
    for chunk in (37, 5000, 10**9):
        m = mutual_cross_camera(ts, graph, chunk=chunk)
        assert sorted(zip(graph.i[m].tolist(), graph.j[m].tolist(), strict=True)) == expected
