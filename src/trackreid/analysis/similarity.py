"""Track x track cosine similarity: the matrix, each track's most similar tracks, a heatmap.

:func:`track_similarity` computes; :func:`write_similarity` writes into a folder:

* ``similarity.npy``  (T, T) float32, rows/columns in the order of ``similarity_tracks.json``
* ``similarity.csv``  the same with a header row and a first column of track labels
* ``similarity_tracks.json``  ``[{"index", "label", "camera", "track_id"}, ...]``
* ``top_k.csv`` / ``top_k.json``  for every track its ``k`` most similar other tracks
* ``heatmap.png``  rows and columns ordered by hierarchical clustering (average linkage,
  optimal leaf order), so that groups of similar tracks form blocks
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.analysis.plotting import category_colors, new_figure, save_png
from trackreid.analysis.tracks import LabelledTracks
from trackreid.embed.preprocess import l2_normalize
from trackreid.errors import InputError
from trackreid.io.atomic import atomic_path, check_output_dir

OUTPUT_NAMES = ("similarity.npy", "similarity.csv", "similarity_tracks.json", "top_k.csv", "top_k.json",
                "heatmap.png")
ORDERS = ("cluster", "input")


@dataclass
class SimilarityResult:
    tracks: LabelledTracks
    matrix: np.ndarray  # (T, T) cosine similarity
    top_k: list[list[tuple[int, float]]]  # per track: (other index, similarity), most similar first
    k: int
    cross_camera: bool

    @property
    def labels(self) -> list[str]:
        return self.tracks.labels


def cosine_similarity_matrix(features: np.ndarray) -> np.ndarray:
    """(T, T) cosine similarity of L2-normalised rows, exactly symmetric, diagonal 1."""
    f = l2_normalize(np.asarray(features, dtype=np.float32))
    s = f @ f.T
    s = (s + s.T) / 2
    np.fill_diagonal(s, 1.0)
    return np.clip(s, -1.0, 1.0).astype(np.float32)


def most_similar(sim: np.ndarray, k: int, cameras: list[str] | None = None,
                 cross_camera: bool = False) -> list[list[tuple[int, float]]]:
    """For each row, the ``k`` most similar other rows (ties: lower index first).

    ``cross_camera`` keeps only tracks of other cameras (the candidates for step 4).
    """
    if k < 1:
        raise InputError(f"--top-k must be at least 1, got {k}")
    t = len(sim)
    cams = np.asarray(cameras if cameras is not None else [""] * t)
    out = []
    for i in range(t):
        allowed = np.arange(t) != i
        if cross_camera:
            allowed &= cams != cams[i]
        idx = np.flatnonzero(allowed)
        order = idx[np.argsort(-sim[i, idx], kind="stable")][:k]
        out.append([(int(j), float(sim[i, j])) for j in order])
    return out


def cluster_order(sim: np.ndarray) -> np.ndarray:
    """A row order that puts similar tracks next to each other (average linkage, optimal leaves)."""
    t = len(sim)
    if t < 3:
        return np.arange(t)
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import squareform

    dist = np.clip(1.0 - sim.astype(np.float64), 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    condensed = squareform(dist, checks=False)
    z = linkage(condensed, method="average")
    if t <= 1000:  # optimal ordering is O(T^3) in the worst case
        z = optimal_leaf_ordering(z, condensed)
    return np.asarray(leaves_list(z))


def track_similarity(tracks: LabelledTracks, k: int = 5, cross_camera: bool = False) -> SimilarityResult:
    sim = cosine_similarity_matrix(tracks.features)
    cams = tracks.cameras if tracks.multi_camera else None
    if cross_camera and not tracks.multi_camera:
        raise InputError("--cross-camera needs feature files of at least two cameras (--features A --features B)")
    return SimilarityResult(tracks, sim, most_similar(sim, k, cams, cross_camera), k, cross_camera)


def plot_heatmap(sim: np.ndarray, labels: list[str], path: Path, *, order: np.ndarray | None = None,
                 cameras: list[str] | None = None, title: str = "track similarity (cosine)",
                 dpi: int = 100) -> Path:
    """A labelled heatmap; values printed in the cells up to 25 tracks, tick labels thinned above ~100."""
    t = len(sim)
    clustered = order is not None and t >= 3
    order = np.arange(t) if order is None else np.asarray(order)
    s = sim[np.ix_(order, order)]
    lab = [labels[i] for i in order]
    side = float(np.clip(2.5 + 0.32 * t, 5.0, 16.0))
    fig = new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    off = s[~np.eye(t, dtype=bool)]
    vmin = float(np.floor(np.percentile(off, 1) * 20) / 20) if off.size else 0.0
    im = ax.imshow(s, cmap="viridis", vmin=min(vmin, 0.95), vmax=1.0, interpolation="nearest")
    cb = fig.colorbar(im, ax=ax, shrink=0.8)
    cb.set_label("cosine similarity")
    step = max(1, int(np.ceil(t / 60)))  # at most 60 labels per axis
    ticks = np.arange(0, t, step)
    fontsize = float(np.clip(0.45 * side * 72 / len(ticks), 4, 10))
    ax.set_xticks(ticks, [lab[i] for i in ticks], rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, [lab[i] for i in ticks], fontsize=fontsize)
    ax.set_xlabel("track" + (f" (one label in {step} shown)" if step > 1 else ""))
    ax.set_ylabel("track")
    if cameras is not None and len(set(cameras)) > 1:
        names = sorted(set(cameras))
        colors = dict(zip(names, category_colors(len(names)), strict=True))
        cam = [cameras[i] for i in order]
        for axis_labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            for tl, tick in zip(axis_labels, ticks.tolist(), strict=True):
                tl.set_color(colors[cam[tick]])
        handles = [ax.plot([], [], "s", color=colors[n], label=n)[0] for n in names]
        ax.legend(handles=handles, title="camera (label colour)", loc="upper left", bbox_to_anchor=(1.25, 1.0),
                  fontsize=8, title_fontsize=8, frameon=False)
    if t <= 25:
        for r in range(t):
            for c in range(t):
                v = s[r, c]
                text = "1" if v >= 0.995 else f"{v:.2f}".replace("0.", ".", 1)  # ".72": fits small cells
                ax.text(c, r, text, ha="center", va="center", fontsize=float(np.clip(170 / t, 5, 10)),
                        color="black" if v > (vmin + 1) / 2 else "white")
    ax.set_title(title + (", clustered order" if clustered else ""), fontsize=11)
    return save_png(fig, path, dpi)


def _csv_text(rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def write_similarity(result: SimilarityResult, out_dir: Path, *, overwrite: bool = False,
                     order: str = "cluster", heatmap: bool = True, dpi: int = 100) -> list[Path]:
    """Write the files listed in the module docstring into ``out_dir``; nothing half-written."""
    if order not in ORDERS:
        raise InputError(f"--order {order!r}: expected one of {', '.join(ORDERS)}")
    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite, OUTPUT_NAMES if heatmap else OUTPUT_NAMES[:-1])
    tr, sim, labels = result.tracks, result.matrix, result.labels
    written = []
    p = out_dir / "similarity.npy"
    with atomic_path(p) as tmp, open(tmp, "wb") as f:
        np.save(f, sim, allow_pickle=False)
    written.append(p)
    rows: list[list[Any]] = [["track", *labels]]
    rows += [[labels[i], *(f"{v:.6f}" for v in sim[i])] for i in range(len(labels))]
    written.append(_write_text(out_dir / "similarity.csv", _csv_text(rows)))
    index = [{"index": i, "label": lab, "camera": tr.cameras[i], "track_id": int(tr.track_ids[i])}
             for i, lab in enumerate(labels)]
    written.append(_write_text(out_dir / "similarity_tracks.json", json.dumps(index, indent=1) + "\n"))
    multi = tr.multi_camera
    top_rows: list[list[Any]] = [["track", "rank", "match", "similarity"] + (["same_camera"] if multi else [])]
    top_json: dict[str, Any] = {"k": result.k, "cross_camera": result.cross_camera, "tracks": {}}
    for i, matches in enumerate(result.top_k):
        entries = []
        for r, (j, s) in enumerate(matches, 1):
            same = tr.cameras[i] == tr.cameras[j]
            top_rows.append([labels[i], r, labels[j], f"{s:.6f}"] + ([int(same)] if multi else []))
            entries.append({"track": labels[j], "similarity": round(s, 6)} | ({"same_camera": same} if multi else {}))
        top_json["tracks"][labels[i]] = entries
    written.append(_write_text(out_dir / "top_k.csv", _csv_text(top_rows)))
    written.append(_write_text(out_dir / "top_k.json", json.dumps(top_json, indent=1) + "\n"))
    if heatmap:
        perm = cluster_order(sim) if order == "cluster" else None
        written.append(plot_heatmap(sim, labels, out_dir / "heatmap.png", order=perm,
                                    cameras=tr.cameras if multi else None, dpi=dpi))
    return written


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
