"""The ``trackreid`` command: one entry point, one small module per subcommand.

Each subcommand module defines ``NAME``, ``HELP``, ``DESCRIPTION``, ``add_arguments(parser)``
and ``run(args) -> int``; the module parses and reports, the library does the work.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from trackreid import __version__
from trackreid.cli.common import add_common
from trackreid.errors import TrackReidError
from trackreid.runtime import apply_env_defaults

SUBCOMMANDS = (
    "extract",
    "demo",
    "models",
    "evaluate",
    "similarity",
    "visualize",
    "centralize",
    "export_onnx",
    "reduce",
    "prepare_data",
    "train",
    "adapt",
    "associate",
    "evaluate_mtmc",
    "run",
    "index",
    "search",
    "live",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trackreid",
        description="Person re-identification features for tracked video (OSNet). "
        "Start with `trackreid demo`, then `trackreid extract --help`.",
    )
    parser.add_argument("--version", action="version", version=f"trackreid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        mod = importlib.import_module(f"trackreid.cli.{name}")
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add_common(p)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Before anything imports torch: OpenMP reads OMP_WAIT_POLICY when torch loads.
    apply_env_defaults()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s: %(message)s" if args.debug else "%(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args._run(args) or 0)
    except TrackReidError as e:
        if args.debug:
            raise
        message = " ".join(line.strip() for line in str(e).splitlines() if line.strip())  # one line, always
        print(f"trackreid {args.command}: error: {message}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"trackreid {args.command}: interrupted", file=sys.stderr)
        return 130
