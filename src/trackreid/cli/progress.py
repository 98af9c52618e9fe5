"""A rich progress bar that implements :class:`trackreid.progress.Progress`.

Quiet (a :class:`NullProgress`) when ``--quiet`` is given or stderr is not a terminal.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgressBar

from trackreid.progress import NullProgress, Progress


class RichProgress:
    def __init__(self, console: Console) -> None:
        self._bar: RichProgressBar | None = None
        self._task: Any = None
        self._console = console

    def start(self, description: str, total: int | None, unit: str = "items") -> None:
        self.finish()
        self._bar = RichProgressBar(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn(unit), TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=self._console, transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(description, total=total, info="")

    def advance(self, n: int = 1, **info: Any) -> None:
        if self._bar is not None:
            text = "  ".join(f"{k}={v}" for k, v in info.items())
            self._bar.update(self._task, advance=n, info=text)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def make_progress(quiet: bool) -> Progress:
    if quiet or not sys.stderr.isatty():
        return NullProgress()
    return RichProgress(Console(stderr=True))
