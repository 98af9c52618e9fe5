"""2-D maps of track features: t-SNE, UMAP (optional extra) or PCA, drawn as a scatter plot.

One point per track (its representative feature) or, with ``all_crops``, one per crop.
Points are coloured by track, or by identity / camera from a label file (CSV with a ``track``
column and ``identity`` and/or ``camera`` columns), or by camera when several feature files
are given. Crop thumbnails can be drawn at the points (``crops_dirs``: the ``crops/`` folders
that ``trackreid extract --save-crops`` writes, ``track_0001/frame_000005_000.jpg``).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.analysis.plotting import category_colors, new_figure, save_png
from trackreid.analysis.tracks import LabelledTracks
from trackreid.errors import InputError, OutputError

METHODS = ("tsne", "umap", "pca")
COLOR_BY = ("auto", "track", "identity", "camera")
UNLABELLED = "(no label)"
_TRACK_DIR = re.compile(r"^track_?(-?\d+)$")
_FRAME = re.compile(r"frame_?(\d+)")
_THUMB_HEIGHT = 48


def embed_2d(x: np.ndarray, method: str = "tsne", seed: int = 0, perplexity: float | None = None) -> np.ndarray:
    """(N, D) features -> (N, 2) coordinates."""
    if method not in METHODS:
        raise InputError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    if n < 2 or (method != "pca" and n < 3):
        raise InputError(f"{method} needs at least {2 if method == 'pca' else 3} points, got {n}"
                         + ("; use --method pca or --all for crop features" if method != "pca" else ""))
    if method == "pca":
        from sklearn.decomposition import PCA

        with np.errstate(invalid="ignore", divide="ignore"):  # identical points: zero variance
            pts = PCA(n_components=2, random_state=seed).fit_transform(x)
    elif method == "tsne":
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        p = perplexity if perplexity is not None else min(30.0, max(1.0, (n - 1) / 3))
        if not 0 < p < n:
            raise InputError(f"--perplexity {p}: must be between 0 and the number of points ({n})")
        tsne = TSNE(n_components=2, perplexity=p, init="pca", learning_rate="auto", random_state=seed,
                    metric="cosine")
        # Small maps: one OpenMP thread. Several threads only add overhead there, and on a busy
        # machine their spin-waiting made 8 points take 30 s instead of 0.03 s.
        threads = 1 if n <= 2000 else None
        with threadpool_limits(threads, user_api="openmp"):
            pts = tsne.fit_transform(x)
    else:
        try:
            import umap
        except ImportError:
            raise InputError('--method umap needs the optional extra: pip install "trackreid[umap]" '
                             "(or use --method tsne or pca)") from None
        pts = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed, n_jobs=1,
                        metric="cosine").fit_transform(x)
    return np.asarray(pts, dtype=np.float64)


def read_label_file(path: Path, tracks: LabelledTracks) -> dict[str, dict[str, str]]:
    """``{track label: {"identity": ..., "camera": ...}}`` from a CSV with a header row.

    The ``track`` column holds the track id (or ``camera:track`` with several cameras; a plain id
    plus a ``camera`` column works too).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(f"--labels {path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"--labels {path}: not a text file; expected a CSV with the header "
                         "track,identity[,camera]") from None
    rows = list(csv.DictReader(text.splitlines()))
    fields = [f.strip().lower() for f in (rows[0].keys() if rows else [])]
    if "track" not in fields or not ({"identity", "camera"} & set(fields)):
        raise InputError(f"--labels {path}: expected a CSV header with 'track' and 'identity' and/or "
                         f"'camera' columns, found {fields or 'nothing'}")
    known = set(tracks.labels)
    out: dict[str, dict[str, str]] = {}
    for line, row in enumerate(rows, 2):
        r = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        key = r["track"]
        if tracks.multi_camera and ":" not in key and r.get("camera"):
            key = f"{r['camera']}:{key}"
        if key not in known:
            raise InputError(f"--labels {path}, line {line}: track {key!r} is not in the features "
                             f"(tracks look like {tracks.labels[0]!r})")
        out[key] = {k: r[k] for k in ("identity", "camera") if r.get(k)}
    return out


def crop_files(crops_dir: Path) -> dict[int, list[Path]]:
    """``{track id: sorted crop images}`` from an extract ``crops/`` folder (or its parent)."""
    d = Path(crops_dir)
    if (d / "crops").is_dir():
        d = d / "crops"
    if not d.is_dir():
        raise InputError(f"--crops-dir {crops_dir}: no such folder")
    out = {}
    for sub in sorted(d.iterdir()):
        m = _TRACK_DIR.match(sub.name)
        if m and sub.is_dir():
            files = sorted(p for p in sub.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            if files:
                out[int(m.group(1))] = files
    if not out:
        raise InputError(f"--crops-dir {crops_dir}: no track_NNNN/ folders of crops (written by "
                         "`trackreid extract --save-crops`)")
    return out


def _pick_crop(files: list[Path], frame: int | None, position: int) -> Path:
    if frame is not None:
        for f in files:
            m = _FRAME.search(f.stem)
            if m and int(m.group(1)) == frame:
                return f
    return files[min(position, len(files) - 1)]


def _thumbnail(path: Path) -> np.ndarray | None:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return None
    h, w = img.shape[:2]
    scale = _THUMB_HEIGHT / max(h, 1)
    img = cv2.resize(img, (max(1, round(w * scale)), _THUMB_HEIGHT), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img[..., ::-1])


@dataclass
class EmbeddingPlot:
    points: np.ndarray  # (N, 2)
    groups: list[str]  # colour group of each point
    point_track: np.ndarray  # (N,) index of each point's track
    color_by: str
    path: Path


def _groups(tracks: LabelledTracks, labels: dict[str, dict[str, str]] | None, color_by: str) -> tuple[list[str], str]:
    if color_by not in COLOR_BY:
        raise InputError(f"--color-by {color_by!r}: expected one of {', '.join(COLOR_BY)}")
    has = {k for v in (labels or {}).values() for k in v}
    if color_by == "auto":
        color_by = "identity" if "identity" in has else "camera" if ("camera" in has or tracks.multi_camera) \
            else "track"
    if color_by == "identity":
        if "identity" not in has:
            raise InputError("--color-by identity needs --labels FILE with an 'identity' column")
        return [(labels or {}).get(lab, {}).get("identity", UNLABELLED) for lab in tracks.labels], color_by
    if color_by == "camera":
        if "camera" in has:
            return [(labels or {}).get(lab, {}).get("camera", UNLABELLED) for lab in tracks.labels], color_by
        return list(tracks.cameras), color_by
    return list(tracks.labels), color_by


def plot_embedding(points: np.ndarray, groups: list[str], path: Path, *, title: str, legend_title: str,
                   annotate: list[tuple[str, float, float]] | None = None,
                   thumbnails: list[tuple[int, np.ndarray]] | None = None, dpi: int = 100) -> Path:
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    names = sorted(set(groups), key=lambda g: (g == UNLABELLED, _natural(g)))
    colors = dict(zip(names, category_colors(len(names)), strict=True))
    if UNLABELLED in colors:
        colors[UNLABELLED] = (0.6, 0.6, 0.6, 1.0)
    legend = len(names) <= 25
    fig = new_figure(9.5 if legend else 8.0, 7.0)
    ax = fig.add_subplot()
    g = np.asarray(groups)
    size = float(np.clip(4000 / max(len(points), 1), 12, 90))
    for name in names:
        sel = g == name
        ax.scatter(points[sel, 0], points[sel, 1], s=size, color=colors[name], label=name, alpha=0.85,
                   edgecolors="white", linewidths=0.5, zorder=2)
    for i, img in thumbnails or []:
        box = AnnotationBbox(OffsetImage(img, zoom=0.8), (points[i, 0], points[i, 1]), frameon=True, pad=0.1,
                             bboxprops={"edgecolor": colors[groups[i]], "linewidth": 1.5}, zorder=3)
        ax.add_artist(box)
    for text, x, y in annotate or []:
        ax.annotate(text, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7, zorder=4)
    if legend:
        ax.legend(title=legend_title, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title_fontsize=9,
                  frameon=False, ncol=1 if len(names) <= 13 else 2, markerscale=0.8)
    else:
        ax.text(1.01, 1.0, f"{len(names)} {legend_title}s\n(one colour each)", transform=ax.transAxes,
                va="top", fontsize=8)
    ax.set_title(title, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    return save_png(fig, path, dpi)


def _natural(s: str) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))


def visualize_tracks(
    tracks: LabelledTracks,
    output: Path,
    *,
    method: str = "tsne",
    all_crops: bool = False,
    labels: dict[str, dict[str, str]] | None = None,
    color_by: str = "auto",
    crops_dirs: list[Path] | None = None,
    max_thumbnails: int = 60,
    seed: int = 0,
    perplexity: float | None = None,
    overwrite: bool = False,
    dpi: int = 100,
) -> EmbeddingPlot:
    """Embed the tracks (or all their crops) in 2-D and draw them into ``output`` (PNG)."""
    output = Path(output)
    if output.suffix.lower() != ".png":
        raise InputError(f"--output {output}: expected a .png file name")
    if output.exists() and not overwrite:
        raise OutputError(f"{output}: exists; pass --overwrite to replace it or choose another --output")
    if crops_dirs and len(crops_dirs) != len(tracks.sources):
        raise InputError(f"--crops-dir given {len(crops_dirs)} times for {len(tracks.sources)} feature files; "
                         "give one per --features, in the same order")
    track_groups, color_by = _groups(tracks, labels, color_by)
    if all_crops:
        x, owner = tracks.crop_features()
        what = "crops"
    else:
        x, owner = tracks.features, np.arange(len(tracks))
        what = "tracks"
    pts = embed_2d(x, method, seed, perplexity)
    groups = [track_groups[t] for t in owner]
    annotate = None
    if len(tracks) <= 60:  # name the tracks (at their centroid when every crop is a point)
        annotate = [(tracks.labels[t], float(pts[owner == t, 0].mean()), float(pts[owner == t, 1].mean()))
                    for t in range(len(tracks)) if (owner == t).any()]
    thumbs = _thumbnails(tracks, crops_dirs, owner, all_crops, max_thumbnails) if crops_dirs else None
    name = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}[method]
    title = f"{name} of {len(pts)} {what}" + (f" from {len(tracks.sources)} cameras" if tracks.multi_camera else "")
    path = plot_embedding(pts, groups, output, title=title, legend_title=color_by, annotate=annotate,
                          thumbnails=thumbs, dpi=dpi)
    return EmbeddingPlot(pts, groups, owner, color_by, path)


def _thumbnails(tracks: LabelledTracks, crops_dirs: list[Path], owner: np.ndarray, all_crops: bool,
                limit: int) -> list[tuple[int, np.ndarray]]:
    files = [crop_files(d) for d in crops_dirs]
    cam_of_track = np.concatenate([np.full(len(tf), c) for c, tf in enumerate(tracks.sources)])
    first_row = np.concatenate([[0], np.cumsum([len(tf) for tf in tracks.sources])])
    n = len(owner)
    chosen: list[int] = (np.unique(np.linspace(0, n - 1, num=min(limit, n)).round().astype(int)).tolist()
                         if limit > 0 else [])
    out = []
    for i in chosen:
        t = int(owner[i])
        cam = int(cam_of_track[t])
        tf = tracks.sources[cam]
        local = t - int(first_row[cam])
        track_files = files[cam].get(int(tf.track_ids[local]))
        if not track_files:
            continue
        if all_crops:
            pos = int(i - np.flatnonzero(owner == t)[0])
            frames = tf.frames_of(local)
            path = _pick_crop(track_files, int(frames[pos]) if pos < len(frames) else None, pos)
        else:
            path = track_files[len(track_files) // 2]
        img = _thumbnail(path)
        if img is not None:
            out.append((int(i), img))
    return out
