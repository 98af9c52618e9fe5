"""``trackreid evaluate-mtmc``: multi-camera IDF1 / IDP / IDR of an association (py-motmetrics)."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "evaluate-mtmc"
HELP = "score a cross-camera association: multi-camera IDF1 / IDP / IDR (AI City protocol)"
DESCRIPTION = """\
Multi-camera IDF1, IDP and IDR of global ids against ground truth, with py-motmetrics: all
cameras are concatenated by offsetting frame numbers, boxes match at IoU >= 0.5, and ONE
identity matching spans all cameras (a person split into two ids across cameras is half right).

  trackreid evaluate-mtmc --gt runs/site --pred runs/step4
  trackreid evaluate-mtmc --gt ground_truth_test.txt --pred runs/step4/mtmc.txt --json
  trackreid evaluate-mtmc --gt cam1=site/cam1/gt.txt --gt cam2=site/cam2/gt.txt --pred runs/step4

--gt: a folder of per-camera MOT ground truth whose ids are GLOBAL person ids (<camera>.txt,
      <camera>/gt.txt or <camera>/gt/gt.txt), NAME=FILE once per camera, or an AI City file
      (camera_id obj_id frame x y w h xworld yworld).
--pred: what `trackreid associate` wrote (its global_tracks/ folder, else its mtmc.txt), a
      folder of per-camera MOT files, NAME=FILE once per camera, or an AI City file.
Cameras match by name, or by number (c041 = 41 = cam41). Needs the `mtmc` extra
(pip install 'trackreid[mtmc]').
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt", action="append", required=True, metavar="PATH|NAME=FILE",
                   help="ground truth with global ids: folder, AI City file, or NAME=FILE per camera")
    p.add_argument("--pred", action="append", required=True, metavar="PATH|NAME=FILE",
                   help="associate output folder, AI City file, folder of MOT files, or NAME=FILE per camera")
    p.add_argument("--min-iou", type=float, default=0.5, help="IoU for a box to match (default 0.5)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of a table")


def _source(values: list[str], flag: str):  # type: ignore[no-untyped-def]
    from trackreid.errors import InputError

    named = [v for v in values if "=" in v]
    if len(values) == 1 and not named:
        return values[0]
    if len(named) != len(values):
        raise InputError(f"{flag}: give one PATH, or NAME=FILE once per camera (got {', '.join(values)})")
    out: dict[str, str] = {}
    for v in named:
        name, path = v.split("=", 1)
        if not name or name in out:
            raise InputError(f"{flag} {v}: " + ("empty camera name" if not name else f"camera {name!r} given twice"))
        out[name] = path
    return out


def run(args: argparse.Namespace) -> int:
    from trackreid.associate.mtmc import evaluate_mtmc

    result = evaluate_mtmc(_source(args.gt, "--gt"), _source(args.pred, "--pred"), min_iou=args.min_iou)
    if args.json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"multi-camera identity metrics, {len(result['cameras'])} cameras, IoU >= {args.min_iou}")
    for col in ("IDF1", "IDP", "IDR", "IDTP", "IDFP", "IDFN", "gt ids", "pred ids"):
        table.add_column(col, justify="right")
    table.add_row(f"{100 * result['idf1']:.2f}", f"{100 * result['idp']:.2f}", f"{100 * result['idr']:.2f}",
                  str(result["idtp"]), str(result["idfp"]), str(result["idfn"]),
                  str(result["num_gt_ids"]), str(result["num_pred_ids"]))
    console = Console()
    console.print(table)
    console.print(f"gt: {result['gt']}\npred: {result['pred']}\ncameras: {', '.join(result['cameras'])}")
    if result["cameras_without_prediction"]:
        console.print("no prediction for: " + ", ".join(result["cameras_without_prediction"])
                      + " (their boxes count as missed)")
    return 0
