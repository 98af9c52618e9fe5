"""``trackreid models``: list the zoo, download a file explicitly, inspect a checkpoint."""

from __future__ import annotations

import argparse
import json

from rich import box
from rich.console import Console
from rich.table import Table

from trackreid.cli.common import add_common

NAME = "models"
HELP = "list known pretrained models, download one, or inspect a weights file"
DESCRIPTION = """\
Pretrained OSNet weights by name.

  trackreid models list                      # the zoo: names, training set, reported accuracy
  trackreid models download osnet_x0_25_msmt17 [--url URL]
  trackreid models info path/to/weights.pth  # inferred architecture, format, sha256

Downloads come from the publisher's address (torchreid's model zoo on Google Drive, which
needs gdown: pip install 'trackreid[zoo]'), go to $TRACKREID_HOME (default
~/.cache/trackreid) and are verified by sha256 where the zoo knows one. Set TRACKREID_MIRROR
to a folder URL that holds the zoo files to download from your own server. Nothing is
downloaded unless you ask.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_common(sub.add_parser("list", help="show the known pretrained models"), nested=True)
    d = sub.add_parser("download", help="fetch a zoo file into the cache (verified)")
    add_common(d, nested=True)
    d.add_argument("name", help="zoo name, zoo file name or boxmot alias")
    d.add_argument("--url", help="fetch from this address instead of the zoo's")
    i = sub.add_parser("info", help="inspect a weights file")
    add_common(i, nested=True)
    i.add_argument("path", help="a .pth/.pt/.safetensors file or a zoo name")
    i.add_argument("--arch", help="check against this architecture instead of inferring it")


def run(args: argparse.Namespace) -> int:
    console = Console()
    if args.action == "list":
        from trackreid.models.registry import ZOO
        from trackreid.models.zoo import cached_path, is_drive_url

        # The name is what the user types: never truncated or wrapped; the other columns fold.
        # (The architecture is the name's prefix; `trackreid models info NAME` shows it all.)
        table = Table(title="Pretrained OSNet models (torchreid model zoo)", box=box.SIMPLE_HEAD)
        table.add_column("name", no_wrap=True, min_width=max(len(e.name) for e in ZOO.values()))
        for col in ("trained on", "rank-1 (mAP)", "download", "sha256", "cached"):
            table.add_column(col, overflow="fold")
        for e in ZOO.values():
            where = ("Drive" if is_drive_url(e.url) else "url") if e.url else "none known"
            score = f"{e.rank1:.1f} ({e.mAP:.1f})" if e.rank1 and e.mAP else "-"
            table.add_row(e.name, e.dataset, score, where, "known" if e.sha256 else "unknown",
                          "yes" if cached_path(e).is_file() else "no")
        console.print(table)
        console.print("Reported numbers are same-domain, from torchreid. `trackreid models download NAME` "
                      "fetches one (Google Drive needs gdown: pip install 'trackreid[zoo]').", markup=False)
        return 0
    if args.action == "download":
        from trackreid.cli.progress import make_progress
        from trackreid.models.zoo import download, require_entry

        entry = require_entry(args.name)
        prog = make_progress(args.quiet)
        state = {"last": 0}

        def report(done: int, total: int | None) -> None:
            if state["last"] == 0:
                prog.start(f"download {entry.file_name}", total, "bytes")
            prog.advance(done - state["last"])
            state["last"] = done

        path = download(entry, args.url, report)
        prog.finish()
        print(f"saved {path}" + (" (sha256 verified)" if entry.sha256 else
                                 " (not verified: no sha256 of this file is known)"))
        return 0
    from trackreid.models.weights import load_model
    from trackreid.models.zoo import resolve_weights

    loaded = load_model(resolve_weights(args.path), arch=args.arch)
    info = loaded.describe()
    info["denormal_weights_zeroed"] = loaded.denormals_zeroed
    info["parameters"] = sum(p.numel() for p in loaded.model.parameters())
    print(json.dumps(info, indent=2))
    return 0
