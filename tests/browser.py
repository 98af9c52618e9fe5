"""Headless chromium for page tests, only ever inside a fresh network namespace (``unshare -rn``, loopback only)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium (apt-get install chromium) for the report test")
        pytest.skip("chromium not installed")
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to run the browser without network")
    return found


def browser(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    """Headless chromium in a fresh network namespace with only the loopback interface."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"]
    inner = "ip link set lo up; exec \"$@\""
    return subprocess.run(["unshare", "-rn", "--", "bash", "-c", inner, "bash", chromium(), *flags, *args],
                          capture_output=True, text=True, timeout=120, check=False)
