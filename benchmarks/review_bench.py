"""A simulated reviewer on report.html's questions: IDF1 against the number of decisions.

Synthetic sites (:func:`trackreid.associate.synthetic.synthetic_tracks`: identities walking
through cameras, features = identity + noise + camera bias) of ``--tracks`` tracks. The
association is the library's default one (k = 20 graph, de-biased; ``chance`` auto threshold;
average linkage; same-camera overlap and the 3 s revisit gap). The reviewer takes the page's
first question not yet answered (:func:`trackreid.associate.review.review_queue`: the
similarity closest to the threshold first), answers it from the ground truth (same person:
must-link, else cannot-link), and the site is re-associated with every answer so far as
exact constraints (:mod:`trackreid.associate.corrections`), as ``associate --corrections``
does; the next question comes from the new association.

IDF1 is per track, weighted by its duration (what frame IDF1 is when every track is seen in
all its frames): the best one-to-one matching of true and predicted identities.

    PYTHONPATH=src python benchmarks/review_bench.py
    PYTHONPATH=src python benchmarks/review_bench.py --order random   # the same questions, random order
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.optimize import linear_sum_assignment

from trackreid.associate.cluster import cluster_graph
from trackreid.associate.config import REVISIT_GAP
from trackreid.associate.constraints import Constraints
from trackreid.associate.graph import build_graph
from trackreid.associate.review import review_queue
from trackreid.associate.synthetic import synthetic_tracks
from trackreid.associate.threshold import auto_threshold
from trackreid.associate.tracks import TrackSet


def idf1(truth: np.ndarray, labels: np.ndarray, weight: np.ndarray) -> float:
    """Duration-weighted IDF1 of ``labels`` against ``truth`` (both per track), in %."""
    t = np.unique(truth, return_inverse=True)[1]
    p = np.unique(labels, return_inverse=True)[1]
    w = np.zeros((t.max() + 1, p.max() + 1))
    np.add.at(w, (t, p), weight)
    rows, cols = linear_sum_assignment(-w)
    return 100.0 * float(w[rows, cols].sum()) / float(weight.sum())


def simulate(ts: TrackSet, truth: np.ndarray, decisions: int, order: str = "page", seed: int = 0) -> list[float]:
    """IDF1 after 0, 1, ..., ``decisions`` answers."""
    rng = np.random.default_rng(seed)
    graph = build_graph(ts, 20, debias=True)
    base = Constraints(ts, revisit_gap=REVISIT_GAP)
    threshold, _ = auto_threshold(ts, base, graph)
    must: list[tuple[int, int, int]] = []
    cannot: list[tuple[int, int]] = []
    asked: set[tuple[int, int]] = set()
    scores = []
    for _ in range(decisions + 1):
        cons = Constraints(ts, revisit_gap=REVISIT_GAP, cannot=cannot, must=must)
        result = cluster_graph(ts, graph, threshold, cons)
        scores.append(idf1(truth, result.labels, ts.end - ts.start))
        queue = [q for q in review_queue(ts, result.labels, result.merges, graph, threshold)
                 if tuple(sorted(q["rows"])) not in asked]
        question = (queue[int(rng.integers(len(queue)))] if order == "random" else queue[0]) if queue else None
        if question is None:
            scores += [scores[-1]] * (decisions + 1 - len(scores))
            break
        a, b = question["rows"]
        asked.add((min(a, b), max(a, b)))
        if truth[a] == truth[b]:
            must.append((a, b, len(must)))
        else:
            cannot.append((a, b))
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=40)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--tracks-per-identity", type=float, default=4.0)
    ap.add_argument("--noise", type=float, default=0.65)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--order", choices=("page", "random"), default="page",
                    help="page: the page's order; random: the same questions in a random order (the baseline)")
    ap.add_argument("--decisions", type=int, default=20)
    args = ap.parse_args()
    runs = []
    for seed in range(args.seeds):
        ts, truth = synthetic_tracks(args.tracks, args.cameras, args.tracks_per_identity, noise=args.noise,
                                     seed=seed)
        runs.append(simulate(ts, truth, args.decisions, args.order, seed))
    table = np.array(runs)  # seeds x (decisions + 1)
    gap0 = 100.0 - table[:, 0]
    print(f"{args.seeds} synthetic sites of {args.tracks} tracks, {args.cameras} cameras, "
          f"{args.tracks_per_identity:g} tracks per identity, noise {args.noise:g}; questions in {args.order} order")
    print("| decisions | mean IDF1 % | min | max | gap to 100 closed (mean of sites with a gap) |")
    print("|---:|---:|---:|---:|---:|")
    has_gap = gap0 > 0
    for d in sorted({0, 1, 2, 3, 5, 10, 15, 20} & set(range(args.decisions + 1))):
        closed = (table[has_gap, d] - table[has_gap, 0]) / gap0[has_gap] if has_gap.any() else np.array([1.0])
        print(f"| {d} | {table[:, d].mean():.1f} | {table[:, d].min():.1f} | {table[:, d].max():.1f} | "
              f"{100 * closed.mean():.0f} % |")


if __name__ == "__main__":
    main()
