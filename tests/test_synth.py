"""The synthetic multi-camera site: its ground truth is exact and it has what association needs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from trackreid.errors import InputError
from trackreid.io.mot import read_mot
from trackreid.synth import SiteSpec, cuhk03_people, drawn_people, make_site


@pytest.fixture(scope="module")
def drawn_site(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    spec = SiteSpec(cameras=3, identities=12, shared_fraction=0.5, seconds=24, fps=8, width=320, height=180,
                    fragment_fraction=0.3, seed=3)
    return make_site(tmp_path_factory.mktemp("site"), spec, drawn_people(12))


def _rows(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def test_videos_have_every_frame_at_the_size_asked(drawn_site) -> None:  # type: ignore[no-untyped-def]
    for cam in drawn_site.cameras:
        cap = cv2.VideoCapture(str(cam.video))
        n = 0
        while cap.grab():
            n += 1
        assert n == 24 * 8
        assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (320, 180)


def test_tracks_map_to_people_and_agree_with_ground_truth(drawn_site) -> None:  # type: ignore[no-untyped-def]
    shared = [p for p, d in drawn_site.people.items() if len(d["cameras"]) > 1]  # type: ignore[arg-type]
    assert 0 < len(shared) < 12
    for cam in drawn_site.cameras:
        gt, trk = _rows(cam.gt), _rows(cam.tracks)
        truth = drawn_site.truth[cam.name]
        assert set(np.unique(trk[:, 1]).astype(int)) == set(truth)
        for tid, person in truth.items():
            t = trk[trk[:, 1] == tid]
            for frame, x, y, w, h in t[:, [0, 2, 3, 4, 5]]:  # each tracker box lies on its person's true box
                g = gt[(gt[:, 0] == frame) & (gt[:, 1] == person)]
                assert len(g) == 1
                gx, gy, gw, gh = g[0, 2:6]
                iou_w = max(0.0, min(x + w, gx + gw) - max(x, gx))
                iou_h = max(0.0, min(y + h, gy + gh) - max(y, gy))
                inter = iou_w * iou_h
                assert inter / (w * h + gw * gh - inter) > 0.6
        assert set(read_mot(cam.tracks).ids.tolist()) == set(truth)  # our own reader takes the file
        g = read_mot(cam.gt)  # recognised as ground truth (9 columns), nothing filtered out
        assert len(g) == len(gt)


def test_same_camera_people_overlap_in_time_and_tracks_break(drawn_site) -> None:  # type: ignore[no-untyped-def]
    overlaps, same_person_pairs = 0, 0
    for cam in drawn_site.cameras:
        trk = _rows(cam.tracks)
        spans = {int(t): (trk[trk[:, 1] == t, 0].min(), trk[trk[:, 1] == t, 0].max()) for t in np.unique(trk[:, 1])}
        ids = sorted(spans)
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                if spans[a][0] <= spans[b][1] and spans[b][0] <= spans[a][1]:
                    overlaps += 1
                    assert drawn_site.truth[cam.name][a] != drawn_site.truth[cam.name][b]
                elif drawn_site.truth[cam.name][a] == drawn_site.truth[cam.name][b]:
                    same_person_pairs += 1  # a track the tracker broke in two
    assert overlaps > 0
    assert same_person_pairs > 0


def test_transit_between_adjacent_cameras_is_within_the_spec(drawn_site) -> None:  # type: ignore[no-untyped-def]
    fps = drawn_site.spec.fps
    first_last: dict[tuple[str, int], tuple[float, float]] = {}
    for cam in drawn_site.cameras:
        gt = _rows(cam.gt)
        for p in np.unique(gt[:, 1]).astype(int):
            f = gt[gt[:, 1] == p, 0]
            first_last[(cam.name, p)] = ((f.min() - 1) / fps, (f.max() - 1) / fps)
    checked = 0
    for (a, b), (lo, hi) in drawn_site.transit.items():
        for (cam, p), (_, end_a) in first_last.items():
            if cam == a and (b, p) in first_last:
                start_b = first_last[(b, p)][0]
                gap = start_b - end_a if start_b > end_a else first_last[(a, p)][0] - first_last[(b, p)][1]
                assert lo - 2 / fps <= gap <= hi + 2 / fps
                checked += 1
    assert checked > 0


def test_files_written(drawn_site) -> None:  # type: ignore[no-untyped-def]
    import yaml

    site = yaml.safe_load(drawn_site.site_yml.read_text())
    assert [c["name"] for c in site["cameras"]] == ["cam1", "cam2", "cam3"]
    assert (drawn_site.out_dir / site["cameras"][0]["video"]).is_file()
    truth = json.loads(drawn_site.truth_json.read_text())
    assert {int(k): v for k, v in truth["tracks"]["cam2"].items()} == drawn_site.truth["cam2"]
    assert not list(drawn_site.out_dir.rglob("*.tmp"))


def test_real_crops_show_each_camera_its_own_view(cuhk03_val: Path, tmp_path: Path) -> None:
    people = cuhk03_people(cuhk03_val)
    assert len(people.ids) == 100
    a, b = people.images(people.ids[0], 0), people.images(people.ids[0], 1)
    assert len(a) == 5 and len(b) == 5
    assert not any(x.shape == y.shape and np.array_equal(x, y) for x in a for y in b)
    site = make_site(tmp_path, SiteSpec(cameras=2, identities=6, seconds=15, fps=5, width=320, height=180,
                                        dwell=(2.0, 4.0), transit=(1.0, 3.0)), people)
    assert sum(len(m) for m in site.truth.values()) >= 6


def test_bad_specs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="codec"):
        SiteSpec(codec="xvid")
    with pytest.raises(InputError, match="too short"):
        SiteSpec(seconds=5)
    with pytest.raises(InputError, match="identities"):
        make_site(tmp_path, SiteSpec(identities=30), drawn_people(10))
    with pytest.raises(InputError, match="no such folder"):
        cuhk03_people(tmp_path / "missing")
