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
