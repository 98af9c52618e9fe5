"""What report.html asks a reviewer first: the association's likely errors, in order (:func:`review_queue`).

Two kinds of question, each about two tracks ("same person?"):

* ``link``: a merge of the clustering (two clusters joined into one identity), asked with the two
  tracks that stood for the clusters. A weak link (cluster similarity just over the threshold)
  is where a wrong merge would be: "not the same person" becomes a cannot-link.
* ``apart``: the most similar pair of tracks of two identities left apart, one question per pair
  of identities. Just under the threshold is where a missed link would be; at or above it, the
  constraints refused the merge (the identities they nearly let through, or wrongly refused):
  "same person" becomes a must-link.

Questions are ordered by how close their similarity is to the threshold (the smallest margin
first): the answers the association was least sure of. Pairs of one camera that share a moment
are never asked (never one person). The benchmark ``benchmarks/review_bench.py`` follows this
order with a simulated reviewer.
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


def track_key(tracks: TrackSet, row: int) -> str:
    """``camera:track id``, the name of a track in corrections.json."""
    return f"{tracks.cameras[int(tracks.camera[row])]}:{int(tracks.track_id[row])}"


def review_queue(tracks: TrackSet, labels: np.ndarray, merges: list[tuple[int, int, float]], graph: Graph | None,
                 threshold: float, limit: int = MAX_QUESTIONS) -> list[dict[str, Any]]:
    """The questions, likely errors first: ``{kind, a, b, rows, similarity, margin}`` (see the module docstring)."""
    out: list[dict[str, Any]] = []
    for keep, gone, sim in merges:
        if math.isfinite(sim):  # a reviewer's must-link has no similarity: nothing to ask
            out.append({"kind": "link", "rows": (int(keep), int(gone)), "similarity": float(sim)})
    if graph is not None and len(graph.i):
        i, j, s = graph.i, graph.j, graph.sim
        apart = (labels[i] != labels[j]) & np.isfinite(s)
        apart &= ~((tracks.camera[i] == tracks.camera[j]) & (tracks.start[i] <= tracks.end[j])
                   & (tracks.start[j] <= tracks.end[i]))
        best: dict[tuple[int, int], int] = {}
        for e in np.flatnonzero(apart)[np.argsort(-s[apart], kind="stable")].tolist():
            la, lb = int(labels[i[e]]), int(labels[j[e]])
            best.setdefault((min(la, lb), max(la, lb)), e)
        out += [{"kind": "apart", "rows": (int(i[e]), int(j[e])), "similarity": float(s[e])} for e in best.values()]
    for q in out:
        q["margin"] = q["similarity"] - float(threshold)
        q["a"], q["b"] = (track_key(tracks, r) for r in q["rows"])
    out.sort(key=lambda q: (abs(q["margin"]), q["a"], q["b"]))
    return out[:limit]


def page_data(result: Association) -> dict[str, Any]:
    """What the page's review script needs besides the page: each identity's tracks, the model."""
    t = result.tracks
    members: dict[int, list[str]] = {}
    for row, lab in enumerate(result.labels.tolist()):
        members.setdefault(int(lab) + 1, []).append(track_key(t, row))
    return {"model_sha256": result.summary.get("model_sha256"), "identities": {str(g): m for g, m in members.items()}}
