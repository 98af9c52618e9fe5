"""``trackreid index build|add|info``: the search index of a site's tracks (FAISS vectors + SQLite metadata)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from trackreid.cli.associate import add_camera_arguments, cameras_from_args
from trackreid.cli.common import add_common

NAME = "index"
HELP = "build, extend or inspect the search index of tracked people (then `trackreid search`)"
DESCRIPTION = """\
Index every track of a site for `trackreid search`: one feature per track in FAISS, its
camera, time span, crops and global identity in SQLite.

  trackreid index build --features runs/camA --camera camA --features runs/camB --camera camB \\
      --output runs/index
  trackreid index build --run runs/site --output runs/index      # a `trackreid run` folder:
                                                                  # every camera + global ids
  trackreid index add --index runs/index --features runs/camC --camera camC
  trackreid index info --index runs/index

--features/--camera/--cameras take cameras as `trackreid associate` does. Features of another
model (weights sha256) or another preprocessing are refused. --kind auto (default) keeps the
exact flat index below 200,000 tracks and builds IVF-PQ above (compressed, approximate; its
candidates re-ranked with 8-bit vectors): docs/search.md. Every write makes a new version
and switches to it at once: an interrupted build or add leaves the previous index as it was.
"""


def _source_args(p: argparse.ArgumentParser) -> None:
    add_camera_arguments(p)
    p.add_argument("--run", metavar="DIR", help="a `trackreid run` output folder: every camera and its global ids")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="a new index from extract outputs or a run folder")
    add_common(b, nested=True)
    _source_args(b)
    b.add_argument("--output", required=True, metavar="DIR", help="the index folder to write")
    b.add_argument("--kind", default="auto", choices=("auto", "flat", "ivfpq", "hnsw"),
                   help="vector index: auto (flat below 200k tracks, else ivfpq), flat (exact), ivfpq, hnsw")
    b.add_argument("--overwrite", action="store_true", help="replace an existing index at --output")
    b.add_argument("--json", action="store_true", help="print what was written as JSON")
    a = sub.add_parser("add", help="add cameras or segments to an index (tracks already in it are skipped)")
    add_common(a, nested=True)
    _source_args(a)
    a.add_argument("--index", required=True, metavar="DIR", help="the index folder")
    a.add_argument("--json", action="store_true", help="print what was written as JSON")
    i = sub.add_parser("info", help="what an index holds")
    add_common(i, nested=True)
    i.add_argument("--index", required=True, metavar="DIR", help="the index folder")
    i.add_argument("--json", action="store_true", help="print one JSON object")


def _source(args: argparse.Namespace) -> Any:
    from trackreid.errors import InputError
    from trackreid.search.sources import read_run

    if args.run:
        if args.inputs or args.cameras:
            raise InputError("give either --run DIR or --features/--cameras, not both")
        return read_run(args.run)
    return cameras_from_args(args)[0]


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    print(f"{report.path}: {report.added} tracks added from {', '.join(report.cameras)}"
          + (f" ({report.skipped} already indexed, skipped)" if report.skipped else "")
          + f"; {report.total} tracks in all, {report.kind} vectors, version {report.version}")


def run(args: argparse.Namespace) -> int:
    from trackreid.search.index import Index

    if args.action == "build":
        _print_report(Index.build(_source(args), args.output, kind=args.kind, overwrite=args.overwrite), args.json)
    elif args.action == "add":
        index = Index.open(args.index)
        try:
            _print_report(index.add(_source(args)), args.json)
        finally:
            index.close()
    else:
        index = Index.open(args.index)
        try:
            info = index.info()
        finally:
            index.close()
        if args.json:
            print(json.dumps(info, indent=2))
            return 0
        v = info["vectors"]
        size = info["size_bytes"] / 1e6
        print(f"{info['path']} (version {info['version']}, {size:.2f} MB): {info['tracks']} tracks, "
              f"{info['identities']} global identities, {v['kind']} vectors ({v['factory']}, {v['dim']} dims)")
        print(f"model: {info['model']['name']} sha256 {str(info['model']['sha256'])[:12]}... ({info['model']['path']})")
        pre = info["preprocess"] or {}
        print(f"preprocessing: {pre.get('height')}x{pre.get('width')} {pre.get('channel_order')} "
              f"{pre.get('interpolation')}, mean {pre.get('mean')}, std {pre.get('std')}")
        for c in info["cameras"]:
            span = f"{c['start_s']:.2f}-{c['end_s']:.2f} s" if c["tracks"] else "no tracks"
            print(f"  {c['name']}: {c['tracks']} tracks, {span}, fps {c['fps']}, offset {c['time_offset']:g} s")
    return 0
