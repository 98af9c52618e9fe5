"""Choosing the merge threshold without labels.

* **The null** (two different people): random cross-camera pairs of tracks
  (:attr:`Graph.null_sims <trackreid.associate.graph.Graph>`, fitted by a robust Gaussian,
  median and 1.4826 x MAD). Almost all are two people, so the fit is clean however many
  cameras a person crosses.
* **The cut** (``method="chance"``): a track is compared with every track of the
  other cameras, ``n`` of them on average; its best chance match (the most similar of those
  that are other people) sets how high a wrong link can reach. The cut is the similarity that
  a random different-person pair exceeds with probability ``CHANCE_MATCHES / n``: above it a
  track expects ``CHANCE_MATCHES`` (0.4) chance matches among all the other cameras' tracks,
  i.e. its best chance match stays below the cut for about two tracks in three (e^-0.4).
  The cut rises with the site's size (more tracks to be fooled by) and with the null's
  spread; it needs no model of the positives, whose spread on real sites is wide and whose
  share is unknown. The constant was chosen on the real-pixel synth sites of seeds 0-3 and
  checked on held-out seeds 4-7 (docs/associate.md).
* **The two-sided cut** (``method="two-sided"``): the chance cut says how high chance matches
  reach, not how much a higher cut would cost; with a stronger model the true matches sit far
  above it and a higher cut loses almost none of them while dropping the chance links of people
  seen by one camera only. Here each (track, other camera) row is either matched (a share
  ``p``, estimated from the likely positives above the chance cut: each mutual pair fills two
  rows) or not; a chance link needs a track left unmatched on both sides, so chance links at
  ``s`` come at a rate ``(1 - p)^2 n f0(s)`` (``n`` tracks in one other camera, ``f0`` the
  null's density) and true links at ``p f1(s)``, with ``f1`` a robust Gaussian of the likely
  positives (those mutual pairs above the chance cut). The cut is the lowest ``s`` above
  ``m0 + sd0`` where ``LINK_WEIGHT`` (2) times the rate of true links reaches the rate of chance
  links: a true link counts twice a chance one, partly because the constraints and the
  average linkage refuse many of the chance links counted here. The weight was chosen among
  1.5 / 2 / 3 / 4 on seeds 0-3 of the benchmark's sites with three models and checked on new
  seeds (docs/associate.md, "Does the cut hold for other models?"). With fewer than
  ``MIN_LIKELY`` likely positives it keeps the chance cut.
* **Certain negatives**: pairs of tracks of one camera that share a moment are two people.
  For each track, the most similar of them (its hardest negative). Shown in the histogram;
  the ``mixture`` method cuts against them. (As the null they lost: few pairs, and people
  who occlude each other share pixels, docs/associate.md.)
* **Likely positives**: cross-camera mutual nearest neighbours (track ``j`` is ``i``'s most
  similar track in ``j``'s camera and the other way round); mostly the same person, plus the
  best wrong match of people seen by one camera only.
* ``method="bayes"`` (the previous default): a robust Gaussian for each of the graph's
  cross-camera edges less the likely positives (the null) and the likely positives, prior =
  likely positives over cross-camera edges, cut where an edge becomes more likely one person
  than two. Where a person crosses many cameras most of a track's neighbours are that person,
  the null is full of them and the cut falls too low.
* ``method="mixture"`` (the first method): a two-component Gaussian mixture over the hardest
  negatives and the likely positives (negatives subsampled to the number of positives), cut
  where the upper component becomes the more likely one, but never below a high quantile
  (default 90 %) of the hardest negatives; Otsu's method replaces the mixture when it does
  not separate two components.

:func:`auto_threshold` returns the value and a JSON-able ``info`` dict that says how it was
chosen; :func:`plot_threshold` draws the histogram with the cut marked.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.associate.config import METHODS
from trackreid.associate.constraints import Constraints
from trackreid.associate.graph import Graph, robust_gaussian
from trackreid.associate.tracks import TrackSet
from trackreid.errors import InputError

log = logging.getLogger(__name__)

NEGATIVE_QUANTILE = 0.9
MIN_SAMPLES = 20
MIN_POSITIVES = 5  # the robust fit of the likely positives needs only a few (a 2-camera site may have ~15)
MAX_NEGATIVES = 200_000
FALLBACK = 0.5
BINS = 50
MAX_FIT = 20_000  # values the mixture is fitted on (a uniform sample above that)
#: ``method="chance"``: chance matches (pairs of two people) a track expects above the cut.
CHANCE_MATCHES = 0.4
#: ``method="two-sided"``: how many times denser than the chance links the likely positives must be at the cut.
LINK_WEIGHT = 2.0
#: ``method="two-sided"``: fewer likely positives above the chance cut than this: the chance cut is kept.
MIN_LIKELY = 5
#: ``method="two-sided"``: floor of the positives' fitted spread (a handful of pairs can have almost none).
MIN_POSITIVE_SD = 0.03


def overlapping_pairs(tracks: TrackSet, limit: int = MAX_NEGATIVES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, j)`` of tracks of one camera that share a moment; a uniform sample of ``limit`` if more."""
    rng = np.random.default_rng(seed)
    firsts, counts = [], []
    orders = []
    for c in range(len(tracks.cameras)):
        rows = np.flatnonzero(tracks.camera == c)
        order = rows[np.argsort(tracks.start[rows], kind="stable")]
        starts = tracks.start[order]
        hi = np.searchsorted(starts, tracks.end[order], side="right")  # later starts within my span
        pos = np.arange(len(order))
        counts.append(np.maximum(hi - pos - 1, 0))
        firsts.append(pos)
        orders.append(order)
    if not orders:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cam_of = np.concatenate([np.full(len(o), c) for c, o in enumerate(orders)])
    pos = np.concatenate(firsts)
    cnt = np.concatenate(counts)
    total = int(cnt.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if total <= limit:
        p = np.repeat(np.arange(len(cnt)), cnt)
        within = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        q_pos = pos[p] + 1 + within
    else:
        p = rng.choice(len(cnt), size=limit, p=cnt / total)
        q_pos = pos[p] + 1 + (rng.random(limit) * cnt[p]).astype(np.int64)
    flat = np.concatenate(orders)
    offsets = np.concatenate([[0], np.cumsum([len(o) for o in orders])])
    i = flat[p]
    j = flat[offsets[cam_of[p]] + q_pos]
    return i.astype(np.int64), j.astype(np.int64)


#: Directed edges sorted at once by :func:`mutual_cross_camera` (its memory is a few times this x 32 bytes).
MUTUAL_CHUNK = 4_000_000


def mutual_cross_camera(tracks: TrackSet, graph: Graph, chunk: int = MUTUAL_CHUNK) -> np.ndarray:
    """Indices of graph edges whose tracks are each other's best match in the other's camera.

    Each track's best edge per other camera is found over slices of tracks (every directed edge of
    a slice at once, ``chunk`` of them about), so the temporaries stay a slice's size however many
    tracks a site has: at 1.44M tracks the all-at-once sort of both directions was the peak of
    the whole association (benchmarks/associate_scale.py).
    """
    cam = tracks.camera
    e = np.flatnonzero(cam[graph.i] != cam[graph.j])
    if not len(e):
        return e
    n, ncam = len(tracks), len(tracks.cameras)
    # both directions, grouped by source track: edge e seen from graph.i[e] and from graph.j[e]
    by_i = e[np.argsort(graph.i[e], kind="stable")]
    by_j = e[np.argsort(graph.j[e], kind="stable")]
    si, sj = graph.i[by_i], graph.j[by_j]
    per_track = np.bincount(si, minlength=n) + np.bincount(sj, minlength=n)
    bounds = np.searchsorted(np.cumsum(per_track), np.arange(chunk, int(per_track.sum()), chunk), side="right")
    best_src, best_dst, best_edge = [], [], []
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [n]]), strict=True):
        a0, a1 = np.searchsorted(si, [lo, hi])
        b0, b1 = np.searchsorted(sj, [lo, hi])
        edge = np.concatenate([by_i[a0:a1], by_j[b0:b1]])
        src = np.concatenate([graph.i[by_i[a0:a1]], graph.j[by_j[b0:b1]]])
        dst = np.concatenate([graph.j[by_i[a0:a1]], graph.i[by_j[b0:b1]]])
        group = src * ncam + cam[dst]
        order = np.lexsort((-graph.sim[edge], group))
        first = np.ones(len(order), bool)
        first[1:] = group[order][1:] != group[order][:-1]
        best = order[first]  # one directed edge per (track, other camera): the most similar
        best_src.append(src[best])
        best_dst.append(dst[best])
        best_edge.append(edge[best])
    src, dst, edge = (np.concatenate(x) for x in (best_src, best_dst, best_edge))
    key = src * n + dst
    rev = dst * n + src
    mutual = np.isin(key, rev) & (src < dst)
    return np.unique(edge[mutual])


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=256)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def fit_cut(negatives: np.ndarray, positives: np.ndarray, quantile: float = NEGATIVE_QUANTILE,
            seed: int = 0) -> tuple[float, dict[str, Any]]:
    """The cut between certain negatives and likely positives (see the module docstring)."""
    neg = np.asarray(negatives, np.float64)
    pos = np.asarray(positives, np.float64)
    info: dict[str, Any] = {"negatives": len(neg), "positives": len(pos), "negative_quantile": quantile}
    floor = float(np.quantile(neg, quantile)) if len(neg) else None
    info["negatives_quantile_value"] = floor
    if len(neg):
        info["negatives_mean"] = float(neg.mean())
    if len(pos):
        info["positives_mean"] = float(pos.mean())
    if len(neg) < MIN_SAMPLES and len(pos) < MIN_SAMPLES:
        value = floor if floor is not None else FALLBACK
        info.update(method="fallback", why=f"too few pairs to fit ({len(neg)} certain negatives, {len(pos)} likely "
                    f"positives); using {'the negatives quantile' if floor is not None else 'the default'} "
                    f"{value:.3f}; pass --threshold to set it")
        return float(value), info
    rng = np.random.default_rng(seed)
    if len(neg) > max(len(pos), MIN_SAMPLES):
        neg_fit = rng.choice(neg, size=max(len(pos), MIN_SAMPLES), replace=False)
    else:
        neg_fit = neg
    pooled = np.concatenate([neg_fit, pos])
    cut, method = _mixture_cut(pooled, seed)
    if cut is None:
        cut, method = _otsu(pooled), "otsu"
    info["mixture_cut" if method == "gmm" else "otsu_cut"] = cut
    if floor is not None and floor > cut:
        value = floor
        info["method"] = f"{method}+negatives-floor"
        info["why"] = (f"the {method} cut {cut:.3f} lies below the {quantile:.0%} quantile of the certain "
                       f"negatives ({floor:.3f}: pairs of one camera at the same time, certainly different "
                       f"people): using {floor:.3f}")
    else:
        value = cut
        info["method"] = method
        info["why"] = (f"{'two-component Gaussian mixture' if method == 'gmm' else 'Otsu'} cut between "
                       f"{len(neg)} certain negatives (mean {neg.mean() if len(neg) else float('nan'):.3f}) and "
                       f"{len(pos)} likely positives (mean {pos.mean() if len(pos) else float('nan'):.3f}); above "
                       f"the {quantile:.0%} quantile of the negatives"
                       + (f" ({floor:.3f})" if floor is not None else " (none found)"))
    return float(value), info


def _mixture_cut(values: np.ndarray, seed: int) -> tuple[float | None, str]:
    from sklearn.mixture import GaussianMixture

    if len(values) < 2 * MIN_SAMPLES or np.ptp(values) < 1e-6:
        return None, "otsu"
    if len(values) > MAX_FIT:
        values = np.random.default_rng(seed).choice(values, MAX_FIT, replace=False)
    gm = GaussianMixture(2, random_state=seed, n_init=2).fit(values.reshape(-1, 1))
    means = gm.means_.ravel()
    lo, hi = int(np.argmin(means)), int(np.argmax(means))
    sd = np.sqrt(gm.covariances_.ravel())
    if means[hi] - means[lo] < 0.5 * (sd[lo] + sd[hi]) / 2:
        return None, "otsu"  # not two separate components
    grid = np.linspace(means[lo], means[hi], 2001)
    post = gm.predict_proba(grid.reshape(-1, 1))[:, hi]
    above = np.flatnonzero(post >= 0.5)
    if not len(above):
        return None, "otsu"
    return float(grid[above[0]]), "gmm"


def other_camera_tracks(tracks: TrackSet) -> float:
    """Tracks of the other cameras, on average over the tracks: each one's candidate matches."""
    counts = np.bincount(tracks.camera, minlength=len(tracks.cameras)).astype(np.float64)
    total = counts.sum()
    return float((counts * (total - counts)).sum() / total) if total else 0.0


def chance_cut(null: np.ndarray, candidates: float,
               matches: float = CHANCE_MATCHES) -> tuple[float, dict[str, Any]]:
    """The cut a track's chance matches (of ``candidates`` others) exceed ``matches`` times on average.

    ``null``: similarities of (almost all) two people. Returns (cut, info); see the module docstring.
    """
    from scipy.stats import norm

    null = np.asarray(null, np.float64)
    info: dict[str, Any] = {"null_pairs": len(null), "candidates": candidates, "chance_matches": matches}
    if len(null) < MIN_SAMPLES or candidates < 1:
        value = FALLBACK
        info.update(method="fallback", why=f"too few cross-camera pairs to fit ({len(null)}); using the default "
                    f"{value:.3f}; pass --threshold to set it")
        return value, info
    m0, s0 = robust_gaussian(null)
    tail = min(0.5, matches / candidates)
    z = float(norm.isf(tail))
    value = m0 + s0 * z
    info.update(null_median=m0, null_sd=s0, tail=tail, z=z, method="chance", why=(
        f"two different people: random cross-camera pairs ~ N({m0:.3f}, {s0:.3f}) (robust fit); each track meets "
        f"{candidates:.0f} tracks of other cameras, so the cut is where a different-person pair has a "
        f"{matches:g}/{candidates:.0f} chance to be above it ({z:.2f} sd): {matches:g} chance matches per track "
        f"expected above {value:.3f}"))
    return float(value), info


def camera_candidates(tracks: TrackSet) -> tuple[float, int]:
    """(tracks of ONE other camera per (track, other camera) row, on average; the number of such rows).

    A track meets each other camera separately: an identity holds one track of a camera at a time,
    so its best chance match is taken camera by camera.
    """
    others = len(np.unique(tracks.camera)) - 1  # every track's own camera has tracks
    if others < 1:
        return 0.0, 0
    # other_camera_tracks counts a track's candidates over all the other cameras
    return other_camera_tracks(tracks) / others, len(tracks) * others


def two_sided_cut(null: np.ndarray, positives: np.ndarray, chance: float, candidates: float, rows: int,
                  weight: float = LINK_WEIGHT) -> tuple[float, dict[str, Any]]:
    """The cut where ``weight`` x the rate of likely true links reaches the rate of chance links still possible.

    ``null``: similarities of two people (random cross-camera pairs); ``positives``: likely positives
    (cross-camera mutual nearest neighbours); ``chance``: the :func:`chance_cut` value (positives
    above it are mostly one person); ``candidates``: tracks of one other camera a track meets;
    ``rows``: (track, other camera) pairs. See the module docstring. Returns (cut, info).
    """
    from scipy.stats import norm

    null = np.asarray(null, np.float64)
    pos = np.asarray(positives, np.float64)
    likely = pos[pos >= chance]
    info: dict[str, Any] = {"null_pairs": len(null), "positives": len(pos), "likely_positives": len(likely),
                            "chance_cut": chance, "candidates": candidates, "link_weight": weight}
    if len(null) < MIN_SAMPLES or len(likely) < MIN_LIKELY or rows < 1 or candidates < 1:
        info.update(method="two-sided (chance)", why=(
            f"only {len(likely)} likely positives above the chance cut {chance:.3f} (mutual nearest neighbours "
            f"across cameras; {MIN_LIKELY} needed to place the positives): the chance cut is kept"))
        return float(chance), info
    m0, s0 = robust_gaussian(null)
    m1 = float(np.median(likely))
    s1 = max(robust_gaussian(likely)[1], MIN_POSITIVE_SD)
    share = float(np.clip(2 * len(likely) / rows, 0.05, 0.95))  # each mutual pair fills two rows
    xs = np.linspace(m0 + s0, max(m1, m0 + s0), 2001)
    chance_links = (1 - share) ** 2 * candidates * norm.pdf(xs, m0, s0)
    true_links = weight * share * norm.pdf(xs, m1, s1)
    above = np.flatnonzero(true_links >= chance_links)
    value = float(xs[above[0]]) if len(above) else m1
    info.update(method="two-sided", null_median=m0, null_sd=s0, positives_median=m1, positives_sd=s1,
                matched_share=share, why=(
                    f"two different people ~ N({m0:.3f}, {s0:.3f}) (random cross-camera pairs); likely one person: "
                    f"{len(likely)} mutual nearest neighbours above the chance cut {chance:.3f}, "
                    f"~ N({m1:.3f}, {s1:.3f}), "
                    f"{share:.0%} of the (track, other camera) rows; the cut is where a link is {weight:g}x more "
                    f"likely one of them than a chance match among the {1 - share:.0%} left unmatched of "
                    f"{candidates:.0f} tracks a camera: {value:.3f}"))
    return value, info


def bayes_cut(null: np.ndarray, positives: np.ndarray, prior: float) -> tuple[float, dict[str, Any]]:
    """Where a pair becomes more likely one person than two; see the module docstring.

    ``null``: similarities of (mostly) two people; ``positives``: of likely matches (mostly one
    person); ``prior``: the share of pairs that are one person. Returns (cut, info).
    """
    from scipy.stats import norm

    null = np.asarray(null, np.float64)
    pos = np.asarray(positives, np.float64)
    info: dict[str, Any] = {"null_pairs": len(null), "positives": len(pos)}
    if len(null) < MIN_SAMPLES or len(pos) < MIN_POSITIVES:
        value = float(np.median(pos)) if len(pos) else FALLBACK
        info.update(method="fallback", why=f"too few pairs to fit ({len(null)} cross-camera edges, {len(pos)} likely "
                    f"positives); using {'the positives median' if len(pos) else 'the default'} {value:.3f}; "
                    "pass --threshold to set it")
        return value, info
    m0, s0 = robust_gaussian(null)
    m1, s1 = robust_gaussian(pos)
    prior = min(0.5, max(float(prior), 1e-9))
    info.update(null_median=m0, null_sd=s0, positives_median=m1, positives_sd=s1, prior=prior)
    xs = np.linspace(m0, max(m1, m0 + 0.01), 4001)
    llr = norm.logpdf(xs, m1, s1) - norm.logpdf(xs, m0, s0) + np.log(prior / (1 - prior))
    above = np.flatnonzero(llr >= 0)
    value = float(xs[above[0]]) if len(above) else m1
    info.update(method="bayes", why=(
        f"a pair is more likely one person than two from {value:.3f} on: cross-camera graph edges "
        f"(mostly two people) ~ N({m0:.3f}, {s0:.3f}), mutual nearest neighbours ~ N({m1:.3f}, {s1:.3f}) "
        f"(robust fits), prior {prior:.2g} of edges being one person"))
    return value, info


def hardest_negatives(tracks: TrackSet, constraints: Constraints, graph: Graph,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(similarities of the certain-negative pairs, each track's hardest one).

    The pairs are every same-camera time-overlapping pair (a uniform sample of ``MAX_NEGATIVES``
    when there are more) plus those among the graph's edges (the most similar ones). A track's
    hardest negative is its most similar simultaneous track of its own camera: the best wrong
    match it certainly has, the counterpart of its best match in another camera.
    """
    i, j = overlapping_pairs(tracks, seed=seed)
    sims = graph.similarity(i, j) if len(i) else np.zeros(0, np.float32)
    in_graph = constraints.overlapping(graph.i, graph.j)
    gi, gj, gs = graph.i[in_graph], graph.j[in_graph], graph.sim[in_graph]
    hardest = np.full(len(tracks), -np.inf)
    for a, b, v in ((i, j, sims), (gi, gj, gs)):
        np.maximum.at(hardest, a, v)
        np.maximum.at(hardest, b, v)
    return sims, hardest[np.isfinite(hardest)].astype(np.float32)


def auto_threshold(tracks: TrackSet, constraints: Constraints | None, graph: Graph,
                   quantile: float = NEGATIVE_QUANTILE, seed: int = 0,
                   method: str = "chance") -> tuple[float, dict[str, Any]]:
    """(threshold, info): a cut chosen from the data alone; ``info`` is JSON-able and holds histograms.

    ``method="chance"``: :func:`chance_cut` of the graph's null (random cross-camera pairs).
    Likely positives: cross-camera mutual nearest neighbours. ``method="bayes"``: the cut of
    :func:`bayes_cut` against the graph's cross-camera edges; ``"mixture"``: :func:`fit_cut` against
    each track's hardest same-camera simultaneous track (:func:`hardest_negatives`), never below
    ``quantile`` of them. Both kinds of negatives go into the histogram.
    """
    cons = constraints if constraints is not None else Constraints(tracks)
    if not 0.5 <= quantile < 1.0:
        raise InputError(f"negative quantile {quantile!r}: expected a value in [0.5, 1)")
    if method not in METHODS:
        raise InputError(f"threshold method {method!r}: expected one of {', '.join(METHODS)}")
    all_neg, neg = hardest_negatives(tracks, cons, graph, seed)
    mutual = mutual_cross_camera(tracks, graph)
    pos = graph.sim[mutual]
    cross = np.flatnonzero(tracks.camera[graph.i] != tracks.camera[graph.j])
    if method in ("chance", "two-sided"):
        null = graph.null_sims if graph.null_sims is not None else np.zeros(0, np.float32)
        value, info = chance_cut(null, other_camera_tracks(tracks))
        if method == "two-sided":
            value, info = two_sided_cut(null, pos, value, *camera_candidates(tracks))
        info["null_from"] = "random cross-camera pairs of tracks (nearly all two people)"
        info["negatives"] = len(neg)
        info["positives"] = len(pos)
    elif method == "bayes":
        null = graph.sim[np.setdiff1d(cross, mutual)]
        value, info = bayes_cut(null, pos, len(mutual) / max(len(cross), 1))
        info["null_from"] = "the cross-camera edges of the similarity graph, less the likely positives"
        info["negatives"] = len(neg)
    else:
        null = graph.sim[np.setdiff1d(cross, mutual)]
        value, info = fit_cut(neg, pos, quantile, seed)
        info["null_from"] = "the cross-camera edges of the similarity graph, less the likely positives"
    info["negatives_from"] = "each track's most similar same-camera track at the same time"
    info["overlapping_pairs"] = len(all_neg)
    lo = float(min(graph.sim.min(initial=0.0), all_neg.min(initial=0.0), null.min(initial=0.0), value - 0.05))
    hi = float(max(graph.sim.max(initial=1.0), pos.max(initial=1.0), value + 0.05))
    edges = np.linspace(lo, hi, BINS + 1)
    info["histogram"] = {
        "bins": [round(float(x), 5) for x in edges],
        "negatives": np.histogram(neg, edges)[0].tolist(),
        "positives": np.histogram(pos, edges)[0].tolist(),
        "null": np.histogram(null, edges)[0].tolist(),
        "edges": np.histogram(graph.sim, edges)[0].tolist(),
    }
    info["threshold"] = value
    return value, info


def plot_threshold(info: dict[str, Any], path: Path, title: str = "") -> Path:
    """A PNG of the histograms in ``info`` (from :func:`auto_threshold`) with the threshold marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("the threshold histogram needs matplotlib: pip install 'trackreid[analysis]'") from None
    h = info["histogram"]
    bins = np.asarray(h["bins"])
    centers = (bins[:-1] + bins[1:]) / 2
    width = bins[1] - bins[0]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for key, colour, label in (("edges", "#bbbbbb", "all graph edges"),
                               ("null", "#1f77b4", info.get("null_from", "the null (mostly two people)")),
                               ("negatives", "#d62728", "hardest certain negative per track (same camera, same time)"),
                               ("positives", "#2ca02c", "likely positives (cross-camera mutual NN)")):
        counts = np.asarray(h.get(key, []), float)
        if counts.sum() > 0:
            ax.bar(centers, counts / counts.sum(), width=width, alpha=0.5, color=colour, label=label)
    ax.axvline(info["threshold"], color="black", linestyle="--",
               label=f"threshold {info['threshold']:.3f} ({info.get('method', 'fixed')})")
    ax.set_xlabel("similarity")
    ax.set_ylabel("fraction of pairs")
    ax.set_title(title or "trackreid associate: similarity distributions")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
