"""Explicit, verified downloads from a local HTTP server; offline messages."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from trackreid.cli.main import main
from trackreid.errors import DownloadError, ModelError
from trackreid.models.registry import ZOO
from trackreid.models.zoo import download, resolve_weights


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
    with pytest.raises(DownloadError, match="no direct download address"):
        download(ZOO["osnet_x1_0_market1501"])


def test_unknown_name_suggests(cache: Path) -> None:
    with pytest.raises(ModelError, match="did you mean 'osnet_x0_25_msmt17'"):
        resolve_weights("osnet_x0_25_msmt")
