"""What report.html asks a reviewer first: the association's likely errors, in order (:func:`review_queue`).

Two kinds of question, each about two tracks ("same person?"):

* ``link``: a merge of the clustering (two clusters joined into one identity), asked with the two
  tracks that stood for the clusters; its similarity is the clusters' (average linkage). "Not the
  same person" becomes a cannot-link.
* ``apart``: two identities left apart, asked with their most similar pair of tracks; its
  similarity is the mean over all pairs of their tracks. Under the threshold: a possible missed
  link; at or above it, the constraints refused the merge although the features say one person.
  "Same person" becomes a must-link.

Order: the chance that the association is wrong there times what a wrong answer costs.
``doubt`` is how much the similarity argues against what the association did (a pair left apart:
similarity minus threshold; a link: threshold minus similarity); the chance is
``1 / (1 + exp(-doubt / spread))`` with ``spread`` the null's robust sd (how much similarities of
different people vary, :mod:`.graph`); the cost is the seconds of tracks of the smaller side (what
IDF1 gains when the answer fixes it). So the pairs the constraints kept apart against strong
features come first, then weak links and close misses, large identities before small ones.
Pairs of one camera that share a moment are never asked (never one person).
``benchmarks/review_bench.py`` follows this order with a simulated reviewer (docs/benchmarks.md).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from trackreid.associate.graph import Graph
from trackreid.associate.tracks import TrackSet

if TYPE_CHECKING:
    from trackreid.associate.result import Association

#: At most this many questions on the page.
MAX_QUESTIONS = 200
#: Pairs of identities left apart whose whole similarity is computed (the most similar by their best pair).
CANDIDATES = 1000


def review_queue(tracks: TrackSet, labels: np.ndarray, merges: list[tuple[int, int, float]], graph: Graph | None,
                 threshold: float, limit: int = MAX_QUESTIONS) -> list[dict[str, Any]]:
    """The questions, likely errors first: ``{kind, a, b, rows, similarity, margin, doubt, seconds, priority}``
    (see the module docstring)."""
    out: list[dict[str, Any]] = []
    length = np.maximum(tracks.end - tracks.start, 0.0) + 1e-3  # a track's weight: its seconds
    # links: replay the merges for the seconds on each side of each (union-find)
    parent = list(range(len(tracks)))
    seconds = length.tolist()

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for keep, gone, sim in merges:
        rk, rg = root(keep), root(gone)
        if math.isfinite(sim):  # a reviewer's must-link has no similarity: nothing to ask
            out.append({"kind": "link", "rows": (int(keep), int(gone)), "similarity": float(sim),
                        "seconds": min(seconds[rk], seconds[rg])})
        parent[rg] = rk
        seconds[rk] += seconds[rg]
    if graph is not None and len(graph.i):
        i, j, s = graph.i, graph.j, graph.sim
        apart = (labels[i] != labels[j]) & np.isfinite(s)
        apart &= ~tracks.same_moment(i, j)
        # one pair per two identities: their most similar edge (numpy, for sites of 100,000 tracks)
        edges = np.flatnonzero(apart)
        edges = edges[np.argsort(-s[edges], kind="stable")]
        la, lb = labels[i[edges]], labels[j[edges]]
        key = np.minimum(la, lb).astype(np.int64) * (int(labels.max(initial=0)) + 1) + np.maximum(la, lb)
        edges = edges[np.sort(np.unique(key, return_index=True)[1])][:CANDIDATES]  # most similar first
        by_label = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[by_label], np.arange(int(labels.max(initial=-1)) + 2))
        for e in edges.tolist():
            ma, mb = (by_label[bounds[x]:bounds[x + 1]] for x in (int(labels[i[e]]), int(labels[j[e]])))
            pa, pb = np.meshgrid(ma, mb, indexing="ij")
            both = graph.similarity(pa.ravel(), pb.ravel())
            out.append({"kind": "apart", "rows": (int(i[e]), int(j[e])), "similarity": float(both.mean()),
                        "seconds": float(min(length[ma].sum(), length[mb].sum()))})
    spread = float(graph.null[1]) if graph is not None and graph.null is not None and graph.null[1] > 0 else 0.1
    for q in out:
        q["margin"] = q["similarity"] - float(threshold)
        q["a"], q["b"] = (tracks.label(r) for r in q["rows"])
        # how much the similarity argues against what the association did (positive: it says the opposite)
        q["doubt"] = q["margin"] if q["kind"] == "apart" else -q["margin"]
        # the chance the association is wrong here, times the seconds of tracks a wrong answer costs
        q["priority"] = q["seconds"] / (1.0 + math.exp(-q["doubt"] / spread))
    out.sort(key=lambda q: (-q["priority"], q["a"], q["b"]))
    return out[:limit]


def page_data(result: Association) -> dict[str, Any]:
    """What the page's review script needs besides the page: each identity's tracks, the model, and the
    decisions this association was made with (``initial``: a later download holds them too, so a second
    round of review adds to the first instead of replacing it)."""
    from trackreid.associate.corrections import Corrections

    t = result.tracks
    members: dict[int, list[str]] = {}
    for row, lab in enumerate(result.labels.tolist()):
        members.setdefault(int(lab) + 1, []).append(t.label(row))
    fixes = result.config.corrections
    initial = fixes.to_json() if isinstance(fixes, Corrections) else {"must_link": [], "cannot_link": [],
                                                                       "confirmed": []}
    initial.pop("model_sha256", None)
    return {"model_sha256": result.summary.get("model_sha256"), "initial": initial,
            "identities": {str(g): m for g, m in members.items()}}
