"""Helpers shared by the `trackreid run` tests (local and Ray engines): tiny drawn sites."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from trackreid.io.features import read_features
from trackreid.sample import make_sample

SEGMENT_MINUTES = 0.02  # 30 frames at 25 fps: 4 segments per 4-second camera


def make_site(root: Path, weights: Path, cameras: int = 3, seconds: float = 4.0) -> Path:
    """``cameras`` drawn scenes of ``seconds`` at 320x240 and their site.yml (the minimal form)."""
    lines = [f"reid_model: {weights}", "max_crops_per_track: 10", "cameras:"]
    for i in range(cameras):
        make_sample(root / f"cam{i + 1}", seconds=seconds, width=320, height=240, people=4, seed=i)
        lines.append(f"  - {{name: cam{i + 1}, video: cam{i + 1}/sample.mp4, tracks: cam{i + 1}/sample_tracks.txt}}")
    site = root / "site.yml"
    site.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return site


def assert_same_features(a: Path, b: Path, cameras: list[str]) -> None:
    for cam in cameras:
        fa, fb = read_features(a / "cameras" / cam), read_features(b / "cameras" / cam)
        assert np.array_equal(fa.track_ids, fb.track_ids), cam
        assert np.array_equal(fa.frame_indices, fb.frame_indices), cam
        assert np.array_equal(fa.all_features, fb.all_features), cam
        assert np.array_equal(fa.features, fb.features), cam


def no_partial_files(out: Path) -> list[Path]:
    """Anything a killed writer could leave behind: temporary files, unmerged parts."""
    return [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name == ".parts"]


def only_loopback() -> bool:
    """Inside `unshare -rn` with lo up, the only network interface is `lo`."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def require_network_namespace() -> None:
    if not only_loopback():
        msg = ("Ray tests run only inside a network namespace: "
               "unshare -rn -- bash -c 'ip link set lo up; exec pytest -m ray'")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def kill_when_done_marker(cmd: list[str], out: Path, pattern: str, what: str, poll: float = 0.05) -> None:
    """Run ``cmd`` in its own session; SIGKILL its whole process group once ``out.glob(pattern)`` finds a file."""
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(pattern)):
            assert proc.poll() is None and time.monotonic() < deadline, f"the {what} ended before it could be killed"
            time.sleep(poll)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
