"""Live association: constraints after every event, restart from the state, the replay command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackreid.associate import AssociateConfig
from trackreid.associate.constraints import Constraints
from trackreid.associate.live import LiveAssociator, LiveTrack, revision_labels
from trackreid.associate.synthetic import synthetic_tracks
from trackreid.associate.tracks import TrackSet
from trackreid.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def _feed(tracks: TrackSet, motion: np.ndarray | None = None) -> list[tuple[str, LiveTrack]]:
    """The tracks in the order they end, as a camera would send them."""
    order = np.lexsort((tracks.track_id, tracks.camera, tracks.end))
    return [(tracks.cameras[int(tracks.camera[r])],
             LiveTrack(int(tracks.track_id[r]), float(tracks.start[r]), float(tracks.end[r]), tracks.features[r],
                       None if motion is None or not np.isfinite(motion[r]).all() else motion[r]))
            for r in order.tolist()]


def replay_events(events: list[dict[str, Any]]) -> list[dict[str, int]]:
    """The identity of every track after each event (camera:track -> identity), from the events alone."""
    ids: dict[str, int] = {}
    states = []
    for e in events:
        if e["event"] == "assigned":
            assert e["tracks"][0] not in ids
            ids[e["tracks"][0]] = e["identity"]
        elif e["event"] == "split":
            for g, keys in e["into"].items():
                for k in keys:
                    assert ids[k] == e["identity"]
                    ids[k] = int(g)
        else:
            assert e["event"] == "merged"
            for k in e["tracks"]:
                assert ids[k] in e["absorbed"]
                ids[k] = e["identity"]
            assert not set(ids.values()) & set(e["absorbed"])  # every track of an absorbed identity moved
        states.append(dict(ids))
    return states


def _violations(tracks: TrackSet, endpoints: Any, config: AssociateConfig, ids: dict[str, int]) -> list[str]:
    cons = Constraints(tracks, config.topology, config.max_gap, config.revisit_gap, endpoints)
    row = {tracks.label(r): r for r in range(len(tracks))}
    groups: dict[int, list[int]] = {}
    for key, g in ids.items():
        groups.setdefault(g, []).append(row[key])
    return [f"identity {g}: {reason}" for g, rows in groups.items()
            if (reason := cons.violation(rows)) is not None]


@st.composite
def sites(draw: Any) -> tuple[TrackSet, np.ndarray | None, AssociateConfig, int]:
    cams = draw(st.integers(2, 4))
    n = draw(st.integers(20, 70))
    seed = draw(st.integers(0, 10_000))
    tracks, _ = synthetic_tracks(n, cams, tracks_per_identity=draw(st.sampled_from([2.0, 4.0, 8.0])), dim=32,
                                 noise=draw(st.sampled_from([0.3, 0.6, 0.9])),
                                 seconds=draw(st.sampled_from([60.0, 300.0])), seed=seed)
    rng = np.random.default_rng(seed)
    motion = None
    if draw(st.booleans()):  # boxes known for about half the tracks
        motion = np.c_[rng.uniform(0, 640, (n, 2)), rng.normal(0, 40, (n, 2)), rng.uniform(60, 200, n),
                       rng.uniform(0, 640, (n, 2)), rng.normal(0, 40, (n, 2)), rng.uniform(60, 200, n)]
        motion[rng.random(n) < 0.5] = np.nan
    topology = None
    if draw(st.booleans()):
        links = [{"cameras": [f"cam{a + 1}", f"cam{b + 1}"],
                  "transit": [float(rng.uniform(-5, 10)), float(rng.uniform(20, 80))]}
                 for a in range(cams) for b in range(a + 1, cams) if rng.random() < 0.7]
        topology = {"links": links}
    config = AssociateConfig(
        threshold=draw(st.sampled_from(["auto", 0.2, 0.4])), topology=topology,
        max_gap=draw(st.sampled_from([None, 30.0, 90.0])), revisit_gap=draw(st.sampled_from([None, 3.0, 20.0])),
        linkage=draw(st.sampled_from(["average", "single"])))
    return tracks, motion, config, draw(st.integers(1, 15))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_constraints_hold_after_every_event(site: tuple[TrackSet, np.ndarray | None, AssociateConfig, int]) -> None:
    tracks, motion, config, every = site
    events: list[dict[str, Any]] = []
    with LiveAssociator(tracks.cameras, config, revise="every", revise_every=every, on_event=events.append) as live:
        for cam, t in _feed(tracks, motion):
            live.add(cam, t)
        live.finish()
        snap, endpoints = live.tracks()
        final = {snap.label(r): int(g) for r, g in enumerate(live.identity.tolist())}
        refused = live.stats["changes_refused"]
    states = replay_events(events)
    assert states[-1] == final  # the events tell every change
    for i, ids in enumerate(states):
        assert _violations(snap, endpoints, config, ids) == [], events[i]
    # the final answer is the offline one on the same tracks (unless a change was refused)
    labels, _ = revision_labels(snap, endpoints, config)
    if not refused:
        pairs = {(int(g), int(lab)) for g, lab in zip(live.identity.tolist(), labels.tolist(), strict=True)}
        assert len(pairs) == len({g for g, _ in pairs}) == len({lab for _, lab in pairs})


def test_first_answers_join_the_same_person_before_any_revision() -> None:
    tracks, ident = synthetic_tracks(60, 3, tracks_per_identity=6, dim=64, noise=0.3, seed=3)
    live = LiveAssociator(tracks.cameras, AssociateConfig(threshold=0.3, revisit_gap=None), revise="off")
    feed = _feed(tracks)
    row = {tracks.label(r): r for r in range(len(tracks))}
    for cam, t in feed:
        live.add(cam, t)
    first = live.first_ids()
    got = np.array([first[tracks.cameras[int(tracks.camera[r])]][int(tracks.track_id[r])] for r in range(len(tracks))])
    same = ident[:, None] == ident[None, :]
    joined = got[:, None] == got[None, :]
    off = ~np.eye(len(tracks), dtype=bool)
    assert joined[off & same].mean() > 0.5  # most of a person's tracks share the first answer
    assert joined[off & ~same].mean() < 0.05  # hardly any two people do
    assert len(row) == len(tracks)


_CHILD = r"""
import json, os, signal, sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_live import _feed, _config
from trackreid.associate.live import LiveAssociator
from trackreid.associate.synthetic import synthetic_tracks
tracks, _ = synthetic_tracks(90, 3, tracks_per_identity=5, dim=32, noise=0.5, seed=7)
live = LiveAssociator(tracks.cameras, _config(), state={state!r}, revise="every", revise_every=7)
for i, (cam, t) in enumerate(_feed(tracks)):
    if live.has(cam, t.track_id):
        continue
    live.add(cam, t)
    if i + 1 == {kill_at}:
        with open({ids!r} + ".tmp", "w") as f:
            json.dump(live.global_ids(), f)
        os.replace({ids!r} + ".tmp", {ids!r})
        os.kill(os.getpid(), signal.SIGKILL)
"""


def _config() -> AssociateConfig:
    return AssociateConfig(revisit_gap=20.0, max_gap=120.0)


def _json_ids(ids: dict[str, dict[int, int]]) -> dict[str, dict[str, int]]:
    return {c: {str(t): g for t, g in m.items()} for c, m in ids.items()}


@pytest.mark.parametrize("kill_at", [13, 50])
def test_a_killed_associator_restarts_from_its_state_with_the_same_identities(tmp_path: Path, kill_at: int) -> None:
    state, ids = tmp_path / "live.sqlite", tmp_path / "ids.json"
    code = _CHILD.format(tests=str(ROOT / "tests"), state=str(state), kill_at=kill_at, ids=str(ids))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    before = json.loads(ids.read_text())
    tracks, _ = synthetic_tracks(90, 3, tracks_per_identity=5, dim=32, noise=0.5, seed=7)
    with LiveAssociator(tracks.cameras, _config(), state=state, revise="every", revise_every=7) as live:
        assert live.n == kill_at
        assert _json_ids(live.global_ids()) == before  # where it stopped
        for cam, t in _feed(tracks):
            if not live.has(cam, t.track_id):
                live.add(cam, t)
        live.finish()
        resumed, resumed_events = live.global_ids(), live.events()
    unbroken: list[dict[str, Any]] = []
    with LiveAssociator(tracks.cameras, _config(), revise="every", revise_every=7, on_event=unbroken.append) as live:
        for cam, t in _feed(tracks):
            live.add(cam, t)
        live.finish()
        assert live.global_ids() == resumed  # as if it had never stopped
    strip = [{k: v for k, v in e.items() if k != "time"} for e in resumed_events]
    assert strip == [{k: v for k, v in e.items() if k != "time"} for e in unbroken]
    assert replay_events(resumed_events)[-1] == {f"{c}:{t}": g for c, m in resumed.items() for t, g in m.items()}


def test_a_state_for_other_cameras_or_options_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "live.sqlite"
    tracks, _ = synthetic_tracks(10, 2, dim=16, seed=1)
    with LiveAssociator(tracks.cameras, state=state) as live:
        for cam, t in _feed(tracks)[:3]:
            live.add(cam, t)
    with pytest.raises(InputError, match="other cameras"):
        LiveAssociator(["cam1", "cam9"], state=state)
    with pytest.raises(InputError, match="other config"):
        LiveAssociator(tracks.cameras, AssociateConfig(max_gap=5.0), state=state)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(InputError, match="not a live state file"):
        LiveAssociator(tracks.cameras, state=tmp_path / "junk.sqlite")


def test_bad_tracks_are_refused_with_one_message() -> None:
    live = LiveAssociator(["camA", "camB"], revise="off")
    f = np.ones(8, np.float32)
    live.add("camA", LiveTrack(1, 0.0, 2.0, f))
    with pytest.raises(InputError, match="not one of the site's cameras"):
        live.add("cama", LiveTrack(2, 0.0, 2.0, f))
    with pytest.raises(InputError, match="added already"):
        live.add("camA", LiveTrack(1, 3.0, 4.0, f))
    with pytest.raises(InputError, match="8"):
        live.add("camB", LiveTrack(2, 0.0, 2.0, np.ones(4, np.float32)))
    with pytest.raises(InputError, match="not a time span"):
        live.add("camB", LiveTrack(3, 5.0, 2.0, f))
    with pytest.raises(InputError, match="not finite"):
        live.add("camB", LiveTrack(4, 0.0, 2.0, np.full(8, np.nan, np.float32)))
    with pytest.raises(InputError, match="topology file"):
        LiveAssociator(["camA", "camB"], AssociateConfig(topology="auto"))
    assert live.n == 1


def test_background_revisions_reach_the_offline_answer() -> None:
    tracks, _ = synthetic_tracks(120, 3, tracks_per_identity=6, dim=32, noise=0.5, seed=11)
    config = AssociateConfig(revisit_gap=None)
    with LiveAssociator(tracks.cameras, config, revise="background") as live:
        for cam, t in _feed(tracks):
            live.add(cam, t)
        live.finish()
        snap, ep = live.tracks()
        assert live.stats["revisions"] >= 1
        labels, _ = revision_labels(snap, ep, config)
        pairs = {(int(g), int(lab)) for g, lab in zip(live.identity.tolist(), labels.tolist(), strict=True)}
        assert len(pairs) == len({g for g, _ in pairs}) == len({lab for _, lab in pairs})
        ids = {snap.label(r): int(g) for r, g in enumerate(live.identity.tolist())}
        assert _violations(snap, ep, config, ids) == []


def test_a_cameras_kept_boxes_give_the_motion_of_the_whole_track(tmp_path: Path) -> None:
    from trackreid.associate.motion import Endpoints
    from trackreid.io.mot import read_mot
    from trackreid.live.camera import _Boxes
    from trackreid.sample import make_sample

    make_sample(tmp_path, seconds=6.0, width=320, height=240, people=4, seed=5)
    trk = read_mot(tmp_path / "sample_tracks.txt")
    fps = 25.0
    ids = np.unique(trk.track_id)
    full = Endpoints.empty(len(ids))
    full.fill(np.arange(len(ids)), ids, trk, fps)
    assert full.known.all()
    for r, tid in enumerate(ids.tolist()):
        m = trk.track_id == tid
        kept = _Boxes(max(2, int(round(fps))))
        for f, box in sorted(zip(trk.frame[m].tolist(), trk.xywh[m].tolist(), strict=True)):
            kept.add(f, np.array(box))
        frames, xywh = kept.arrays()
        assert len(frames) < m.sum()  # long tracks: only the two ends are kept
        t = LiveTrack.from_boxes(tid, frames, xywh, np.ones(4), fps)
        assert t.motion is not None
        np.testing.assert_allclose(t.motion[:5], [*full.start_xy[r], *full.start_v[r], full.start_h[r]])
        np.testing.assert_allclose(t.motion[5:], [*full.end_xy[r], *full.end_v[r], full.end_h[r]])
        assert (t.start, t.end) == ((trk.frame[m].min() - 1) / fps, (trk.frame[m].max() - 1) / fps)
