"""End to end on a real synthetic site: extract (real msmt17 weights) -> associate (auto, by the library and
by the CLI) -> evaluate-mtmc (py-motmetrics), and report.html checked in a real headless browser.

The site is composed from real CUHK03 val crops at test time (trackreid.synth); one site and one
extraction (a session fixture) are shared by every test of this file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.browser import browser
from trackreid.associate.mtmc import evaluate_assignment
from trackreid.cli.main import main

SPEC = {"cameras": 2, "identities": 16, "shared_fraction": 0.75, "seconds": 30.0, "fps": 8.0,
        "width": 480, "height": 270, "seed": 1}


@pytest.fixture(scope="session")
def extracted_site(tmp_path_factory: pytest.TempPathFactory, msmt_pth: Path, cuhk03_val: Path):  # type: ignore[no-untyped-def]
    """A 2-camera site of real CUHK03 people, each camera extracted once with the real msmt17 OSNet."""
    from trackreid.embed.factory import build_embedder
    from trackreid.extract import ExtractConfig, extract
    from trackreid.synth import SiteSpec, cuhk03_people, make_site

    root = tmp_path_factory.mktemp("mtmc")
    site = make_site(root / "site", SiteSpec(**SPEC), cuhk03_people(cuhk03_val))  # type: ignore[arg-type]
    embedder = build_embedder(msmt_pth, device="cpu", batch_size=64)
    features = {}
    for cam in site.cameras:
        features[cam.name] = root / "features" / cam.name
        extract(cam.video, cam.tracks, embedder, features[cam.name], ExtractConfig(save_crops=True))
    return site, features, root


@pytest.fixture(scope="module")
def run(extracted_site):  # type: ignore[no-untyped-def]
    from trackreid.associate import AssociateConfig, CameraInput, associate, write_association

    site, features, root = extracted_site
    cameras = [CameraInput(cam.name, features[cam.name], fps=cam.fps, time_offset=cam.time_offset, tracks=cam.tracks)
               for cam in site.cameras]
    result = associate(cameras, AssociateConfig(threshold="auto"))
    write_association(result, root / "step4")
    return site, result, root / "step4"


def test_association_beats_no_association(run, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    site, result, step4 = run
    assert main(["evaluate-mtmc", "--gt", str(site.out_dir), "--pred", str(step4), "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)
    tracks = {c.name: c.tracks for c in site.cameras}
    alone = {c.name: {t: 1000 * (k + 1) + t for t in site.truth[c.name]} for k, c in enumerate(site.cameras)}
    none = evaluate_assignment(site.out_dir, tracks, alone)
    truth = evaluate_assignment(site.out_dir, tracks, site.truth)
    assert none["num_pred_ids"] == sum(len(m) for m in site.truth.values())
    assert ours["cameras"] == ["cam1", "cam2"] and ours["num_gt_ids"] == SPEC["identities"]
    # the same boxes in all three: only the identities differ
    assert ours["num_pred_boxes"] == none["num_pred_boxes"] == truth["num_pred_boxes"]
    assert result.summary["identities_multi_camera"] >= 2
    assert ours["idf1"] >= none["idf1"] + 0.05, (ours, none)
    assert ours["idf1"] <= truth["idf1"] + 1e-9


def test_cli_with_a_cameras_file_matches_the_library(extracted_site, run, tmp_path,  # type: ignore[no-untyped-def]
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    site, features, _ = extracted_site
    _, result, _ = run
    out = tmp_path / "step4"
    argv = ["associate", "--quiet", "--cameras", str(site.site_yml), "--output-dir", str(out)]
    for name, folder in features.items():
        argv += ["--features", str(folder), "--camera", name]
    assert main(argv) == 0, capsys.readouterr().err
    stdout = capsys.readouterr().out
    assert f"threshold {result.threshold:.3f} (auto, chance)" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["constraints"]["revisit_gap"] == 3.0  # the default
    ids = json.loads((out / "global_ids.json").read_text())
    assert summary["tracks"] == sum(len(v) for v in ids.values())
    # the same assignment as the library call with the same defaults (global ids may be numbered alike)
    assert {c: {int(t): g for t, g in m.items()} for c, m in ids.items()} == result.global_ids


def test_report_in_a_real_browser(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    site, result, step4 = run
    page = step4 / "report.html"
    assert page.is_file()
    # independently of the report: global ids whose tracks lie in several cameras
    cams_of: dict[int, set[str]] = {}
    for t, cam in zip(result.tracks.track_id.tolist(), result.tracks.camera.tolist(), strict=True):
        name = result.tracks.cameras[cam]
        cams_of.setdefault(result.global_ids[name][t], set()).add(name)
    multi = sorted(g for g, c in cams_of.items() if len(c) > 1)
    assert multi

    dom = browser(["--dump-dom", page.as_uri()], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    rows = re.findall(r"<tr class=\"identity\" data-gid=\"(\d+)\" data-cameras=\"(\d+)\"", html)
    assert sorted(int(g) for g, _ in rows) == multi
    assert all(int(n) >= 2 for _, n in rows)
    thumbs = re.findall(r"<img class=\"thumb\"[^>]*src=\"data:image/jpeg;base64,([A-Za-z0-9+/=]+)\"", html)
    assert len(thumbs) >= 2 * len(rows)  # every identity shows crops from at least two cameras
    img = cv2.imdecode(np.frombuffer(__import__("base64").b64decode(thumbs[0]), np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[0] == 96
    assert '<svg id="histogram"' in html and 'id="threshold"' in html
    assert f"{result.threshold:.3f}" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch: one file

    shot = tmp_path / "report.png"
    r = browser(["--window-size=1280,1600", f"--screenshot={shot}", page.as_uri()], tmp_path / "profile-shot")
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    png = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert png.shape[:2] == (1600, 1280)
    # not blank: many colours, dark text on the light page, and the crops' colours
    assert len(np.unique(png.reshape(-1, 3), axis=0)) > 500
    assert (png.mean(axis=2) < 80).mean() > 0.002
    if os.environ.get("TRACKREID_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["TRACKREID_KEEP_SCREENSHOT"])
