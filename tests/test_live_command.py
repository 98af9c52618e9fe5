"""``trackreid live``: a drawn site replayed as if live (real decoding, real OSNet, one process per camera)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.sites import make_site
from tests.test_live import replay_events
from trackreid.associate import CameraInput, associate
from trackreid.io.features import read_features
from trackreid.live.replay import run_live
from trackreid.run import read_site

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "trackreid", "live", *args], env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def site_file(msmt_pth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_site(tmp_path_factory.mktemp("live_site"), msmt_pth, cameras=2, seconds=4.0)


@pytest.fixture(scope="module")
def replayed(site_file: Path,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("live_out") / "out"
    return out, _cli("--site", str(site_file), "--output-dir", str(out), "--speed", "max", "--idle-frames", "5")


def test_replay_gives_every_track_an_identity_and_ends_with_the_offline_answer(
        replayed: tuple[Path, subprocess.CompletedProcess[str]], site_file: Path) -> None:
    out, proc = replayed
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    final = json.loads((out / "associate" / "global_ids.json").read_text())
    site = read_site(site_file)
    cams = []
    for cam in site.cameras:
        tf = read_features(out / "cameras" / cam.name)  # the collector's files, as extract writes them
        assert len(tf) > 0
        cams.append(CameraInput(cam.name, out / "cameras" / cam.name, tracks=cam.tracks))
    # every track with features was assigned once, and the events lead to the files' identities
    assigned = [e["tracks"][0] for e in events if e["event"] == "assigned"]
    assert len(assigned) == len(set(assigned)) == sum(len(m) for m in final.values())
    assert replay_events(events)[-1] == {f"{c}:{t}": g for c, m in final.items() for t, g in m.items()}
    # the last revision is the offline association of the same features
    offline = associate(cams, site.options.associate).global_ids
    pairs = {(final[c][str(t)], g) for c, m in offline.items() for t, g in m.items()}
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
    report = json.loads((out / "live.json").read_text())
    assert report["latency_seconds"]["tracks"] == len(assigned)
    assert {c["status"] for c in report["cameras"].values()} == {"done"}
    for name in ("mtmc.txt", "summary.json", "report.html"):
        assert (out / "associate" / name).is_file()
    assert "p99" in proc.stdout


def test_a_finished_run_is_not_replaced_without_overwrite(replayed: tuple[Path, subprocess.CompletedProcess[str]],
                                                         site_file: Path) -> None:
    out, _ = replayed
    proc = _cli("--site", str(site_file), "--output-dir", str(out))
    assert proc.returncode != 0
    assert "pass --overwrite" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--speed", "fast"], "--speed 'fast'"),
    (["--speed", "0"], "--speed '0'"),
    (["--idle-frames", "0"], "--idle-frames 0"),
])
def test_bad_options_fail_with_one_message(site_file: Path, tmp_path: Path, args: list[str], message: str) -> None:
    proc = _cli("--site", str(site_file), "--output-dir", str(tmp_path / "o"), *args)
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_a_camera_process_that_dies_does_not_stop_the_others(site_file: Path, tmp_path: Path) -> None:
    def kill_cam2(name: str, pid: int) -> None:
        if name == "cam2":
            os.kill(pid, signal.SIGKILL)

    result = run_live(read_site(site_file), tmp_path / "out", None, idle_frames=5, on_camera_start=kill_cam2)
    assert not result.ok
    assert "died" in result.failures["cam2"] and set(result.failures) == {"cam2"}
    assert result.report["cameras"]["cam1"]["status"] == "done"
    final = json.loads((tmp_path / "out" / "associate" / "global_ids.json").read_text())
    assert set(final) == {"cam1"} and len(final["cam1"]) > 0
    events = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").read_text().splitlines()]
    assert {e["tracks"][0].split(":")[0] for e in events if e["event"] == "assigned"} == {"cam1"}
    assert np.isfinite(result.report["latency_seconds"]["p99"])


def test_a_killed_replay_continues_from_its_state_on_rerun(site_file: Path, tmp_path: Path) -> None:
    import time

    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "trackreid", "live", "--site", str(site_file), "--output-dir", str(out),
           "--speed", "max", "--idle-frames", "5"]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    events = out / "events.jsonl"
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if events.is_file() and events.read_bytes().count(b"\n") >= 1:
            os.killpg(proc.pid, signal.SIGKILL)  # the command and its camera processes
            break
        time.sleep(0.01)
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL, "the replay finished before it could be killed"
    assert not (out / "live.json").exists()
    again = _cli("--site", str(site_file), "--output-dir", str(out), "--speed", "max", "--idle-frames", "5")
    assert again.returncode == 0, again.stderr
    report = json.loads((out / "live.json").read_text())
    assert report["tracks_skipped_as_already_associated"] >= 1  # continued: not associated a second time
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))  # every event once, in order
    final = json.loads((out / "associate" / "global_ids.json").read_text())
    assigned = [e["tracks"][0] for e in lines if e["event"] == "assigned"]
    assert len(assigned) == len(set(assigned)) == sum(len(m) for m in final.values())
    assert replay_events(lines)[-1] == {f"{c}:{t}": g for c, m in final.items() for t, g in m.items()}
