"""`trackreid associate` on real features (CUHK03 val crops through the real msmt17 OSNet): every output
format, the cameras file, and bad inputs (one clear line, non-zero exit, nothing written)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.associate_sites import build_two_cameras, pairwise_scores
from trackreid.cli.main import main
from trackreid.io.features import TrackFeatures, read_features, write_features
from trackreid.io.mot import read_mot


@pytest.fixture(scope="session")
def site(tmp_path_factory, cuhk03_features, msmt_pth):  # type: ignore[no-untyped-def]
    q, g, qf, gf = cuhk03_features(msmt_pth)
    root = tmp_path_factory.mktemp("associate_site")
    folders, truth = build_two_cameras(root, q, g, qf, gf, seed=0)
    return root, folders, truth


def _run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    rc = main(["associate", "--quiet", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_every_output(site, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    _, (cam_a, cam_b), truth = site
    out = tmp_path / "step4"
    rc, stdout, err = _run(capsys, "--features", str(cam_a), "--camera", "camA", "--features", str(cam_b),
                           "--output-dir", str(out))  # camB named after its folder
    assert rc == 0, err
    assert "threshold" in stdout and "identities" in stdout
    ids = json.loads((out / "global_ids.json").read_text())
    assert set(ids) == {"camA", "camB"}
    for cam, folder in (("camA", cam_a), ("camB", cam_b)):
        assert sorted(int(t) for t in ids[cam]) == sorted(read_features(folder).track_ids.tolist())
        assert all(isinstance(v, int) and v >= 1 for v in ids[cam].values())
    # every track of a camera is its own person there (people overlap in time in each camera)
    scores = pairwise_scores({c: {int(t): g for t, g in v.items()} for c, v in ids.items()}, truth)
    assert scores["f1"] > 0.2 and scores["precision"] > 0.2, scores  # no association: recall 0, F1 0

    for cam, folder in (("camA", cam_a), ("camB", cam_b)):
        src = read_mot(folder / "tracks.txt")
        got = read_mot(out / "global_tracks" / f"{cam}.txt")
        assert len(got) == len(src)
        assert np.array_equal(got.frame, src.frame) and np.allclose(got.xywh, src.xywh)
        assert got.track_id.tolist() == [ids[cam][str(t)] for t in src.track_id.tolist()]

    summary = json.loads((out / "summary.json").read_text())
    cam_ids = {c["name"]: c["camera_id"] for c in summary["cameras"]}
    assert cam_ids == {"camA": 1, "camB": 2}
    rows = [line.split() for line in (out / "mtmc.txt").read_text().splitlines()]
    assert len(rows) == sum(len(read_mot(f / "tracks.txt")) for f in (cam_a, cam_b))
    assert all(len(r) == 9 and r[7:] == ["-1", "-1"] for r in rows)
    row = rows[0]
    cam = {v: k for k, v in cam_ids.items()}[int(row[0])]
    assert int(row[1]) in set(ids[cam].values())
    assert summary["tracks"] == sum(len(v) for v in ids.values())
    assert summary["identities"] == len({(g) for v in ids.values() for g in v.values()})
    assert sum(summary["identities_per_number_of_cameras"].values()) == summary["identities"]
    assert summary["identities_multi_camera"] == summary["identities_per_number_of_cameras"].get("2", 0)
    assert summary["threshold"]["chosen"] == "auto" and summary["threshold"]["why"]
    assert set(summary["constraints"]["rejected_merges"]) >= {"same_camera_overlap"}
    assert set(summary["timings_seconds"]) >= {"graph", "threshold", "cluster", "total"}
    assert (out / "threshold_histogram.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left behind

    # a second run refuses to overwrite, and leaves the outputs alone
    before = (out / "global_ids.json").read_bytes()
    rc, _, err = _run(capsys, "--features", str(cam_a), "--features", str(cam_b), "--output-dir", str(out))
    assert rc != 0 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (out / "global_ids.json").read_bytes() == before


def test_cameras_file_fixed_threshold_and_topology(site, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    root, (cam_a, cam_b), truth = site
    yml = tmp_path / "cameras.yml"
    yml.write_text(f"cameras:\n  - {{name: camA, features: {cam_a}, fps: 10}}\n"
                   f"  - {{name: camB, features: {cam_b}, fps: 10, time_offset: 0}}\n"
                   "links:\n  - {cameras: [camA, camB], transit: [5, 40]}\n")
    out = tmp_path / "out"
    rc, stdout, err = _run(capsys, "--cameras", str(yml), "--output-dir", str(out), "--threshold", "0.45")
    assert rc == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["threshold"]["chosen"] == "fixed" and summary["threshold"]["threshold"] == 0.45
    assert summary["constraints"]["topology"] == [{"cameras": ["camA", "camB"], "transit": [5.0, 40.0]}]
    ids = json.loads((out / "global_ids.json").read_text())
    scores = pairwise_scores({c: {int(t): g for t, g in v.items()} for c, v in ids.items()}, truth)
    assert scores["f1"] > 0.2, scores
    # only a transit of 8-30 s happened in this site: a window that excludes it links nobody
    yml.write_text(yml.read_text().replace("[5, 40]", "[100, 200]"))
    rc, _, err = _run(capsys, "--cameras", str(yml), "--output-dir", str(out), "--threshold", "0.45", "--overwrite")
    assert rc == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["identities_multi_camera"] == 0
    assert summary["constraints"]["rejected_merges"]["topology_transit"] > 0


def _variant(src: Path, dst: Path, dims: int | None = None, sha: str | None = None) -> Path:
    shutil.copytree(src, dst)
    tf = read_features(dst)
    if dims:
        tf = TrackFeatures(tf.track_ids, tf.features[:, :dims], tf.all_features[:, :dims], tf.offsets,
                           tf.frame_indices, tf.meta)
    if sha:
        tf.meta["model"] = {**tf.meta["model"], "weights_sha256": sha}
    write_features(tf, dst, pkl=False)
    return dst


@pytest.mark.parametrize("case, message", [
    ("dims", "features have 256 dimensions but"),
    ("sha", "features of different models cannot be compared"),
    ("twice", "named twice"),
    ("missing_file", "no such cameras file"),
    ("malformed_file", "malformed YAML"),
    ("unknown_key", "did you mean 'features'"),
    ("topology_unknown_camera", "camera 'camC' is not one of the cameras"),
    ("missing_features", "no such features file"),
    ("hub_k", "--hub-k -1: expected a number of neighbours"),
    ("margin_negative", "--same-camera-margin -0.1: expected a similarity margin from 0 to 2"),
    ("margin_nan", "--same-camera-margin nan: expected a similarity margin from 0 to 2"),
])
def test_bad_input_one_line_nothing_written(site, tmp_path, capsys, case: str, message: str) -> None:  # type: ignore[no-untyped-def]
    _, (cam_a, cam_b), _ = site
    out = tmp_path / "out"
    yml = tmp_path / "cameras.yml"
    args: list[str] = []
    if case == "dims":
        args = ["--features", str(cam_a), "--features", str(_variant(cam_b, tmp_path / "camB", dims=256))]
    elif case == "sha":
        args = ["--features", str(cam_a), "--features", str(_variant(cam_b, tmp_path / "camB", sha="ab" * 32))]
    elif case == "twice":
        args = ["--features", str(cam_a), "--camera", "x", "--features", str(cam_b), "--camera", "x"]
    elif case == "missing_file":
        args = ["--cameras", str(tmp_path / "nope.yml")]
    elif case == "malformed_file":
        yml.write_text("cameras:\n  - {name: camA, features: [unclosed\n")
        args = ["--cameras", str(yml)]
    elif case == "unknown_key":
        yml.write_text(f"cameras:\n  - {{name: camA, featurs: {cam_a}}}\n")
        args = ["--cameras", str(yml)]
    elif case == "topology_unknown_camera":
        yml.write_text("links:\n  - {cameras: [camA, camC], transit: [1, 10]}\n")
        args = ["--features", str(cam_a), "--features", str(cam_b), "--topology", str(yml)]
    elif case == "missing_features":
        args = ["--features", str(cam_a), "--features", str(tmp_path / "nothing.npz")]
    elif case == "hub_k":
        args = ["--features", str(cam_a), "--features", str(cam_b), "--hub-k", "-1"]
    elif case.startswith("margin_"):
        value = {"margin_negative": "-0.1", "margin_nan": "nan"}[case]
        args = ["--features", str(cam_a), "--features", str(cam_b), "--same-camera-margin", value]
    rc, stdout, err = _run(capsys, *args, "--output-dir", str(out))
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trackreid associate: error:"), err
    assert message in lines[0]
    assert "Traceback" not in err
    assert not out.exists()


def test_threshold_method_is_used_and_recorded(site, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    _, (cam_a, cam_b), _ = site
    cuts = {}
    for method in ("chance", "bayes", "mixture"):
        out = tmp_path / method
        rc, stdout, err = _run(capsys, "--features", str(cam_a), "--features", str(cam_b), "--threshold-method",
                               method, "--output-dir", str(out))
        assert rc == 0, err
        info = json.loads((out / "summary.json").read_text())["threshold"]
        assert method in json.dumps(info)
        cuts[method] = info
    assert cuts["bayes"] != cuts["mixture"] != cuts["chance"] != cuts["bayes"]
    assert cuts["chance"]["method"] == "chance" and cuts["chance"]["null_pairs"] > 0
    from trackreid.associate import AssociateConfig
    from trackreid.errors import InputError

    with pytest.raises(InputError, match="otsu"):
        AssociateConfig(threshold_method="otsu")


def test_hub_k_corrects_graph_and_null_and_is_recorded(site, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """--hub-k K: every similarity, the null included, is lowered by its tracks' mean best other-camera
    similarity; the chance cut moves with the null (same number of sd above its median)."""
    _, (cam_a, cam_b), _ = site
    runs = {}
    for k in (0, 10):
        out = tmp_path / f"hub{k}"
        rc, stdout, err = _run(capsys, "--features", str(cam_a), "--features", str(cam_b), "--hub-k", str(k),
                               "--output-dir", str(out))
        assert rc == 0, err
        runs[k] = json.loads((out / "summary.json").read_text())
    plain, hub = runs[0], runs[10]
    assert plain["graph"]["scale_k"] == 0 and hub["graph"]["scale_k"] == 10 and hub["config"]["hub_k"] == 10
    # CUHK03 people after de-biasing: a track's 10 best other-camera cosines average well above 0,
    # so the corrected null sits lower by about that much
    shift = plain["graph"]["null"]["median"] - hub["graph"]["null"]["median"]
    assert 0.05 < shift < 0.5, shift
    t0, t1 = plain["threshold"], hub["threshold"]
    assert t1["method"] == "chance" and t1["z"] == pytest.approx(t0["z"])
    assert t1["null_median"] < t0["null_median"]
    cut0 = t0["null_median"] + t0["z"] * t0["null_sd"]
    cut1 = t1["null_median"] + t1["z"] * t1["null_sd"]
    assert t0["threshold"] == pytest.approx(cut0, abs=1e-6) and t1["threshold"] == pytest.approx(cut1, abs=1e-6)
    assert t1["null_median"] < t1["threshold"] < t0["threshold"]


def test_same_camera_margin_is_used_and_recorded(site, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """--same-camera-margin M: recorded in summary.json; the null (cross-camera) and so the auto cut do not
    move; fewer pairs of one camera's tracks end up as one person."""
    _, (cam_a, cam_b), _ = site
    runs = {}
    for m in ("0", "0.3"):
        out = tmp_path / f"margin{m}"
        rc, stdout, err = _run(capsys, "--features", str(cam_a), "--features", str(cam_b), "--same-camera-margin", m,
                               "--output-dir", str(out))
        assert rc == 0, err
        summary = json.loads((out / "summary.json").read_text())
        ids = json.loads((out / "global_ids.json").read_text())
        same = sum(len(v) * (len(v) - 1) // 2 for cam in ids.values()
                   for v in _groups(cam).values())  # pairs of one camera's tracks given one identity
        runs[m] = summary, same
    (plain, plain_same), (strict, strict_same) = runs["0"], runs["0.3"]
    assert plain["config"]["same_camera_margin"] == 0 and strict["config"]["same_camera_margin"] == 0.3
    assert strict["graph"]["same_camera_margin"] == 0.3
    assert strict["graph"]["null"] == plain["graph"]["null"]
    assert strict["threshold"]["threshold"] == plain["threshold"]["threshold"]
    assert plain_same > 0 and strict_same < plain_same, (plain_same, strict_same)


def _groups(cam_ids: dict[str, int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for t, g in cam_ids.items():
        out.setdefault(g, []).append(t)
    return out


def test_topology_auto_learns_the_transit_window(site, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    _, (cam_a, cam_b), truth = site
    args = ["--features", str(cam_a), "--features", str(cam_b), "--threshold", "0.3"]
    rc, stdout, err = _run(capsys, *args, "--output-dir", str(tmp_path / "auto"), "--topology", "auto")
    assert rc == 0, err
    summary = json.loads((tmp_path / "auto" / "summary.json").read_text())
    (pair,) = summary["constraints"]["topology_learned"]["pairs"]
    lo, hi = pair["transit"]
    assert pair["cameras"] == ["camA", "camB"] and pair["steps"] >= 4
    assert summary["constraints"]["topology"] == [{"cameras": ["camA", "camB"], "transit": [lo, hi]}]
    assert summary["config"]["topology"] == "auto"
    page = (tmp_path / "auto" / "report.html").read_text()
    line = f"camA-camB {lo:.1f}..{hi:.1f} s ({pair['steps']} links)"
    assert f"transit windows learned (--topology auto): {line}" in stdout
    assert f"Transit windows learned (--topology auto): {line}" in page
    # the window holds the true transits of the people both cameras saw (camB start - camA end)
    span = {}
    for cam, folder in (("camA", cam_a), ("camB", cam_b)):
        meta = json.loads((folder / "track_metadata.json").read_text())["tracks"]
        for tid, person in truth[cam].items():
            span[cam, person] = ((meta[str(tid)]["first_frame"] - 1) / 10, (meta[str(tid)]["last_frame"] - 1) / 10)
    transits = [span["camB", p][0] - span["camA", p][1] for c, p in span if c == "camA" and ("camB", p) in span]
    inside = np.mean([lo <= t <= hi for t in transits])
    assert inside >= 0.9, (lo, hi, sorted(transits))
    # the strangers the window keeps apart make the links more precise
    ids = json.loads((tmp_path / "auto" / "global_ids.json").read_text())
    rc, _, err = _run(capsys, *args, "--output-dir", str(tmp_path / "plain"))
    assert rc == 0, err
    plain = json.loads((tmp_path / "plain" / "global_ids.json").read_text())
    learned, fixed = (pairwise_scores({c: {int(t): g for t, g in v.items()} for c, v in x.items()}, truth)
                      for x in (ids, plain))
    assert learned["precision"] > fixed["precision"], (learned, fixed)
    assert summary["constraints"]["rejected_merges"]["topology_transit"] > 0


def test_the_motion_gate_reads_the_tracks_files_and_turns_off(site, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    _, (cam_a, cam_b), _ = site
    args = ["--features", str(cam_a), "--features", str(cam_b), "--threshold", "0.3"]
    rc, _, err = _run(capsys, *args, "--output-dir", str(tmp_path / "on"))
    assert rc == 0, err
    on = json.loads((tmp_path / "on" / "summary.json").read_text())
    n = on["tracks"]
    assert on["constraints"]["motion"] == {"slack_heights": 0.5, "heights_per_second": 1.0,
                                           "tracks_with_boxes": n, "tracks": n}
    assert on["config"]["motion_gate"] is True
    rc, _, err = _run(capsys, *args, "--output-dir", str(tmp_path / "off"), "--no-motion-gate")
    assert rc == 0, err
    off = json.loads((tmp_path / "off" / "summary.json").read_text())
    assert off["constraints"]["motion"] is None and off["config"]["motion_gate"] is False
    assert off["constraints"]["rejected_merges"]["motion"] == 0
