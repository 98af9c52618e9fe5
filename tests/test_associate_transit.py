"""``--topology auto``: transit windows learned from the steps between cameras within identities."""

from __future__ import annotations

import numpy as np
import pytest

from trackreid.associate import AssociateConfig, CameraInput, TrackSet, associate
from trackreid.associate.transit import MIN_SD, MIN_STEPS, SPREAD, camera_steps, learn_topology
from trackreid.embed.preprocess import l2_normalize
from trackreid.io.features import TrackFeatures


def test_windows_from_the_steps_within_identities() -> None:
    # five people a -> b with transits 4, 5, 5, 6 and 30 s (one wrong link far out); two people b -> c
    transits = [4.0, 5.0, 5.0, 6.0, 30.0]
    cam, start, end, label = [], [], [], []
    for p, t in enumerate(transits):
        cam += [0, 1]
        start += [10.0 * p, 10.0 * p + 3 + t]
        end += [10.0 * p + 3, 10.0 * p + 8 + t]
        label += [p, p]
    for p in (10, 11):
        cam += [1, 2]
        start += [100.0 * p, 100.0 * p + 10]
        end += [100.0 * p + 5, 100.0 * p + 20]
        label += [p, p]
    n = len(cam)
    ts = TrackSet(["a", "b", "c"], cam, np.arange(n), start, end, l2_normalize(np.ones((n, 4))))
    labels = np.array(label)
    assert sorted(camera_steps(ts, labels)[(0, 1)]) == transits
    assert camera_steps(ts, labels)[(1, 2)] == [5.0, 5.0]
    topo, learned = learn_topology(ts, labels)
    # median 5, MAD 1: sd 1.4826, window 5 +- 3 x 1.4826; the 30 s link does not move it
    assert (SPREAD, MIN_STEPS, MIN_SD) == (3.0, 4, 1.0)
    ab = next(e for e in learned if e["cameras"] == ["a", "b"])
    assert ab["steps"] == 5 and ab["median"] == 5.0 and ab["sd"] == pytest.approx(1.483, abs=1e-3)
    assert ab["transit"] == pytest.approx([5 - 3 * 1.4826, 5 + 3 * 1.4826], abs=1e-3)
    # too few steps (2 < 4) or none: listed without a window, so never forbidden
    assert [e["transit"] for e in learned if e["cameras"] != ["a", "b"]] == [None, None]
    assert {tuple(x["cameras"]) for x in topo["links"]} == {("a", "b"), ("a", "c"), ("b", "c")}
    assert [x for x in topo["links"] if "transit" not in x] == [{"cameras": ["a", "c"]}, {"cameras": ["b", "c"]}]
    # four equal transits: the window keeps MIN_SD of spread
    start, end = ts.start.copy(), ts.end.copy()
    start[[1, 3, 5, 7]] = end[[0, 2, 4, 6]] + 5.0  # four a -> b transits of exactly 5 s
    end[[1, 3, 5, 7]] = start[[1, 3, 5, 7]] + 5.0
    equal = TrackSet(ts.cameras, ts.camera, ts.track_id, start, end, ts.features)
    _, tight = learn_topology(equal, np.where(np.arange(n) < 8, labels, -np.arange(n) - 1))
    assert tight[0]["steps"] == 4 and tight[0]["transit"] == [2.0, 8.0]


def test_a_stranger_with_an_implausible_transit_is_kept_apart() -> None:
    # people 0-5 cross camera a (5 s each, 20 s apart); people 1-5 reach camera b 4-6 s after leaving it;
    # person 0 never does, but a stranger who looks like them (cosine about 0.8) crosses b 38 s after
    # person 0 left a: without a window the stranger takes person 0's identity, with the learned one not
    rng = np.random.default_rng(1)
    people = l2_normalize(rng.standard_normal((6, 32))).astype(np.float32)
    stranger = l2_normalize(people[0] + 0.75 * l2_normalize(rng.standard_normal(32))).astype(np.float32)
    a_start = np.arange(6) * 20.0
    b_start = np.r_[a_start[1:] + 5 + np.array([4.0, 5.0, 5.5, 6.0, 4.5]), a_start[0] + 5 + 38]

    def tf(ids: list[int], f: np.ndarray, start: np.ndarray) -> TrackFeatures:  # 5 s tracks at 10 fps
        frames = np.c_[start * 10 + 1, (start + 5) * 10 + 1].astype(np.int64).ravel()
        return TrackFeatures(np.array(ids), f, np.repeat(f, 2, axis=0), np.arange(0, 2 * len(ids) + 1, 2), frames)

    cams = [CameraInput("a", tf([1, 2, 3, 4, 5, 6], people, a_start), fps=10.0),
            CameraInput("b", tf([12, 13, 14, 15, 16, 99], np.vstack([people[1:], stranger[None]]), b_start), fps=10.0)]
    plain = associate(cams, AssociateConfig(threshold=0.5))
    learned = associate(cams, AssociateConfig(threshold=0.5, topology="auto"))
    assert plain.global_ids["b"][99] == plain.global_ids["a"][1]
    assert learned.global_ids["b"][99] != learned.global_ids["a"][1]
    for k in range(2, 7):  # the five true links stay
        assert learned.global_ids["a"][k] == learned.global_ids["b"][10 + k]
    (pair,) = learned.summary["constraints"]["topology_learned"]["pairs"]
    assert pair["cameras"] == ["a", "b"] and pair["steps"] == 6  # five true links and the stranger's
    assert pair["transit"][0] < 4.0 and 6.0 < pair["transit"][1] < 38.0
    assert learned.summary["constraints"]["rejected_merges"]["topology_transit"] >= 1
