"""``trackreid prepare-data``: per-camera crops folders -> train/ query/ gallery/ (the seed's layout)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "prepare-data"
HELP = "turn crops folders (one per camera) into a training set: train/, query/, gallery/"
DESCRIPTION = """\
Build a re-ID training set from the crops that `trackreid extract --save-crops` writes.

  trackreid prepare-data --crops-dir runs/step3_reid_features/crops --output-dir dataset/my_dataset
  trackreid prepare-data --crops-dir runs/cam1/crops --camera cam1 \\
                         --crops-dir runs/cam2/crops --camera cam2 \\
                         --identity-map ids.csv --output-dir dataset/my_dataset
  trackreid prepare-data --manifest cameras.yml --output-dir dataset/my_dataset

Without --identity-map (CSV `camera,track,person`) every track is its own identity.
Identities are split into train and test by --test-ratio with a seeded shuffle; a test
identity seen by several cameras gets query and gallery from different cameras, one seen by
a single camera is split in time (earlier half query, later half gallery). File names record
camera and segment Market-style (0001_c2s1_000123_00.jpg). Crops are hard-linked (or copied
with --copy), never moved. A summary table shows what went where (also prepare_summary.json).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--crops-dir", action="append", default=[], metavar="DIR",
                   help="a crops folder with one sub-folder per track (repeat, one per camera)")
    p.add_argument("--camera", action="append", default=[], metavar="NAME",
                   help="name of the camera of the preceding --crops-dir (repeat in the same order)")
    p.add_argument("--manifest", metavar="FILE", help="YAML/JSON: cameras: [{name, crops_dir}], identity_map: FILE")
    p.add_argument("--identity-map", metavar="CSV",
                   help="CSV camera,track,person; unmapped tracks stay their own identity")
    p.add_argument("--output-dir", required=True, help="dataset folder to create, e.g. dataset/my_dataset")
    p.add_argument("--test-ratio", type=float, default=0.2, help="share of identities for query/gallery (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the identity split (default 0)")
    p.add_argument("--min-images", type=int, default=4, help="leave out identities with fewer crops (default 4)")
    p.add_argument("--copy", action="store_true", help="copy the crops instead of hard-linking them")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output-dir")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from trackreid.errors import InputError
    from trackreid.prepare_data import prepare_dataset, read_identity_map, read_manifest, sources_from_args

    idmap_path = Path(args.identity_map) if args.identity_map else None
    if args.manifest:
        if args.crops_dir:
            raise InputError("give either --manifest or --crops-dir, not both")
        sources, manifest_map = read_manifest(Path(args.manifest))
        idmap_path = idmap_path or manifest_map
    else:
        if not args.crops_dir:
            raise InputError("name the crops: --crops-dir DIR (repeat with --camera NAME per camera) "
                             "or --manifest FILE")
        sources = sources_from_args(args.crops_dir, args.camera)
    idmap = read_identity_map(idmap_path, [s.name for s in sources]) if idmap_path else None
    summary = prepare_dataset(sources, Path(args.output_dir), identity_map=idmap, test_ratio=args.test_ratio,
                              seed=args.seed, min_images=args.min_images,
                              mode="copy" if args.copy else "hardlink", overwrite=args.overwrite)
    console = Console()
    table = Table(title=f"{summary.output_dir} ({summary.link_mode})")
    table.add_column("split")
    table.add_column("identities", justify="right")
    table.add_column("images", justify="right")
    for cam in summary.cameras:
        table.add_column(cam, justify="right")
    for name, sc in summary.splits.items():
        per_cam = [str(sc.per_camera.get(c, 0)) for c in summary.cameras]
        table.add_row(name, str(sc.identities), str(sc.images), *per_cam)
    console.print(table)
    console.print(
        f"{summary.identities_total} identities found; {summary.dropped_identities} left out with fewer than "
        f"{summary.min_images} crops ({summary.dropped_images} image{'' if summary.dropped_images == 1 else 's'}). "
        f"Test identities: "
        f"{summary.query_by_camera} with query and gallery from different cameras, {summary.query_by_time} "
        f"split in time within one camera. Details: {Path(summary.output_dir) / 'prepare_summary.json'}"
    )
    return 0
