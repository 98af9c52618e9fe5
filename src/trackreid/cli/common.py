"""Options every subcommand (and every nested action) accepts."""

from __future__ import annotations

import argparse
from typing import Any


def add_common(p: argparse.ArgumentParser, nested: bool = False) -> None:
    """``--quiet`` and ``--debug``; ``nested`` parsers leave unset values to their parent."""
    kw: dict[str, Any] = {"default": argparse.SUPPRESS} if nested else {}
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars or info messages", **kw)
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors", **kw)
