"""``trackreid reduce``: PCA of track features (e.g. 512 -> 128), fitted or loaded."""

from __future__ import annotations

import argparse

NAME = "reduce"
HELP = "reduce feature dimension with PCA (fit one, or apply a saved one)"
DESCRIPTION = """\
Project track features onto fewer dimensions with PCA, re-normalised, same structure.

  trackreid reduce --features runs/cam1/track_features.pkl --dim 128 \\
      --output runs/cam1/reduced_features.pkl [--fit-on other_features.pkl] [--whiten]
  trackreid reduce --features runs/cam2/track_features.pkl \\
      --pca-model runs/cam1/reduced_features.pca.npz --output runs/cam2/reduced_features.pkl

Writes <stem>.pkl (the seed's structure) and <stem>.npz (safe format) next to --output and,
when it fits a PCA, <stem>.pca.npz (no pickle), which --pca-model applies to other files.
A PCA fitted on features of another dimension or another model is refused.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", required=True, help="track_features.pkl/.npz or an extract output folder")
    p.add_argument("--dim", type=int, help="number of dimensions to keep (e.g. 128)")
    p.add_argument("--output", required=True, help="reduced_features.pkl (the .npz is written beside it)")
    p.add_argument("--fit-on", metavar="FEATURES", help="fit the PCA on these features instead (same model)")
    p.add_argument("--pca-model", metavar="FILE.npz", help="apply this saved PCA instead of fitting one")
    p.add_argument("--save-pca", metavar="FILE.npz", help="where to save a fitted PCA (default <stem>.pca.npz)")
    p.add_argument("--whiten", action="store_true", help="scale components to unit variance before normalising")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def run(args: argparse.Namespace) -> int:
    from trackreid.reduce import reduce_file

    r = reduce_file(args.features, args.output, dim=args.dim, fit_on=args.fit_on, pca_model=args.pca_model,
                    whiten=args.whiten, save_pca_to=args.save_pca, overwrite=args.overwrite)
    pca = r.pca
    how = f"fitted on {pca.meta.get('n_samples')} rows of {pca.meta.get('fitted_on')}" if r.pca_path else \
        f"loaded from {args.pca_model}"
    print(f"PCA {pca.source_dim} -> {pca.dim} ({how}{', whitened' if pca.whiten else ''}): "
          f"keeps {100 * pca.variance_kept:.1f}% of the variance")
    if not args.quiet:
        ratios = pca.explained_variance_ratio
        head = ", ".join(f"{100 * v:.1f}" for v in ratios[:5])
        print(f"explained variance per component (%): {head}, ... ; first 32: {100 * ratios[:32].sum():.1f}%")
    print(f"reduced {len(r.features)} tracks, {len(r.features.all_features)} crop features")
    for path in r.written + ([r.pca_path] if r.pca_path else []):
        print(f"wrote {path}")
    return 0
