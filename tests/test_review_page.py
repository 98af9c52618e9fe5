"""report.html's review mode in a real browser: Debian's chromium driven by Selenium and chromedriver,
inside a network namespace with only loopback. It clicks a split and a merge, the decisions survive a
reload (localStorage), it downloads corrections.json, and that file re-associates with both decisions
holding. Also: the questions come likely errors first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.associate_sites import build_two_cameras
from tests.ci import skip_or_fail
from trackreid.associate.graph import build_graph
from trackreid.associate.review import review_queue
from trackreid.associate.synthetic import synthetic_tracks
from trackreid.cli.main import main

HERE = Path(__file__).resolve().parent


def _browser_tools() -> None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        skip_or_fail("selenium is not installed (the dev extra: make setup)")
    for tool, package in (("chromium", "chromium"), ("chromedriver", "chromium-driver")):
        if shutil.which(tool) is None and not Path(f"/usr/bin/{tool}").exists():
            skip_or_fail(f"{tool} not found (apt-get install {package})")
    if shutil.which("unshare") is None:
        skip_or_fail("unshare (util-linux) not found: the browser runs in a network namespace with only loopback")


@pytest.fixture(scope="module")
def site(tmp_path_factory, cuhk03_features, msmt_pth):  # type: ignore[no-untyped-def]
    q, g, qf, gf = cuhk03_features(msmt_pth)
    root = tmp_path_factory.mktemp("review_site")
    folders, _ = build_two_cameras(root, q, g, qf, gf, seed=2)
    return folders


def _associate(folders: list[Path], out: Path, *extra: str) -> dict[str, dict[int, int]]:
    rc = main(["associate", "--quiet", "--features", str(folders[0]), "--camera", "camA", "--features",
               str(folders[1]), "--camera", "camB", "--output-dir", str(out), *extra])
    assert rc == 0
    ids = json.loads((out / "global_ids.json").read_text())
    return {c: {int(t): g for t, g in m.items()} for c, m in ids.items()}


def _gid(ids: dict[str, dict[int, int]], key: str) -> int:
    cam, tid = key.rsplit(":", 1)
    return ids[cam][int(tid)]


def test_split_and_merge_in_chromium_then_reassociate(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _browser_tools()
    before = _associate(site, tmp_path / "step4")
    page = tmp_path / "step4" / "report.html"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    shot = tmp_path / "review.png"
    inner = "ip link set lo up; exec \"$@\""
    r = subprocess.run(["unshare", "-rn", "--", "bash", "-c", inner, "bash", sys.executable,
                        str(HERE / "review_browser.py"), str(page), str(downloads), str(tmp_path / "profile"),
                        str(shot)], capture_output=True, text=True, timeout=180, check=False,
                       env={**os.environ, "SE_OFFLINE": "true"})
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    split, (a, b) = got["split"], got["merge"]
    members = [k for c, m in before.items() for k in (f"{c}:{t}" for t, g in m.items() if g == int(split["gid"]))]
    assert split["track"] in members and len(members) >= 2
    assert _gid(before, a) != _gid(before, b)  # a merge: two identities left apart
    assert got["answered"] == "same person"
    # after a reload: the split (a cannot-link with each other track of its identity) and the merge
    assert int(got["count"]) == len(members) - 1 + 1
    assert f"same person: {a} - {b} undo" in got["decisions"]
    assert got["downloaded"]
    fixes = json.loads((downloads / "corrections.json").read_text())
    assert fixes["must_link"] == [[a, b]]
    assert sorted(map(sorted, fixes["cannot_link"])) == sorted(
        sorted([split["track"], m]) for m in members if m != split["track"])
    summary = json.loads((tmp_path / "step4" / "summary.json").read_text())
    assert fixes["model_sha256"] == summary["model_sha256"] and fixes["confirmed"] == []

    after = _associate(site, tmp_path / "again", "--corrections", str(downloads / "corrections.json"))
    assert _gid(after, a) == _gid(after, b)
    assert all(_gid(after, split["track"]) != _gid(after, m) for m in members if m != split["track"])
    decisions = json.loads((tmp_path / "again" / "summary.json").read_text())["corrections"]["decisions"]
    assert all(d["applied"] for d in decisions)
    # the page of the corrected association starts from these decisions: a second round adds to them
    page2 = (tmp_path / "again" / "report.html").read_text()
    blob = page2.split("<script id='review-data' type='application/json'>")[1].split("</script>")[0]
    initial = json.loads(blob.replace("<\\/", "</"))["initial"]
    assert initial == {k: fixes[k] for k in ("must_link", "cannot_link", "confirmed")}
    png = __import__("cv2").imread(str(shot))
    assert png is not None and len(np.unique(png.reshape(-1, 3), axis=0)) > 200  # a drawn page, not blank
    if os.environ.get("TRACKREID_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["TRACKREID_KEEP_SCREENSHOT"])


def test_questions_come_likely_errors_first() -> None:
    from trackreid.associate.cluster import cluster_graph
    from trackreid.associate.constraints import Constraints

    ts, truth = synthetic_tracks(60, 4, tracks_per_identity=4, seed=5)
    graph = build_graph(ts, 10)
    result = cluster_graph(ts, graph, 0.3, Constraints(ts, revisit_gap=3.0))
    queue = review_queue(ts, result.labels, result.merges, graph, 0.3)
    assert [q["priority"] for q in queue] == sorted((q["priority"] for q in queue), reverse=True)
    assert {q["kind"] for q in queue} == {"link", "apart"} and len(queue) > 10
    for q in queue:  # a link is inside one identity, an "apart" pair across two
        ra, rb = q["rows"]
        assert (result.labels[ra] == result.labels[rb]) == (q["kind"] == "link")
        assert q["doubt"] == pytest.approx(q["margin"] if q["kind"] == "apart" else -q["margin"])
    pairs = [tuple(sorted((int(result.labels[q["rows"][0]]), int(result.labels[q["rows"][1]]))))
             for q in queue if q["kind"] == "apart"]
    assert len(pairs) == len(set(pairs))  # one question per pair of identities left apart
    # the revisit gap splits people here: the first questions are those errors, more often than the rest
    wrong = [bool(truth[q["rows"][0]] == truth[q["rows"][1]]) == (q["kind"] == "apart") for q in queue]
    assert np.mean(wrong[:10]) >= 0.8 > np.mean(wrong[10:])
