"""The motion gate: a camera's broken track joins its other piece only where the person was heading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trackreid.associate import AssociateConfig, CameraInput, associate
from trackreid.associate.motion import MOTION_RATE, MOTION_SLACK, Endpoints
from trackreid.embed.preprocess import l2_normalize
from trackreid.io.features import TrackFeatures
from trackreid.io.mot import read_mot

FPS = 10.0
H = 100.0  # box height, pixels


def walk(track: int, frames: range, x0: float, vx: float, bottom: float = 300.0) -> list[str]:
    """MOT rows of a person walking at ``vx`` pixels per frame, feet at ``bottom``; ``x0`` at frame ``frames[0]``."""
    rows = []
    for f in frames:
        x = x0 + vx * (f - frames[0])
        rows.append(f"{f},{track},{x - 20:.2f},{bottom - H:.2f},40,{H:.0f},0.9,-1,-1,-1")
    return rows


def write_mot(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_endpoints_read_the_motion_and_bound_the_error(tmp_path: Path) -> None:
    # track 1 walks right at 20 px/frame (200 px/s) over frames 1-20; track 2 continues it after 5 lost
    # frames (gap 0.6 s from frame 20 to 26); track 3 starts at frame 26 at the far left, walking left
    rows = walk(1, range(1, 21), 100, 20) + walk(2, range(26, 46), 100 + 20 * 25, 20) + walk(3, range(26, 40), 50, -5)
    tracks = read_mot(write_mot(tmp_path / "t.txt", rows))
    ep = Endpoints.empty(3)
    ep.fill(np.arange(3), np.array([1, 2, 3]), tracks, FPS)
    assert ep.known.all()
    assert ep.end_v[0] == pytest.approx([200.0, 0.0], abs=1e-6)
    assert ep.start_v[2] == pytest.approx([-50.0, 0.0], abs=1e-6)
    assert ep.end_xy[0] == pytest.approx([100 + 19 * 20, 300.0])
    assert ep.start_h[1] == pytest.approx(H)
    gap = 0.6
    assert ep.error(0, 1, gap) == pytest.approx(0.0, abs=1e-6)
    # track 3 starts 430 px left of track 1's end (x 480) and 550 px left of where track 1 was heading;
    # carried back 0.6 s at its own -50 px/s it was at x 80, 400 px away: the smaller error, 4 heights
    assert ep.error(0, 2, gap) == pytest.approx(4.0, abs=1e-6)
    assert ep.allows(0, 1, gap)
    assert not ep.allows(0, 2, gap)
    # after a gap g the smaller error is (430 - 50 g) / 100 heights, within 0.5 + g from g = 3.8 / 1.5 on
    assert (MOTION_SLACK, MOTION_RATE) == (0.5, 1.0)
    assert not ep.allows(0, 2, 3.8 / 1.5 - 0.01)
    assert ep.allows(0, 2, 3.8 / 1.5 + 0.01)
    # an unknown track is never gated
    ep.known[2] = False
    assert ep.allows(0, 2, gap)


def one_camera(tmp_path: Path) -> tuple[CameraInput, CameraInput]:
    """Camera a: track 1 (frames 1-20) walks right; track 3 appears far left (frames 26-35); track 2 (frames
    41-60) continues track 1's walk 2 s later. Camera b: one unrelated person. All of camera a's tracks
    look identical, so only their motion tells them apart."""
    rows = walk(1, range(1, 21), 20, 5) + walk(3, range(26, 36), 600, -5) + walk(2, range(41, 61), 20 + 5 * 40, 5)
    file_a = write_mot(tmp_path / "a.txt", rows)
    file_b = write_mot(tmp_path / "b.txt", walk(7, range(1, 30), 100, 3))
    rng = np.random.default_rng(0)
    same = l2_normalize(rng.standard_normal((1, 16))).astype(np.float32)
    other = l2_normalize(rng.standard_normal((1, 16))).astype(np.float32)

    def features(ids: list[int], first: list[int], last: list[int], f: np.ndarray) -> TrackFeatures:
        frames = [np.array([a, b]) for a, b in zip(first, last, strict=True)]
        return TrackFeatures(np.array(ids), f, np.repeat(f, 2, axis=0), np.arange(0, 2 * len(ids) + 1, 2),
                             np.concatenate(frames))

    a = CameraInput("a", features([1, 2, 3], [1, 41, 26], [20, 60, 35], np.repeat(same, 3, axis=0)), fps=FPS,
                    tracks=file_a)
    b = CameraInput("b", features([7], [1], [29], other), fps=FPS, tracks=file_b)
    return a, b


def test_a_teleporting_look_alike_stays_apart_and_the_broken_track_joins(tmp_path: Path) -> None:
    cams = one_camera(tmp_path)
    gated = associate(cams, AssociateConfig(threshold=0.5))
    ids = gated.global_ids["a"]
    assert ids[1] == ids[2] != ids[3]
    assert gated.summary["constraints"]["rejected_merges"]["motion"] >= 1
    motion = gated.summary["constraints"]["motion"]
    assert motion == {"slack_heights": MOTION_SLACK, "heights_per_second": MOTION_RATE, "tracks_with_boxes": 4,
                      "tracks": 4}
    free = associate(cams, AssociateConfig(threshold=0.5, motion_gate=False))
    assert len(set(free.global_ids["a"].values())) == 1  # without the gate the look-alike joins
    assert free.summary["constraints"]["motion"] is None


def test_without_a_tracks_file_nothing_is_gated(tmp_path: Path) -> None:
    a, b = one_camera(tmp_path)
    a.tracks = None
    result = associate((a, b), AssociateConfig(threshold=0.5))
    assert len(set(result.global_ids["a"].values())) == 1
    assert result.summary["constraints"]["motion"]["tracks_with_boxes"] == 1  # camera b's track only


def test_a_track_extract_skipped_gets_its_own_identity(tmp_path: Path) -> None:
    # the tracks file (read once for the motion gate and for this) holds track 9, which has no features
    a, b = one_camera(tmp_path)
    assert a.tracks is not None
    with a.tracks.open("a", encoding="utf-8") as f:
        f.write("\n".join(walk(9, range(70, 80), 300, 2)) + "\n")
    result = associate((a, b), AssociateConfig(threshold=0.5))
    ids = result.global_ids["a"]
    assert sorted(ids) == [1, 2, 3, 9]
    assert ids[9] not in {g for cam in result.global_ids.values() for t, g in cam.items() if t != 9}
    assert result.summary["tracks_without_features"] == 1
    assert result.summary["identities"] == len({g for cam in result.global_ids.values() for g in cam.values()})
