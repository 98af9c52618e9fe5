"""Explicit, verified downloads from a local HTTP server; offline messages."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import importlib.util
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci import skip_or_fail
from trackreid.cli.main import main
from trackreid.errors import DownloadError, ModelError
from trackreid.models.registry import ZOO
from trackreid.models.weights import sha256_file
from trackreid.models.zoo import _fetch_drive, download, is_drive_url, resolve_weights


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("TRACKREID_HOME", str(d))
    monkeypatch.delenv("TRACKREID_MIRROR", raising=False)
    return d


def test_download_verifies_and_resolves(server: tuple[str, Path], cache: Path, msmt_pth: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    url, root = server
    entry = ZOO["osnet_x0_25_msmt17"]
    (root / entry.file_name).write_bytes(msmt_pth.read_bytes())
    monkeypatch.setenv("TRACKREID_MIRROR", url)
    seen: list[int] = []
    path = download(entry, progress=lambda done, total: seen.append(done))
    assert path == cache / entry.file_name and path.read_bytes() == msmt_pth.read_bytes()
    assert seen[-1] == msmt_pth.stat().st_size
    assert resolve_weights("osnet_x0_25_msmt17") == path
    assert resolve_weights("osnet_x0_25_msmt17.pt") == path  # boxmot alias


def test_corrupt_download_is_rejected_and_leaves_nothing(server: tuple[str, Path], cache: Path,
                                                         msmt_pth: Path) -> None:
    url, root = server
    data = bytearray(msmt_pth.read_bytes())
    data[1000] ^= 0xFF
    (root / "bad.pth").write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="does not match"):
        download(ZOO["osnet_x0_25_msmt17"], url=f"{url}/bad.pth")
    assert not cache.exists() or list(cache.iterdir()) == []


def test_cli_download(server: tuple[str, Path], cache: Path, market_pth: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    url, root = server
    (root / "m.pth").write_bytes(market_pth.read_bytes())
    assert main(["models", "download", "osnet_x0_25_market1501", "--url", f"{url}/m.pth", "--quiet"]) == 0
    assert "sha256 verified" in capsys.readouterr().out
    assert (cache / ZOO["osnet_x0_25_market1501"].file_name).is_file()
    assert main(["models", "download", "osnet_x0_25_market1501", "--url", f"{url}/missing.pth", "-q"]) == 2
    assert "download failed" in capsys.readouterr().err


def test_offline_message_says_where_to_put_the_file(cache: Path) -> None:
    with pytest.raises(ModelError, match=r"models download osnet_x1_0_market1501.*put the file .*market"):
        resolve_weights("osnet_x1_0_market1501")
    entry = dataclasses.replace(ZOO["osnet_x1_0_market1501"], url=None)  # e.g. an entry a user adds by hand
    with pytest.raises(DownloadError, match="no verified download address is known"):
        download(entry)


def test_every_zoo_entry_has_its_publishers_address() -> None:
    ids = set()
    for e in ZOO.values():
        assert e.url is not None, e.name
        parsed = urllib.parse.urlparse(e.url)
        assert parsed.scheme == "https" and is_drive_url(e.url), e.url
        (file_id,) = urllib.parse.parse_qs(parsed.query)["id"]
        assert re.fullmatch(r"[A-Za-z0-9_-]{33}", file_id), e.url
        ids.add(file_id)
    assert len(ids) == len(ZOO)  # one file per entry


def test_recorded_sha256_are_those_of_the_real_files(msmt_pth: Path, market_pth: Path) -> None:
    """The two hashes the zoo states are computed from the shared files here, not copied from a document."""
    assert ZOO["osnet_x0_25_msmt17"].sha256 == sha256_file(msmt_pth)
    assert ZOO["osnet_x0_25_market1501"].sha256 == sha256_file(market_pth)
    unknown = [e.name for e in ZOO.values() if e.sha256 is None]
    assert "osnet_x1_0_market1501" in unknown  # said plainly, not invented


def test_drive_downloads_need_gdown_and_say_how_to_get_it(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gdown", None)  # makes `import gdown` fail
    with pytest.raises(DownloadError, match=r"hosted on Google Drive .*pip install 'trackreid\[zoo\]'"):
        download(ZOO["osnet_x1_0_market1501"])
    assert not cache.exists() or list(cache.iterdir()) == []


def test_gdown_fetch_from_a_local_server(server: tuple[str, Path], tmp_path: Path, market_pth: Path) -> None:
    """The gdown path for real (gdown fetches a plain http address as it fetches Drive's), offline."""
    if importlib.util.find_spec("gdown") is None:
        skip_or_fail("gdown is the zoo extra: pip install 'trackreid[zoo]'")
    url, root = server
    (root / "m.pth").write_bytes(market_pth.read_bytes())
    entry = ZOO["osnet_x0_25_market1501"]
    seen: list[int] = []
    out = tmp_path / "got.pth"
    _fetch_drive(f"{url}/m.pth", out, lambda done, total: seen.append(done), 30.0, entry, out)
    assert out.read_bytes() == market_pth.read_bytes()
    with pytest.raises(DownloadError, match="download failed"):
        _fetch_drive(f"{url}/missing.pth", tmp_path / "x.pth", None, 30.0, entry, out)


def test_a_download_without_a_known_sha256_says_it_is_unverified(server: tuple[str, Path], cache: Path,
                                                                 market_pth: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    url, root = server
    (root / "x.pth").write_bytes(market_pth.read_bytes())
    assert main(["models", "download", "osnet_x1_0_market1501", "--url", f"{url}/x.pth", "-q"]) == 0
    assert "not verified: no sha256 of this file is known" in capsys.readouterr().out


@pytest.mark.parametrize("columns", ["80", "40"])
def test_models_list_never_truncates_names(columns: str) -> None:
    env = {**os.environ, "COLUMNS": columns}
    out = subprocess.run([sys.executable, "-m", "trackreid", "models", "list"], env=env, capture_output=True,
                         text=True, check=True).stdout  # piped, not a terminal
    words = set(out.split())
    for name in ZOO:
        assert name in words, f"{name} missing or cut in:\n{out}"
    assert "…" not in out


def test_unknown_name_suggests(cache: Path) -> None:
    with pytest.raises(ModelError, match="did you mean 'osnet_x0_25_msmt17'"):
        resolve_weights("osnet_x0_25_msmt")
