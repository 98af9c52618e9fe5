"""Progress reporting for long library calls, without printing from the library.

Library functions take an optional :class:`Progress`; the CLI passes a rich progress bar
(:mod:`trackreid.cli.progress`), tests and quiet runs pass nothing (:class:`NullProgress`).
"""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    def start(self, description: str, total: int | None, unit: str = "items") -> None: ...

    def advance(self, n: int = 1, **info: Any) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    def start(self, description: str, total: int | None, unit: str = "items") -> None:
        pass

    def advance(self, n: int = 1, **info: Any) -> None:
        pass

    def finish(self) -> None:
        pass
