"""`trackreid run --engine ray` on a local multi-node cluster (head + two worker nodes).

Ray picks the machine's outbound address, so these tests run only inside a network namespace
where loopback is the only interface (the Makefile's test target does this):
    unshare -n -- bash -c 'ip link set lo up; exec pytest -m ray tests/test_run_ray.py'
Outside one they skip (under CI=true they fail).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sites import (
    SEGMENT_MINUTES,
    assert_same_features,
    kill_when_done_marker,
    make_site,
    no_partial_files,
    require_network_namespace,
)
from trackreid.run import read_site, run_site

pytestmark = pytest.mark.ray
CAMS = ["cam1", "cam2", "cam3"]
KILLS = 5  # at most this many segments' workers are killed in the retry test (each segment once)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    require_network_namespace()
    if not os.environ.get("CI"):
        pytest.importorskip("ray", reason="pip install 'trackreid[ray]'")
    import ray
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    c.add_node(num_cpus=1)
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="session")
def ray_site(tmp_path_factory: pytest.TempPathFactory, msmt_pth: Path) -> Path:
    return make_site(tmp_path_factory.mktemp("ray_site"), msmt_pth)


@pytest.fixture(scope="session")
def ray_clean(cluster: Any, ray_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ray_clean") / "out"
    result = run_site(read_site(ray_site), out, engine="ray", segment_minutes=SEGMENT_MINUTES, associate=False)
    assert result.failures == {} and sorted(result.cameras) == CAMS
    return out


def test_a_site_completes_on_ray_with_the_features_of_the_local_engine(ray_clean: Path, ray_site: Path,
                                                                        tmp_path: Path) -> None:
    assert no_partial_files(ray_clean) == []
    local = tmp_path / "local"
    run_site(read_site(ray_site), local, engine="local", workers=2, segment_minutes=SEGMENT_MINUTES, associate=False)
    assert_same_features(ray_clean, local, CAMS)


def test_a_killed_ray_worker_is_retried_and_equals_a_clean_run(ray_clean: Path, ray_site: Path,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "out"
    killed: list[int] = []
    events: list[Any] = []

    def kill_workers(event: Any) -> None:
        # Kill the worker of a segment that has just said "start", until Ray's retry of one shows
        # (a second "start" of the same segment, which the engine reports as "retry"). A 30-frame
        # segment can end before its "start" is read, and then the kill hits an idle worker or a
        # task that has not said "start" yet: so up to KILLS segments, each killed once.
        events.append(event)
        retried = any(e[0] == "retry" for e in events)
        if event[0] == "start" and not retried and len(killed) < KILLS and event[1] not in killed_jobs:
            killed.append(event[2]["pid"])
            killed_jobs.add(event[1])
            os.kill(event[2]["pid"], signal.SIGKILL)

    killed_jobs: set[str] = set()
    result = run_site(read_site(ray_site), out, engine="ray", segment_minutes=SEGMENT_MINUTES,
                      on_event=kill_workers, associate=False)
    assert killed and result.failures == {}
    assert any(e[0] == "retry" for e in events), [(e[0], e[1], e[2].get("pid")) for e in events]
    assert_same_features(out, ray_clean, CAMS)
    assert no_partial_files(out) == []


def test_a_node_removed_mid_run_the_run_completes(cluster: Any, ray_clean: Path, ray_site: Path,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "out"
    removed: list[Any] = []

    def remove_a_node(event: Any) -> None:
        if event[0] == "start" and not removed:
            node = next(iter(cluster.worker_nodes))
            removed.append(node)
            cluster.remove_node(node)

    try:
        result = run_site(read_site(ray_site), out, engine="ray", segment_minutes=SEGMENT_MINUTES,
                          on_event=remove_a_node, associate=False)
    finally:
        if removed:
            cluster.add_node(num_cpus=1)  # the session's cluster keeps two worker nodes
    assert removed and result.failures == {}
    assert_same_features(out, ray_clean, CAMS)
    assert no_partial_files(out) == []


def test_a_killed_ray_driver_resumes_with_only_the_missing_segments(cluster: Any, ray_clean: Path, ray_site: Path,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "trackreid", "run", "--site", str(ray_site), "--output-dir", str(out),
           "--engine", "ray", "--address", cluster.address, "--workers", "1",
           "--segment-minutes", str(SEGMENT_MINUTES), "--no-associate", "--quiet"]
    kill_when_done_marker(cmd, out, "cameras/*/.parts/*.done.json", "run", poll=0.02)
    time.sleep(1.0)  # a task of the dead driver may still finish its part; either way it is whole or absent
    finished = len(list(out.glob("cameras/*/.parts/*.done.json")))
    assert 1 <= finished < 12
    events: list[Any] = []
    result = run_site(read_site(ray_site), out, engine="ray", segment_minutes=SEGMENT_MINUTES,
                      on_event=events.append, associate=False)
    assert events[0][2]["jobs"] == 12 - finished
    assert result.failures == {}
    assert_same_features(out, ray_clean, CAMS)
    assert no_partial_files(out) == []


def test_live_replay_with_camera_tasks_on_other_nodes_and_the_associator_as_one_actor(
        cluster: Any, ray_site: Path, tmp_path: Path) -> None:
    import json

    from tests.test_live import replay_events
    from trackreid.live.replay import run_live

    out = tmp_path / "live"
    result = run_live(read_site(ray_site), out, None, idle_frames=5, engine="ray")
    assert result.ok, result.failures
    cams = result.report["cameras"]
    assert {c["status"] for c in cams.values()} == {"done"}
    assert len({c["node"] for c in cams.values()}) >= 2  # spread over the cluster's nodes
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    final = json.loads((out / "associate" / "global_ids.json").read_text())
    assert sum(len(m) for m in final.values()) == result.report["tracks"] > 0
    assert replay_events(events)[-1] == {f"{c}:{t}": g for c, m in final.items() for t, g in m.items()}
