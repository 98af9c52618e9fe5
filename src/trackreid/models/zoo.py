"""Where pretrained files live, and the one explicit download path.

A ``--reid-model`` value is a file path or a zoo name (``osnet_x0_25_msmt17``, a zoo file
name, or a boxmot alias). Names resolve inside the cache folder: ``$TRACKREID_HOME`` or
``~/.cache/trackreid``. Nothing is ever downloaded implicitly: :func:`download` runs only when
the user asks (``trackreid models download NAME``). It fetches the publisher's address
(Google Drive through gdown, the ``trackreid[zoo]`` extra; any other http(s):// or file://
address with the standard library), or ``--url`` / ``$TRACKREID_MIRROR``, writes to a
temporary file, verifies the sha256 where the zoo knows it, and renames only on success.
"""

from __future__ import annotations

import inspect
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trackreid.errors import DownloadError, ModelError
from trackreid.io.atomic import atomic_path
from trackreid.models.registry import ZOO, ZooEntry, zoo_lookup
from trackreid.suggest import did_you_mean

Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


def cache_dir() -> Path:
    return Path(os.environ.get("TRACKREID_HOME") or Path.home() / ".cache" / "trackreid")


def cached_path(entry: ZooEntry) -> Path:
    return cache_dir() / entry.file_name


def download_url(entry: ZooEntry, url: str | None = None) -> str | None:
    """The address to fetch: an explicit ``url``, a mirror (``$TRACKREID_MIRROR/<file name>``), or the zoo's."""
    if url:
        return url
    mirror = os.environ.get("TRACKREID_MIRROR")
    if mirror:
        return mirror.rstrip("/") + "/" + entry.file_name
    return entry.url


def resolve_weights(spec: str | Path) -> Path:
    """A path that exists, or the cached file of a zoo name; else a message saying what to do."""
    p = Path(spec).expanduser()
    if p.exists():
        return p
    entry = zoo_lookup(str(spec))
    if entry is None:
        if p.suffix or os.sep in str(spec):
            raise ModelError(f"{spec}: no such weights file. Give a path to a .pth/.pt/.safetensors/.onnx "
                             "file or a zoo name from `trackreid models list`")
        raise ModelError(f"{spec!r} is neither a file nor a known zoo name{did_you_mean(str(spec), ZOO)}; "
                         "see `trackreid models list`")
    cached = cached_path(entry)
    if cached.is_file():
        return cached
    raise ModelError(
        f"{entry.name} is not downloaded. Run `trackreid models download {entry.name}`, "
        f"or put the file {entry.file_name} at {cached} (set TRACKREID_HOME to use another folder)"
    )


def is_drive_url(url: str) -> bool:
    """A Google Drive address (fetched with gdown, which handles Drive's confirmation pages)."""
    return urllib.parse.urlparse(url).hostname in ("drive.google.com", "docs.google.com")


def download(entry: ZooEntry, url: str | None = None, progress: Progress | None = None,
             timeout: float = 60.0) -> Path:
    """Fetch ``entry`` into the cache, verify its sha256 when known, and return its path."""
    from trackreid.models.weights import sha256_file

    src = download_url(entry, url)
    target = cached_path(entry)
    if src is None:
        raise DownloadError(
            f"{entry.name}: no verified download address is known for {entry.file_name}. Download it by "
            f"hand and put it at {target}, or pass --url URL, or set TRACKREID_MIRROR to a folder URL holding it"
        )
    if not src.startswith(("http://", "https://", "file://")):
        raise DownloadError(f"{src}: only http(s):// and file:// addresses are fetched")
    with atomic_path(target) as tmp:
        if is_drive_url(src):
            _fetch_drive(src, tmp, progress, timeout, entry, target)
        else:
            _fetch_url(src, tmp, progress, timeout, entry, target)
        digest = sha256_file(tmp)
        if entry.sha256 and digest != entry.sha256:
            raise DownloadError(f"{src}: sha256 {digest} does not match the published {entry.sha256}; "
                                "the file is corrupt or not the zoo's. Nothing was kept")
    return target


def _fetch_url(src: str, tmp: Path, progress: Progress | None, timeout: float, entry: ZooEntry,
               target: Path) -> None:
    try:
        with urllib.request.urlopen(src, timeout=timeout) as r, open(tmp, "wb") as f:  # noqa: S310 - scheme checked
            total = r.headers.get("Content-Length")
            total_n = int(total) if total and total.isdigit() else None
            done = 0
            while block := r.read(1 << 16):
                f.write(block)
                done += len(block)
                if progress:
                    progress(done, total_n)
        if total_n is not None and done != total_n:
            raise DownloadError(f"{src}: connection closed after {done} of {total_n} bytes; try again")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        raise DownloadError(f"{src}: download failed ({e}). Offline? Put {entry.file_name} at {target}") from None


def _fetch_drive(src: str, tmp: Path, progress: Progress | None, timeout: float, entry: ZooEntry,
                 target: Path) -> None:
    try:
        import gdown
    except ImportError:
        raise DownloadError(
            f"{entry.name} is hosted on Google Drive ({src}); downloading it needs gdown: "
            f"pip install 'trackreid[zoo]' (or pip install gdown). Or download it by hand and put it at {target}"
        ) from None
    kwargs: dict[str, Any] = {"quiet": True}
    accepted = inspect.signature(gdown.download).parameters
    if progress is not None and "progress" in accepted:
        kwargs["progress"] = progress
    if "timeout" in accepted:
        kwargs["timeout"] = timeout
    try:
        out = gdown.download(src, str(tmp), **kwargs)
    except Exception as e:  # noqa: BLE001 - gdown raises its own, requests' and OS errors
        raise DownloadError(f"{src}: download failed ({type(e).__name__}: {str(e).strip()[:300]}). Offline? "
                            f"Put {entry.file_name} at {target}") from None
    if out is None or not tmp.is_file():
        raise DownloadError(f"{src}: gdown fetched nothing (Google Drive may be refusing the file for now); "
                            f"try later, or put {entry.file_name} at {target}")


def require_entry(name: str) -> ZooEntry:
    entry = zoo_lookup(name)
    if entry is None:
        raise ModelError(f"{name!r} is not a zoo name{did_you_mean(name, ZOO)}; see `trackreid models list`")
    return entry
