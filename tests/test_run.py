"""`trackreid run` with the local engine: a site completes, resumes, survives killed workers and drivers."""

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

import numpy as np
import pytest

from tests.sites import SEGMENT_MINUTES, assert_same_features, kill_when_done_marker, make_site, no_partial_files
from trackreid.embed.factory import build_embedder
from trackreid.errors import InputError
from trackreid.extract import ExtractConfig, extract
from trackreid.io.features import read_features
from trackreid.run import read_site, run_site
from trackreid.run.plan import camera_key, embedder_spec, extract_config

CAMS = ["cam1", "cam2", "cam3"]


@pytest.fixture(scope="session")
def site_file(tmp_path_factory: pytest.TempPathFactory, msmt_pth: Path) -> Path:
    return make_site(tmp_path_factory.mktemp("site"), msmt_pth)


@pytest.fixture(scope="session")
def clean_run(site_file: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, list[Any]]:
    out = tmp_path_factory.mktemp("clean") / "out"
    events: list[Any] = []
    result = run_site(read_site(site_file), out, workers=2, segment_minutes=SEGMENT_MINUTES, on_event=events.append,
                      associate=False)
    return out, result, events


def test_site_completes_with_the_features_of_a_plain_extract(clean_run: tuple[Path, Any, list[Any]],
                                                             site_file: Path, msmt_pth: Path) -> None:
    out, result, events = clean_run
    assert result.failures == {} and sorted(result.cameras) == CAMS
    planned = events[0]
    assert planned[0] == "planned" and planned[2]["jobs"] == 12  # 3 cameras x 4 segments
    assert sum(e[0] == "done" for e in events) == 12
    report = json.loads((out / "run.json").read_text())
    assert report["failures"] == [] and report["jobs"]["run"] == 12
    assert all(report["cameras"][c]["status"] == "done" for c in CAMS)
    assert no_partial_files(out) == []
    # segments planned on the whole video and merged = one extract of the whole video
    cam = read_site(site_file).cameras[1]
    whole = extract(cam.video, cam.tracks, build_embedder(msmt_pth, batch_size=32), config=ExtractConfig())
    merged = result.cameras["cam2"].features
    assert np.array_equal(merged.frame_indices, whole.features.frame_indices)
    np.testing.assert_allclose(merged.all_features, whole.features.all_features, atol=1e-5)
    meta = result.cameras["cam2"].metadata
    assert meta["stats"]["crops_embedded"] == whole.metadata["stats"]["crops_embedded"]
    assert len(meta["segments"]) == 4
    # each segment seeks to the keyframe before its start: about one pass over the 100 frames,
    # where decoding every segment from frame 1 would take 30 + 60 + 90 + 100 = 280
    assert meta["stats"]["frames_decoded"] < 150


def test_rerun_is_a_noop_and_byte_identical(clean_run: tuple[Path, Any, list[Any]], site_file: Path) -> None:
    out, _, _ = clean_run
    before = {p: p.read_bytes() for p in (out / "cameras").rglob("*") if p.is_file()}
    events: list[Any] = []
    result = run_site(read_site(site_file), out, segment_minutes=SEGMENT_MINUTES, on_event=events.append,
                      associate=False)
    assert [e[0] for e in events] == ["planned"] and events[0][2]["jobs"] == 0
    assert all(v["status"].startswith("skipped") for v in result.report["cameras"].values())
    assert {p: p.read_bytes() for p in (out / "cameras").rglob("*") if p.is_file()} == before


def test_a_changed_option_or_model_changes_the_camera_key(site_file: Path, msmt_pth: Path, market_pth: Path) -> None:
    site = read_site(site_file)
    cam = site.cameras[0]
    opts = site.options
    base = camera_key(cam, extract_config(opts), embedder_spec(opts, str(msmt_pth)), "a" * 64)
    more = read_site(site_file, max_crops_per_track=5).options
    assert camera_key(cam, extract_config(more), embedder_spec(more, str(msmt_pth)), "a" * 64) != base
    assert camera_key(cam, extract_config(opts), embedder_spec(opts, str(market_pth)), "b" * 64) != base
    assert camera_key(cam, extract_config(opts), embedder_spec(opts, str(msmt_pth)), "a" * 64) == base


def test_a_killed_worker_is_retried_and_the_result_equals_a_clean_run(
        clean_run: tuple[Path, Any, list[Any]], site_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    killed: list[int] = []
    events: list[Any] = []

    def kill_first_worker(event: Any) -> None:
        events.append(event)
        kind, _, info = event
        if kind == "advance" and not killed:
            killed.append(info["pid"])
            os.kill(info["pid"], signal.SIGKILL)

    result = run_site(read_site(site_file), out, workers=2, segment_minutes=SEGMENT_MINUTES,
                      on_event=kill_first_worker, associate=False)
    assert killed and any(e[0] == "retry" for e in events)
    assert result.failures == {}
    assert_same_features(out, clean_run[0], CAMS)
    assert no_partial_files(out) == []


def test_a_killed_driver_resumes_with_only_the_missing_segments(
        clean_run: tuple[Path, Any, list[Any]], site_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "trackreid", "run", "--site", str(site_file), "--output-dir", str(out),
           "--workers", "1", "--segment-minutes", str(SEGMENT_MINUTES), "--no-associate", "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("cameras/*/.parts/*.done.json"))) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, at once
        proc.wait()
    finished = len(list(out.glob("cameras/*/.parts/*.done.json")))
    assert 3 <= finished < 12
    events: list[Any] = []
    result = run_site(read_site(site_file), out, workers=2, segment_minutes=SEGMENT_MINUTES, on_event=events.append,
                      associate=False)
    assert events[0][2]["jobs"] == 12 - finished
    assert sum(e[0] == "done" for e in events) == 12 - finished
    assert result.failures == {}
    assert_same_features(out, clean_run[0], CAMS)
    assert no_partial_files(out) == []


def test_a_bad_video_fails_only_its_camera(site_file: Path, tmp_path: Path) -> None:
    from trackreid.cli.main import main

    site_dir = site_file.parent
    (tmp_path / "corrupt.mp4").write_bytes(os.urandom(20000))
    text = site_file.read_text().replace("cam3/sample.mp4", str(tmp_path / "corrupt.mp4"))
    bad_site = tmp_path / "site.yml"
    bad_site.write_text(text.replace("video: cam", f"video: {site_dir}/cam").replace("tracks: cam",
                                                                                      f"tracks: {site_dir}/cam"))
    out = tmp_path / "out"
    code = main(["run", "--site", str(bad_site), "--output-dir", str(out), "--quiet", "--no-associate"])
    assert code != 0
    report = json.loads((out / "run.json").read_text())
    assert [f["camera"] for f in report["failures"]] == ["cam3"]
    assert "corrupt.mp4" in report["failures"][0]["error"] and "\n" not in report["failures"][0]["error"]
    assert report["cameras"]["cam1"]["status"] == "done" and report["cameras"]["cam2"]["status"] == "done"
    assert (out / "cameras" / "cam1" / "track_features.npz").is_file()
    assert not (out / "cameras" / "cam3" / "track_features.npz").exists()


def test_site_file_schema(tmp_path: Path, site_file: Path) -> None:
    site = read_site(site_file)
    assert [c.name for c in site.cameras] == CAMS
    assert site.cameras[0].video == site_file.parent / "cam1" / "sample.mp4"
    assert site.options.max_crops_per_track == 10 and site.options.segment_minutes == 30.0
    bad = tmp_path / "bad.yml"
    bad.write_text(site_file.read_text().replace("max_crops_per_track", "max_crop_per_track"))
    with pytest.raises(InputError, match="did you mean 'max_crops_per_track'"):
        read_site(bad)
    bad.write_text(site_file.read_text().replace("tracks: cam1", "trcks: cam1"))
    with pytest.raises(InputError, match="camera 1.*did you mean 'tracks'"):
        read_site(bad)
    csv = tmp_path / "site.csv"
    for name in ("a", "b"):
        shutil.copy(site.cameras[0].video, tmp_path / f"{name}.mp4")
        shutil.copy(site.cameras[0].tracks, tmp_path / f"{name}.txt")
    csv.write_text("name,video,tracks,time_offset\nA,a.mp4,a.txt,1.5\nB,b.mp4,b.txt,\n")
    with pytest.raises(InputError, match="no reid_model"):
        read_site(csv)
    cams = read_site(csv, reid_model=str(site.options.reid_model)).cameras
    assert [(c.name, c.video, c.time_offset) for c in cams] == [("A", tmp_path / "a.mp4", 1.5),
                                                                  ("B", tmp_path / "b.mp4", 0.0)]


def test_a_killed_single_extract_continues_from_its_segments(clean_run: tuple[Path, Any, list[Any]],
                                                             site_file: Path, msmt_pth: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cam = read_site(site_file).cameras[0]
    out = tmp_path / "features"
    cmd = [sys.executable, "-m", "trackreid", "extract", "--source", str(cam.video), "--tracks", str(cam.tracks),
           "--reid-model", str(msmt_pth), "--output-dir", str(out), "--segment-minutes", str(SEGMENT_MINUTES),
           "--save-crops", "--quiet"]
    kill_when_done_marker(cmd, out, ".parts/*.done.json", "extract")
    assert not (out / "track_features.npz").exists()
    seen: list[int] = []
    import trackreid.run.store as store

    real_write = store.write_part

    def spy(job: Any, *a: Any) -> None:  # counts the parts the resumed run writes; each is still written
        seen.append(job.first)
        real_write(job, *a)

    monkeypatch.setattr(store, "write_part", spy)
    from trackreid.cli.main import main

    assert main(["extract", *cmd[4:]]) == 0
    assert 1 not in seen and len(seen) < 4  # the finished first segment was not redone
    got = read_features(out)
    want = read_features(clean_run[0] / "cameras" / "cam1")
    assert np.array_equal(got.all_features, want.all_features)
    meta = json.loads((out / "track_metadata.json").read_text())
    crops = [c for t in meta["tracks"].values() for c in t.get("crops", [])]
    assert len(crops) == meta["stats"]["crops_embedded"] and all((out / c).is_file() for c in crops)
    assert no_partial_files(out) == []


def test_demo_runs_a_two_camera_site_and_associates_it(msmt_pth: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from trackreid.cli.main import main

    assert main(["demo", "--output-dir", str(tmp_path), "--reid-model", str(msmt_pth), "-q"]) == 0
    out = capsys.readouterr().out
    assert out.count("EXTRACTION SUMMARY") == 2 and "ASSOCIATION (done)" in out
    report = json.loads((tmp_path / "run" / "run.json").read_text())
    assert report["failures"] == [] and report["associate"]["status"] == "done"
    assert (tmp_path / "run" / "cameras" / "cam1" / "crops").is_dir()  # report.html shows pictures
    assert "<img" in (tmp_path / "run" / "associate" / "report.html").read_text()
    global_ids = json.loads((tmp_path / "run" / "associate" / "global_ids.json").read_text())
    assert sorted(global_ids) == ["cam1", "cam2"] and len(global_ids["cam2"]) == 8
    line = next(x for x in out.splitlines() if "pairs of tracks linked rightly" in x)
    precision = float(line.split("precision ")[1].split(",")[0])
    found = int(line.split("global identities found: ")[1].split(";")[0])
    assert precision >= 0.9 and 6 <= found <= 10  # 8 drawn people, 5 of them in both cameras
