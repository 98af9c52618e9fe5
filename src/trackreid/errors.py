"""The one error family of trackreid.

Every error a user can cause (a bad file, a wrong flag, a missing model) is a
:class:`TrackReidError`. Its message names the file (and line or row), what was expected,
what was found and the fix. The CLI prints it on one line and exits non-zero.
"""

from __future__ import annotations


class TrackReidError(Exception):
    """Base class of every error trackreid raises for bad input or a failed step."""

    exit_code = 2


class InputError(TrackReidError):
    """A user-supplied file or argument is missing, malformed or inconsistent."""


class ModelError(TrackReidError):
    """Weights cannot be found, trusted, or matched to an architecture."""


class UnsafeFileError(ModelError):
    """A file would need code execution (unsafe unpickling) to load; it was refused."""


class OutputError(TrackReidError):
    """An output cannot be written (exists, is not a folder, disk full, no permission)."""


class DownloadError(ModelError):
    """A requested download failed or did not match its published checksum."""


def yaml_error_text(e: Exception) -> str:
    """A YAML parser error on one line: ``line L, column C: problem (context)``."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    text = str(e).strip()
    problem = getattr(e, "problem", None) or (text.splitlines()[0] if text else type(e).__name__)
    context = getattr(e, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}" + (f" ({context})" if context else "")
