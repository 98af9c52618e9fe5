"""Nothing half-written: outputs go to a temporary name beside the target, then are renamed."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trackreid.errors import OutputError


def file_in_the_way(path: Path) -> Path | None:
    """The first existing ancestor of ``path`` that is a file (so ``path`` cannot be created)."""
    for parent in reversed(Path(path).parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def output_error(path: Path, e: OSError) -> OutputError:
    blocker = file_in_the_way(path)
    if e.errno == errno.ENOSPC:
        hint = "the disk is full; free space or choose another --output-dir"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "no permission to write there (or a read-only file system); choose a writable --output-dir"
    elif blocker is not None:
        hint = f"{blocker} is a file, not a folder; choose another output path"
    elif e.errno == errno.ENOTDIR:
        hint = "a part of the path is a file, not a folder"
    else:
        hint = e.strerror or str(e)
    return OutputError(f"{path}: cannot write ({hint})")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary file path in ``path``'s folder; rename it to ``path`` on success."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(name, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    except OSError as e:
        raise output_error(path, e) from None
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise output_error(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; it becomes ``path`` on success, vanishes on failure."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as e:
        raise output_error(path, e) from None
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(path, e) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_output_dir(path: Path, overwrite: bool, produces: tuple[str, ...]) -> None:
    """Refuse a file where a folder is wanted, and existing outputs without ``overwrite``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is a file; --output-dir must be a folder")
    blocker = file_in_the_way(path)
    if blocker is not None:
        raise OutputError(f"{path}: cannot be created: {blocker} is a file, not a folder; choose another "
                          "--output-dir")
    existing = [p for p in produces if (path / p).exists()]
    if existing and not overwrite:
        raise OutputError(f"{path}: already holds {', '.join(existing)}; pass --overwrite to replace "
                          "them or choose another --output-dir")
