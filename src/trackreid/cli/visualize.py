"""``trackreid visualize``: a 2-D map (t-SNE, UMAP, PCA) of track or crop features."""

from __future__ import annotations

import argparse

NAME = "visualize"
HELP = "2-D map of track features (t-SNE, UMAP or PCA) as a PNG"
DESCRIPTION = """\
Draw the tracks of one or more feature files as points in 2-D: tracks of the same person
should land together. Colour by track, or by identity / camera from a label file.

  trackreid visualize --features runs/step3/track_features.pkl --method tsne --output tsne.png
  trackreid visualize --features runs/step3 --all --crops-dir runs/step3/crops --output crops.png
  trackreid visualize --features cam1=runs/cam1 --features cam2=runs/cam2 \\
      --labels identities.csv --color-by identity --method pca --output pca.png

--labels: a CSV with a header row, a `track` column (track id, or camera:track with several
cameras) and `identity` and/or `camera` columns. --method umap needs
`pip install "trackreid[umap]"`.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", action="append", required=True, metavar="[NAME=]PATH",
                   help="track_features.npz/.pkl or an extract output folder; repeat once per camera")
    p.add_argument("--output", required=True, help="PNG file to write")
    p.add_argument("--method", default="tsne", choices=("tsne", "umap", "pca"), help="default tsne")
    p.add_argument("--all", dest="all_crops", action="store_true", help="one point per crop instead of per track")
    p.add_argument("--labels", help="CSV: track,identity[,camera] to colour by")
    p.add_argument("--color-by", default="auto", choices=("auto", "track", "identity", "camera"),
                   help="default: identity if --labels has it, camera with several files, else track")
    p.add_argument("--crops-dir", action="append", metavar="DIR",
                   help="crops/ folder of an extract run, to draw thumbnails (once per --features)")
    p.add_argument("--max-thumbnails", type=int, default=60, help="at most this many thumbnails (default 60)")
    p.add_argument("--perplexity", type=float, help="t-SNE perplexity (default min(30, (N-1)/3))")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--dpi", type=int, default=100, help="resolution (default 100)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")


def run(args: argparse.Namespace) -> int:
    from trackreid.analysis.tracks import load_tracks
    from trackreid.analysis.visualize import read_label_file, visualize_tracks

    tracks = load_tracks(args.features)
    labels = read_label_file(args.labels, tracks) if args.labels else None
    res = visualize_tracks(tracks, args.output, method=args.method, all_crops=args.all_crops, labels=labels,
                           color_by=args.color_by, crops_dirs=args.crops_dir, max_thumbnails=args.max_thumbnails,
                           seed=args.seed, perplexity=args.perplexity, overwrite=args.overwrite, dpi=args.dpi)
    print(f"{len(res.points)} points ({'crops' if args.all_crops else 'tracks'}), coloured by {res.color_by}: "
          f"wrote {res.path}")
    return 0
