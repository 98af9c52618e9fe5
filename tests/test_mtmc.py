"""Multi-camera IDF1 (evaluate-mtmc) on tiny hand-made sites whose answer is computed by hand.

The site: camera 1 sees person 1 (frames 1-30) and person 2 (frames 1-20); camera 2 sees person 1
again (frames 1-10, the same frame numbers as in camera 1) and person 3 (frames 5-15).
71 ground-truth boxes in all: 30 + 20 in camera 1, 10 + 11 in camera 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trackreid.associate.mtmc import evaluate_mtmc
from trackreid.cli.main import main

# camera -> person -> (first frame, last frame, left, top); every box is 20 x 40
SITE = {
    "cam1": {1: (1, 30, 10, 10), 2: (1, 20, 100, 10)},
    "cam2": {1: (1, 10, 50, 10), 3: (5, 15, 200, 20)},
}
TOTAL = 71


def rows(camera: str, ids: dict[int, int] | None = None, dx: dict[int, float] | None = None) -> list[tuple]:
    """(frame, id, left, top, w, h) of one camera; ``ids`` relabels persons, ``dx`` shifts their boxes."""
    out = []
    for person, (first, last, left, top) in SITE[camera].items():
        pid = (ids or {}).get(person, person)
        shift = (dx or {}).get(person, 0.0)
        out += [(f, pid, left + shift + f, top, 20.0, 40.0) for f in range(first, last + 1)]
    return out


def write_gt(path: Path, r: list[tuple]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{f},{i},{x},{y},{w},{h},1,1,1.0\n" for f, i, x, y, w, h in r))
    return path


def write_pred(path: Path, r: list[tuple]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{f},{i},{x:.2f},{y:.2f},{w:.2f},{h:.2f},1,-1,-1,-1\n" for f, i, x, y, w, h in r))
    return path


def write_aicity(path: Path, per_camera: dict[int, list[tuple]]) -> Path:
    lines = [f"{c} {i} {f} {x} {y} {w} {h} -1 -1\n" for c, r in per_camera.items() for f, i, x, y, w, h in r]
    path.write_text("".join(lines))
    return path


@pytest.fixture()
def gt_dir(tmp_path: Path) -> Path:
    """Ground truth in the synth layout: <camera>/gt.txt."""
    for cam in SITE:
        write_gt(tmp_path / "site" / cam / "gt.txt", rows(cam))
    return tmp_path / "site"


def predict(root: Path, cam1: dict | None = None, cam2: dict | None = None, dx1: dict | None = None) -> Path:
    """An associate-like output folder: global_tracks/<camera>.txt."""
    write_pred(root / "step4" / "global_tracks" / "cam1.txt", rows("cam1", cam1, dx1))
    write_pred(root / "step4" / "global_tracks" / "cam2.txt", rows("cam2", cam2))
    return root / "step4"


def test_perfect_prediction_with_other_id_numbers_is_one(gt_dir: Path, tmp_path: Path) -> None:
    # ids are arbitrary labels: only their consistency across cameras counts. Person 1 is in both
    # cameras at the same frame numbers, which only works if the cameras are kept apart (offset).
    pred = predict(tmp_path, cam1={1: 501, 2: 7}, cam2={1: 501, 3: 9})
    r = evaluate_mtmc(gt_dir, pred)
    assert (r["idf1"], r["idp"], r["idr"]) == (1.0, 1.0, 1.0)
    assert (r["idtp"], r["idfp"], r["idfn"]) == (TOTAL, 0, 0)
    assert (r["num_gt_ids"], r["num_pred_ids"], r["num_gt_boxes"]) == (3, 3, TOTAL)
    assert r["cameras"] == ["cam1", "cam2"]


def test_person_split_across_cameras(gt_dir: Path, tmp_path: Path) -> None:
    # person 1 keeps id 1 in camera 1 (30 boxes) but gets 99 in camera 2 (10 boxes): the global
    # matching pairs 1 with 1, so the 10 boxes of 99 are false positives AND misses.
    r = evaluate_mtmc(gt_dir, predict(tmp_path, cam2={1: 99}))
    assert (r["idtp"], r["idfp"], r["idfn"]) == (61, 10, 10)
    assert r["idf1"] == pytest.approx(2 * 61 / (2 * 61 + 20))
    assert r["idp"] == pytest.approx(61 / 71) and r["idr"] == pytest.approx(61 / 71)


def test_two_people_merged_across_cameras(gt_dir: Path, tmp_path: Path) -> None:
    # person 3 (camera 2, 11 boxes) wrongly gets person 2's id (camera 1, 20 boxes): id 2 goes to
    # person 2, person 3 is missed entirely and id 2's camera-2 boxes are false positives.
    r = evaluate_mtmc(gt_dir, predict(tmp_path, cam2={3: 2}))
    assert (r["idtp"], r["idfp"], r["idfn"]) == (60, 11, 11)
    assert r["idf1"] == pytest.approx(120 / 142)
    assert r["num_pred_ids"] == 2


def test_camera_swap_is_caught(gt_dir: Path, tmp_path: Path) -> None:
    # the two camera files swapped: no box overlaps its ground truth
    pred = tmp_path / "swapped"
    write_pred(pred / "cam1.txt", rows("cam2"))
    write_pred(pred / "cam2.txt", rows("cam1"))
    r = evaluate_mtmc(gt_dir, pred)
    assert r["idtp"] == 0 and r["idf1"] == 0.0


@pytest.mark.parametrize(("shift", "min_iou", "idtp"), [
    (6.0, 0.5, TOTAL),        # IoU 560 / 1040 = 0.538: still the same box
    (7.0, 0.5, TOTAL - 30),   # IoU 520 / 1080 = 0.481: person 1's 30 camera-1 boxes miss
    (7.0, 0.45, TOTAL),
])
def test_boxes_match_at_iou(gt_dir: Path, tmp_path: Path, shift: float, min_iou: float, idtp: int) -> None:
    r = evaluate_mtmc(gt_dir, predict(tmp_path, dx1={1: shift}), min_iou=min_iou)
    assert r["idtp"] == idtp
    assert r["idfp"] == r["idfn"] == TOTAL - idtp


def test_aicity_ground_truth_and_prediction_agree_with_mot_folders(gt_dir: Path, tmp_path: Path) -> None:
    gt = write_aicity(tmp_path / "gt.txt", {1: rows("cam1"), 2: rows("cam2")})
    pred_mtmc = tmp_path / "out"
    pred_mtmc.mkdir()
    write_aicity(pred_mtmc / "mtmc.txt", {1: rows("cam1"), 2: rows("cam2", {1: 99})})
    # AI City ground truth (cameras 1, 2) against per-camera MOT files named cam1, cam2 ...
    assert evaluate_mtmc(gt, predict(tmp_path, cam2={1: 99}))["idtp"] == 61
    # ... and MOT ground truth against an associate folder holding only mtmc.txt
    assert evaluate_mtmc(gt_dir, pred_mtmc)["idtp"] == 61
    assert evaluate_mtmc({"cam1": gt_dir / "cam1" / "gt.txt", "cam2": gt_dir / "cam2" / "gt.txt"},
                         pred_mtmc / "mtmc.txt")["idtp"] == 61


def test_missing_camera_counts_as_missed(gt_dir: Path, tmp_path: Path) -> None:
    pred = tmp_path / "only1"
    write_pred(pred / "cam1.txt", rows("cam1"))
    r = evaluate_mtmc(gt_dir, pred)
    assert r["cameras_without_prediction"] == ["cam2"]
    assert (r["idtp"], r["idfp"], r["idfn"]) == (50, 0, 21)


def test_cli_table_and_json(gt_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    pred = predict(tmp_path, cam2={1: 99})
    assert main(["evaluate-mtmc", "--gt", str(gt_dir), "--pred", str(pred), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["idtp"] == 61 and r["idf1"] == pytest.approx(122 / 142)
    assert main(["evaluate-mtmc", "--gt", f"cam1={gt_dir / 'cam1' / 'gt.txt'}",
                 "--gt", f"cam2={gt_dir / 'cam2' / 'gt.txt'}", "--pred", str(pred)]) == 0
    out = capsys.readouterr().out
    assert "85.92" in out  # IDF1 = 122 / 142 in percent
    assert "cam1, cam2" in out


@pytest.mark.parametrize(("make", "message"), [
    (lambda t, g: ["--gt", str(t / "nope"), "--pred", str(g)], "no such file or folder"),
    (lambda t, g: ["--gt", str(g), "--pred", str(t / "empty")], "holds no camera files"),
    (lambda t, g: ["--gt", str(write_aicity_text(t / "bad.txt", "1 2 3 4 5 6 7 8\n1 2 x 4 5 6 7 8\n")),
                   "--pred", str(g)], "bad.txt:2: AI City rows hold numbers only"),
    (lambda t, g: ["--gt", str(write_aicity_text(t / "short.txt", "1 2 3 4 5\n")), "--pred", str(g)],
     "short.txt:1: expected 7 to 9 values"),
    (lambda t, g: ["--gt", str(g), "--pred", str(write_pred(t / "other" / "lobby.txt", rows("cam1")).parent)],
     "camera(s) lobby are not in the ground truth"),
    (lambda t, g: ["--gt", str(g), "--pred", str(write_pred(t / "dup" / "cam1.txt", rows("cam1", {2: 1})).parent)],
     "a track has one box per frame"),
    (lambda t, g: ["--gt", f"cam1={g / 'cam1' / 'gt.txt'}", "--gt", str(g), "--pred", str(g)],
     "--gt: give one PATH, or NAME=FILE once per camera"),
    (lambda t, g: ["--gt", str(g), "--pred", str(g), "--min-iou", "0"], "--min-iou must be in (0, 1]"),
])
def test_cli_bad_input_is_one_clear_line(gt_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         make, message: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty").mkdir()
    assert main(["evaluate-mtmc", *make(tmp_path, gt_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("trackreid evaluate-mtmc: error:") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def write_aicity_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
