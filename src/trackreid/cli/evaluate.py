"""``trackreid evaluate``: mAP / CMC / mINP of a ReID model on a query and a gallery set."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "evaluate"
HELP = "measure a ReID model (mAP, rank-1/5/10, mINP) on a query and a gallery set"
DESCRIPTION = """\
Embed a query and a gallery set with any weights (.pth, .safetensors, .onnx, zoo name) and
report the Market-1501 protocol metrics: gallery images with the query's identity AND camera
are ignored, queries without a valid match are skipped and counted.

  trackreid evaluate --reid-model ../shared/data/weights/osnet_x0_25_msmt17.pth \\
      --dataset ../shared/data/cuhk03/val --format cuhk03 --rerank

  trackreid evaluate --reid-model model.onnx --dataset Market-1501-v15.09.15 --json
  trackreid evaluate --reid-model w.pth --query data/query --gallery data/gallery \\
      --format fastreid --camera-from split

Name formats (--format, default auto):
  market    0001_c1s1_001051_00.jpg  (identity, camera; -1 junk ignored, 0000 distractors)
  fastreid  <pid>/<name>.jpg folders; camera from the name (c3 / cam3), --camera-from REGEX
            (one group), or --camera-from split (query and gallery are different cameras)
  cuhk03    PPPP_NN.jpg, slots 00-04 camera A, 05-09 camera B; a --dataset folder of such
            crops is split into query = camera A, gallery = camera B
--dataset DIR takes query/ + gallery/ (FastReID) or query/ + bounding_box_test/ (Market).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reid-model", required=True, help="weights file or zoo name")
    src = p.add_argument_group("data (either --dataset, or --query and --gallery)")
    src.add_argument("--dataset", help="a dataset root (query/ + gallery/ or bounding_box_test/)")
    src.add_argument("--query", help="folder of query images")
    src.add_argument("--gallery", help="folder of gallery images")
    src.add_argument("--format", default="auto", choices=("auto", "market", "fastreid", "cuhk03"),
                     help="file name format (default: auto = market names or <pid>/ folders)")
    src.add_argument("--camera-from", default="name", metavar="name|split|REGEX",
                     help="fastreid format: where the camera id comes from (default: name)")
    post = p.add_argument_group("post-processing")
    post.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (Zhong et al. 2017)")
    post.add_argument("--k1", type=int, default=20, help="re-ranking k1 (default 20)")
    post.add_argument("--k2", type=int, default=6, help="re-ranking k2 (default 6)")
    post.add_argument("--lambda", dest="lambda_value", type=float, default=0.3,
                      help="re-ranking weight of the original distance (default 0.3)")
    post.add_argument("--centralize", default="none", choices=("none", "nfc"),
                      help="nfc: neighbour feature centralization (Pose2ID) on query and gallery separately")
    run_ = p.add_argument_group("inference")
    run_.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default auto)")
    run_.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"))
    run_.add_argument("--arch", help="force an architecture instead of inferring it from the weights")
    run_.add_argument("--half", action="store_true", help="fp16 on CUDA")
    run_.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of a table")


def run(args: argparse.Namespace) -> int:
    from trackreid.cli.progress import make_progress
    from trackreid.datasets import dataset_query_gallery, read_query_gallery
    from trackreid.errors import InputError
    from trackreid.evaluate import evaluate_model
    from trackreid.rerank import RerankParams

    if args.dataset and (args.query or args.gallery):
        raise InputError("give either --dataset DIR or --query DIR --gallery DIR, not both")
    if args.dataset:
        query, gallery = dataset_query_gallery(args.dataset, args.format, args.camera_from)
    elif args.query and args.gallery:
        query, gallery = read_query_gallery(args.query, args.gallery, args.format, args.camera_from)
    else:
        raise InputError("no data: pass --dataset DIR, or both --query DIR and --gallery DIR")
    rerank = RerankParams(args.k1, args.k2, args.lambda_value) if args.rerank else None
    report = evaluate_model(args.reid_model, query, gallery, device=args.device, backend=args.backend,
                            arch=args.arch, half=args.half, batch_size=args.batch_size, rerank=rerank,
                            centralize=args.centralize, progress=make_progress(args.quiet or args.json))
    if args.json:
        json.dump(report.to_dict(), sys.stdout)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    m = report.metrics
    post = [s for s in ("NFC" if report.centralize else "",
                        f"re-ranking k1={rerank.k1} k2={rerank.k2} lambda={rerank.lambda_value}" if rerank else "")
            if s]
    table = Table(title=Path(args.reid_model).name + (f" + {' + '.join(post)}" if post else ""))
    for col in ("mAP", "rank-1", "rank-5", "rank-10", "mINP", "query", "gallery"):
        table.add_column(col, justify="right")
    table.add_row(f"{m.mAP:.1f}", f"{m.rank1:.1f}", f"{m.rank5:.1f}", f"{m.rank10:.1f}", f"{m.mINP:.1f}",
                  str(m.num_query), str(m.num_gallery))
    console = Console()
    console.print(table)
    notes = []
    if m.num_skipped_query:
        notes.append(f"{m.num_skipped_query} queries had no valid match in the gallery and were skipped")
    if report.num_gallery_junk:
        notes.append(f"{report.num_gallery_junk} junk gallery images (-1) ignored")
    for n in notes:
        console.print(n)
    return 0
