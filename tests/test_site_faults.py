"""The site fault battery: `trackreid run` after changed inputs, killed drivers and dying workers.

* Each input of a finished site is changed in turn (a video, a tracks file, the weights, an
  extract option in site.yml, an association option, the topology file's content, a camera's
  clock): exactly the work that depends on it runs again, nothing else.
* The driver is killed (SIGKILL, the driver alone) in each phase: planning, extracting,
  merging, associating. No process of the run survives it, and the same command then
  completes with the outputs of a clean run.
* A worker that dies on one segment fails that segment only.
* A site whose tracks count frames from 0 (``frame_offset: 1``) gives the identities of the
  same site counted from 1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.sites import SEGMENT_MINUTES, assert_same_features, make_site, no_partial_files
from trackreid.run import read_site, run_site

CAMS = ["cam1", "cam2"]
JOBS_PER_CAMERA = 2  # 2-second clips at 25 fps, 30-frame segments


def _site(root: Path, weights: Path) -> Path:
    site = make_site(root, weights, cameras=2, seconds=2.0)
    (root / "topo.yml").write_text("links:\n  - {cameras: [cam1, cam2], transit: [0, 60]}\n", encoding="utf-8")
    with site.open("a", encoding="utf-8") as f:
        f.write("associate: {topology: topo.yml}\n")
    return site


def _run(site: Path, out: Path, **kw: Any) -> tuple[Any, list[Any]]:
    events: list[Any] = []
    result = run_site(read_site(site), out, workers=2, segment_minutes=SEGMENT_MINUTES, on_event=events.append, **kw)
    return result, events


def _global_ids(out: Path) -> dict[str, Any]:
    return json.loads((out / "associate" / "global_ids.json").read_text())


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, msmt_pth: Path) -> tuple[Path, Path]:
    """A finished run of the 2-camera site: (site.yml, output folder); never modified by the tests."""
    root = tmp_path_factory.mktemp("faults")
    site = _site(root / "site", msmt_pth)
    out = root / "clean"
    result, _ = _run(site, out)
    assert result.ok, result.report
    return site, out


def _ran(events: list[Any]) -> list[str]:
    return sorted(e[1] for e in events if e[0] == "done")


def test_a_changed_input_reruns_exactly_what_depends_on_it(clean: tuple[Path, Path], tmp_path: Path,
                                                            msmt_pth: Path, market_pth: Path) -> None:
    site_src, clean_out = clean
    root = tmp_path / "site"
    shutil.copytree(site_src.parent, root)
    site = root / "site.yml"
    out = tmp_path / "out"
    result, events = _run(site, out)
    assert result.ok and len(_ran(events)) == 2 * JOBS_PER_CAMERA
    assert _global_ids(out) == _global_ids(clean_out)
    text = site.read_text()

    def rerun(what: str) -> tuple[list[str], dict[str, str], str]:
        result, events = _run(site, out)
        assert result.ok, (what, result.report)
        cams = {c: v["status"] for c, v in result.report["cameras"].items()}
        return _ran(events), cams, result.report["associate"]["status"]

    all1 = [f"cam1/{i:04d}" for i in range(JOBS_PER_CAMERA)]
    all2 = [f"cam2/{i:04d}" for i in range(JOBS_PER_CAMERA)]
    assert rerun("nothing") == ([], {"cam1": "skipped (unchanged)", "cam2": "skipped (unchanged)"},
                                "skipped (unchanged)")
    # a video: its camera and the association
    shutil.copy(root / "cam2" / "sample.mp4", root / "cam1" / "sample.mp4")
    shutil.copy(root / "cam2" / "sample_tracks.txt", root / "cam1" / "sample_tracks.txt")
    assert rerun("video") == (all1, {"cam1": "done", "cam2": "skipped (unchanged)"}, "done")
    # a tracks file: one row fewer
    tracks = root / "cam2" / "sample_tracks.txt"
    tracks.write_text("\n".join(tracks.read_text().splitlines()[:-1]) + "\n")
    assert rerun("tracks")[1:] == ({"cam1": "skipped (unchanged)", "cam2": "done"}, "done")
    # the weights: every camera
    site.write_text(text.replace(str(msmt_pth), str(market_pth)))
    assert rerun("weights") == (all1 + all2, {"cam1": "done", "cam2": "done"}, "done")
    text = site.read_text()
    # an extract option: every camera
    site.write_text(text.replace("max_crops_per_track: 10", "max_crops_per_track: 6"))
    assert rerun("option")[1] == {"cam1": "done", "cam2": "done"}
    text = site.read_text()
    # an association option: the association only
    site.write_text(text.replace("associate: {topology: topo.yml}", "associate: {topology: topo.yml, k: 10}"))
    assert rerun("associate option") == ([], {"cam1": "skipped (unchanged)", "cam2": "skipped (unchanged)"},
                                         "done")
    # the topology file's content (same path): the association only
    (root / "topo.yml").write_text("links:\n  - {cameras: [cam1, cam2], transit: [0, 30]}\n")
    summary = json.loads((out / "associate" / "summary.json").read_text())
    assert rerun("topology") == ([], {"cam1": "skipped (unchanged)", "cam2": "skipped (unchanged)"}, "done")
    after = json.loads((out / "associate" / "summary.json").read_text())
    assert summary["constraints"]["topology"] != after["constraints"]["topology"]
    # a camera's clock: the association only
    text = site.read_text()
    site.write_text(text.replace("tracks: cam2/sample_tracks.txt}", "tracks: cam2/sample_tracks.txt, time_offset: 7}"))
    assert rerun("clock") == ([], {"cam1": "skipped (unchanged)", "cam2": "skipped (unchanged)"}, "done")
    assert rerun("nothing again")[2] == "skipped (unchanged)"


def _session_processes(sid: int) -> list[int]:
    """Pids of live processes in session ``sid`` (zombies, already dead, are left out)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(d.name))
    return pids


def _kill_driver_at(cmd: list[str], out: Path, phase: str) -> None:
    """Start the run in its own session; SIGKILL the driver alone once its log shows ``phase`` (and, for
    extracting, once a segment finished); then no process of the session may be left."""
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    try:
        deadline = time.monotonic() + 120
        for line in proc.stderr:
            if phase in line:
                break
            assert time.monotonic() < deadline, f"no {phase!r} line in time"
        else:
            pytest.fail(f"the run ended before {phase!r}")
        if phase == "extracting":
            while not list(out.glob("cameras/*/.parts/*.done.json")):
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 15
        while (left := _session_processes(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == [], f"processes of the killed run survive it ({phase}): {left}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()


def test_a_driver_killed_in_any_phase_leaves_no_process_and_resumes_to_a_clean_result(
        clean: tuple[Path, Path], tmp_path: Path) -> None:
    site, clean_out = clean
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "trackreid", "run", "--site", str(site), "--output-dir", str(out),
           "--workers", "2", "--segment-minutes", str(SEGMENT_MINUTES)]
    for phase in ("planning", "extracting", "merging camera", "associating"):
        _kill_driver_at(cmd, out, phase)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_features(out, clean_out, CAMS)
    assert _global_ids(out) == _global_ids(clean_out)
    assert no_partial_files(out) == []


def test_a_worker_that_dies_on_one_segment_fails_that_segment_only(clean: tuple[Path, Path], tmp_path: Path) -> None:
    site, clean_out = clean
    poison = "cam2/0001"
    killed: list[int] = []
    events: list[Any] = []

    def kill_poison(event: Any) -> None:
        events.append(event)
        kind, job, info = event
        if kind == "start" and job == poison:
            killed.append(info["pid"])
            os.kill(info["pid"], signal.SIGKILL)

    out = tmp_path / "out"
    result = run_site(read_site(site), out, workers=2, segment_minutes=SEGMENT_MINUTES, on_event=kill_poison,
                      associate=False)
    assert len(killed) == 4  # the first try and 3 retries
    assert sorted(result.failures) == ["cam2"] and "died 4 times" in result.failures["cam2"]
    assert {e[1] for e in events if e[0] == "retry"} == {poison}
    assert sorted(e[1] for e in events if e[0] == "done") == ["cam1/0000", "cam1/0001", "cam2/0000"]
    assert_same_features(out, clean_out, ["cam1"])


def test_frames_counted_from_zero_give_the_identities_of_frames_counted_from_one(
        clean: tuple[Path, Path], tmp_path: Path) -> None:
    site, clean_out = clean
    root = tmp_path / "zero"
    shutil.copytree(site.parent, root)
    for cam in CAMS:
        tracks = root / cam / "sample_tracks.txt"
        rows = [line.split(",", 1) for line in tracks.read_text().splitlines()]
        tracks.write_text("".join(f"{int(f) - 1},{rest}\n" for f, rest in rows))
    zero_site = root / "site.yml"
    zero_site.write_text(zero_site.read_text() + "frame_offset: 1\n")
    out = tmp_path / "out"
    result, _ = _run(zero_site, out)
    assert result.ok, result.report
    assert _global_ids(out) == _global_ids(clean_out)
    assert_same_features(out, clean_out, CAMS)
    for cam in CAMS:  # written back in the file's own numbering
        ours = (out / "associate" / "global_tracks" / f"{cam}.txt").read_text().splitlines()
        theirs = (clean_out / "associate" / "global_tracks" / f"{cam}.txt").read_text().splitlines()
        assert [int(r.split(",")[0]) + 1 for r in ours] == [int(r.split(",")[0]) for r in theirs]
        assert [r.split(",", 1)[1] for r in ours] == [r.split(",", 1)[1] for r in theirs]


def test_the_camera_key_holds_the_backend_that_runs_and_a_merge_refuses_mixed_backends(
        clean: tuple[Path, Path], msmt_pth: Path) -> None:
    from trackreid.errors import InputError
    from trackreid.run.plan import EmbedderSpec, camera_key, extract_config, resolve_spec

    site = read_site(clean[0])
    cam, config = site.cameras[0], extract_config(site.options)
    auto = resolve_spec(EmbedderSpec(str(msmt_pth), "auto", "auto"))
    assert (auto.backend, auto.device, auto.half) == ("onnx", "cpu", False)  # what auto means on this CPU machine
    torch_spec = resolve_spec(EmbedderSpec(str(msmt_pth), "torch", "cpu"))
    assert camera_key(cam, config, auto, "s") != camera_key(cam, config, torch_spec, "s")
    assert camera_key(cam, config, auto, "s") == camera_key(cam, config, resolve_spec(EmbedderSpec(
        str(msmt_pth), "onnx", "cpu")), "s")  # the same backend however it was asked for

    from trackreid.run import store
    from trackreid.run.plan import plan_camera

    out = clean[1] / "mixed"
    cplan = plan_camera(cam, config, auto, "s", SEGMENT_MINUTES, out / store.PARTS_DIR)
    import numpy as np

    for n, job in enumerate(cplan.jobs):
        feats = np.zeros((len(job.rows), 512), np.float32)
        backend = {"backend": "onnxruntime" if n == 0 else "torch", "device": "cpu"}
        store.write_part(job, feats, np.ones(len(job.rows), bool),
                         {"embedder": {"model": {}, "backend": backend, "batch_size": 32}})
    with pytest.raises(InputError, match="different backends"):
        store.merge(cplan, out, config, None)
    shutil.rmtree(out)


def test_a_merge_that_fails_halfway_leaves_no_marker_vouching_for_the_outputs(
        clean: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trackreid.errors import OutputError
    from trackreid.run import store

    site, _ = clean
    out = tmp_path / "out"
    result, _ = _run(site, out, associate=False)
    assert result.ok
    key = json.loads((out / "cameras" / "cam1" / store.MARKER).read_text())["key"]

    def half_written(*a: Any, **kw: Any) -> None:
        (out / "cameras" / "cam1" / "track_features.npz").write_bytes(b"half")
        raise OutputError("disk full (simulated)")

    monkeypatch.setattr(store, "write_outputs", half_written)
    result, _ = _run(site, out, associate=False, force=True)
    assert "disk full" in result.failures["cam1"]
    assert not store.camera_done(out / "cameras" / "cam1", key)  # the next run merges again
