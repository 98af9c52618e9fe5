"""``trackreid similarity``: track x track cosine similarity, top-k lists and a heatmap."""

from __future__ import annotations

import argparse

NAME = "similarity"
HELP = "track x track similarity matrix, most similar tracks, and a heatmap"
DESCRIPTION = """\
Cosine similarity between the tracks of one or more feature files (what `trackreid extract`
writes). Several files are several cameras: tracks are then labelled camera:track, and the
camera is named after the file's folder, or NAME in --features NAME=PATH.

  trackreid similarity --features runs/step3/track_features.pkl --output-dir runs/similarity
  trackreid similarity --features cam1=runs/cam1 --features cam2=runs/cam2 \\
      --output-dir runs/sim12 --top-k 3 --cross-camera

Writes similarity.npy + similarity.csv (+ similarity_tracks.json: the row order), top_k.csv +
top_k.json, and heatmap.png (rows ordered by hierarchical clustering, --order input to keep
the file order).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", action="append", required=True, metavar="[NAME=]PATH",
                   help="track_features.npz/.pkl or an extract output folder; repeat once per camera")
    p.add_argument("--output-dir", required=True, help="folder for the outputs")
    p.add_argument("--top-k", type=int, default=5, help="most similar tracks listed per track (default 5)")
    p.add_argument("--cross-camera", action="store_true", help="top-k lists only tracks of other cameras")
    p.add_argument("--order", default="cluster", choices=("cluster", "input"), help="heatmap row order")
    p.add_argument("--no-heatmap", action="store_true", help="skip the PNG")
    p.add_argument("--dpi", type=int, default=100, help="heatmap resolution (default 100)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from trackreid.analysis.similarity import track_similarity, write_similarity
    from trackreid.analysis.tracks import load_tracks

    tracks = load_tracks(args.features)
    result = track_similarity(tracks, args.top_k, args.cross_camera)
    written = write_similarity(result, args.output_dir, overwrite=args.overwrite, order=args.order,
                               heatmap=not args.no_heatmap, dpi=args.dpi)
    print(f"{len(tracks)} tracks" + (f" from {len(tracks.sources)} cameras" if tracks.multi_camera else ""))
    off = result.matrix[~np.eye(len(tracks), dtype=bool)]
    if off.size:
        print(f"similarity between different tracks: min {off.min():.3f}, "
              f"median {float(np.median(off)):.3f}, max {off.max():.3f}")
    for i, matches in enumerate(result.top_k[:5]):
        print(f"  {result.labels[i]:>10} -> " + ", ".join(f"{result.labels[j]} ({s:.3f})" for j, s in matches))
    if len(tracks) > 5:
        print(f"  ... ({len(tracks) - 5} more in top_k.csv)")
    for p in written:
        print(f"wrote {p}")
    return 0
