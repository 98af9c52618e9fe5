"""``trackreid search``: every camera and time where a person appears, from an index."""

from __future__ import annotations

import argparse
import json
from typing import Any

NAME = "search"
HELP = "find a person (images, an indexed track or a global identity) in a search index"
DESCRIPTION = """\
Rank the indexed tracks by similarity to a query, grouped by global identity when the index
knows them (built with --run):

  trackreid search --index runs/index --image q.jpg [--image q2.jpg ...]
  trackreid search --index runs/index --track camA:12 --camera camB --after 30 --before 90
  trackreid search --index runs/index --identity 17 --top-k 50 --json
  trackreid search --index runs/index --image q.jpg --html results.html

Query images are embedded with the index's own model and preprocessing (several images of
one person are pooled: the mean of their features); --reid-model names the same weights if
they moved. --camera (repeatable), --after and --before (seconds on the site clock; a track
counts when it overlaps the window) filter before ranking. --html writes a self-contained
page: the query, then each identity as a timeline across cameras with crop thumbnails.
"""


def _track(text: str) -> tuple[str, int]:
    from trackreid.associate.tracks import split_key

    key = split_key(text)
    if key is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected CAMERA:TRACK_ID such as camA:12")
    return key


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", required=True, metavar="DIR", help="the index folder (`trackreid index build`)")
    q = p.add_argument_group("query (exactly one kind)")
    q.add_argument("--image", action="append", default=[], metavar="FILE",
                   help="a photo or crop of the person; repeat to pool several")
    q.add_argument("--track", type=_track, metavar="CAMERA:ID", help="an indexed track")
    q.add_argument("--identity", type=int, metavar="N", help="a global identity of the index (its tracks pooled)")
    f = p.add_argument_group("filters")
    f.add_argument("--camera", action="append", default=[], metavar="NAME", help="only these cameras (repeatable)")
    f.add_argument("--after", type=float, metavar="SECONDS", help="only tracks that end at or after this time")
    f.add_argument("--before", type=float, metavar="SECONDS", help="only tracks that start at or before this time")
    p.add_argument("--top-k", type=int, default=20, help="tracks to return (default 20)")
    p.add_argument("--reid-model", help="the index's weights, if they are no longer where the index says")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained results page")


def _print(result: Any) -> None:
    q = result.query
    what = {"images": lambda: f"{len(q['images'])} image(s): {', '.join(q['images'])}",
            "track": lambda: f"track {q['track']['camera']}:{q['track']['track_id']}",
            "identity": lambda: f"identity {q['identity']} ({q['tracks']} tracks)"}[q["kind"]]()
    print(f"query: {what}; {len(result.hits)} tracks")
    for g in result.groups():
        name = f"identity {g['identity']}" if g["identity"] is not None else "no identity"
        print(f"{name}: best {g['best_similarity']:.3f}, cameras {', '.join(g['cameras'])}")
        for t in g["tracks"]:
            crop = t["crops"][0] if t["crops"] else "-"
            print(f"  {t['camera']}:{t['track_id']}  {t['start_s']:.2f}-{t['end_s']:.2f} s  frames "
                  f"{t['first_frame']}-{t['last_frame']}  similarity {t['similarity']:.3f}  {crop}")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trackreid.search.html import write_html
    from trackreid.search.index import Index

    index = Index.open(args.index)
    try:
        result = index.search(images=args.image, track=args.track, identity=args.identity, cameras=args.camera,
                              after=args.after, before=args.before, top_k=args.top_k, reid_model=args.reid_model)
    finally:
        index.close()
    if args.html:
        write_html(result, Path(args.html))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        _print(result)
        if args.html:
            print(f"wrote {args.html}")
    return 0
