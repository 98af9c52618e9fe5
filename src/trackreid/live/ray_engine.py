"""``trackreid live --engine ray``: camera collectors as Ray tasks on any node, the associator one Ray actor.

The associator (:class:`~trackreid.live.replay.Associator`: the
:class:`~trackreid.associate.live.LiveAssociator`, its SQLite state and ``events.jsonl``) is one actor
pinned to this node; each camera is one task, spread over the cluster's nodes, running the same camera
loop as the local engine (:func:`~trackreid.live.replay._camera_main`) and sending each ended track
straight to the actor (calls from one task run in the order they were made). A camera task that is
lost (its node gone, its worker killed) is reported; the others go on. The output folder must be on
storage every node sees (the cameras write their features there).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from trackreid.errors import InputError
from trackreid.run.site import Camera, Site, SiteOptions


class _ActorSink:
    """What a camera task puts its messages in: the associator actor (``started`` also names the node)."""

    def __init__(self, actor: Any, node: str) -> None:
        self.actor, self.node = actor, node

    def put(self, item: tuple[Any, ...]) -> None:
        if item[0] == "started":
            item = (item[0], item[1], {**item[2], "node": self.node}, *item[3:])
        self.actor.put.remote(item)


def _camera_task(cam: Camera, options: SiteOptions, out_dir: str, actor: Any, speed: float | None, t0: float,
                 clock0: float, idle_frames: int) -> str:
    import ray

    from trackreid.live.replay import _camera_main

    node = ray.get_runtime_context().get_node_id()
    with contextlib.suppress(SystemExit):  # a failure: sent to the actor already
        _camera_main(cam, options, out_dir, _ActorSink(actor, node), speed, t0, clock0, 1, idle_frames)
    return node


def replay(site: Site, out: Path, speed: float | None, idle_frames: int, t0: float, clock0: float,
           address: str | None) -> dict[str, Any]:
    """Run the replay on Ray (module docstring); what :meth:`Associator.finish` returns."""
    try:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install 'trackreid[ray]' (on every node)") from None
    from trackreid.live.replay import EVENTS, STATE, Associator

    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise InputError(f"--address {address}: cannot join the Ray cluster ({e}); start it with "
                             "`ray start --head` or omit --address for a local Ray instance") from None
    try:
        here = ray.get_runtime_context().get_node_id()
        names = [c.name for c in site.cameras]
        actor_cls: Any = ray.remote(Associator).options(
            num_cpus=0, max_concurrency=1, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
        actor: Any = actor_cls.remote(names, site.options.associate, str(out / STATE), str(out / EVENTS))
        task = ray.remote(_camera_task).options(num_cpus=1, max_retries=0, scheduling_strategy="SPREAD")
        refs = {task.remote(cam, site.options, str(out / "cameras" / cam.name), actor, speed,
                            # the clock starts once the tasks are placed: give them time to load the model
                            t0 + 5.0, clock0, idle_frames): cam.name for cam in site.cameras}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
            for ref in ready:
                name = refs.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as e:
                    actor.fail.remote(name, f"the camera task was lost ({type(e).__name__}); check the Ray node")
            ray.get(actor.poll.remote())
        status = ray.get(actor.poll.remote())
        for name, st in status.items():  # a task that ended without saying done or failed
            if st == "running":
                actor.fail.remote(name, "the camera task ended without finishing its video")
        final: dict[str, Any] = ray.get(actor.finish.remote())
        ray.get(actor.close.remote())
        ray.kill(actor)
        return final
    finally:
        if started_here:
            ray.shutdown()
