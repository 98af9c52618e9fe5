"""The Ray engine: one Ray task per segment (and :func:`session`, which the association's time shards
run in, :mod:`trackreid.associate.shards`).

Each task decodes its segment, embeds the crops and writes the part file through the same
store code as the local engine (so outputs must be on storage every node sees). The model is
built once per Ray worker process and kept for the next task (Ray reuses its workers), which
gives what an actor pool would, without a second data path. Tasks are retried when their
worker process or node is lost (``max_retries``); a user error (corrupt video, ...) is
returned as a failed outcome and never retried. On a cluster with GPUs each task asks for a
quarter of one (``num_gpus=0.25``) and embeds on CUDA.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from trackreid.errors import InputError
from trackreid.run.worker import JobOutcome, run_segment, setup_worker
from trackreid.runtime import apply_env_defaults

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from trackreid.run.plan import SegmentJob

Event = tuple[str, str, dict[str, Any]]
GPU_PER_TASK = 0.25

_READY = False


def _segment_task(job: SegmentJob, sink: Any, threads: int) -> JobOutcome:
    global _READY
    if not _READY:
        setup_worker(threads)
        _READY = True
    return run_segment(job, sink)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install 'trackreid[ray]' (on every node)") from None
    return ray


def run_jobs(jobs: list[SegmentJob], on_event: Callable[[Event], None], workers: int | None = None,
             address: str | None = None, retries: int = 3, threads: int = 1) -> dict[str, JobOutcome]:
    """Run the jobs as Ray tasks; join ``address`` (or the already connected cluster, or start one)."""
    ray = _import_ray()
    from ray.util.queue import Queue
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    results: dict[str, JobOutcome] = {}
    if not jobs:
        return results
    with session(address, workers):
        here = ray.get_runtime_context().get_node_id()
        sink = Queue(actor_options={"num_cpus": 0,
                                    "scheduling_strategy": NodeAffinitySchedulingStrategy(here, soft=False)})
        opts: dict[str, Any] = {"num_cpus": threads, "max_retries": retries, "retry_exceptions": False}
        if ray.cluster_resources().get("GPU", 0) > 0:
            opts["num_gpus"] = GPU_PER_TASK
        task = ray.remote(_segment_task).options(**opts)
        limit = workers or len(jobs)
        waiting = list(jobs)
        refs: dict[Any, SegmentJob] = {}
        started: set[str] = set()

        def drain() -> None:
            while True:
                try:
                    item = sink.get_nowait()
                except queue.Empty:
                    return
                except ray.exceptions.RayError:
                    return
                if item[0] == "start":
                    if item[1] in started:
                        on_event(("retry", item[1], {}))
                    started.add(item[1])
                on_event(item)

        while waiting or refs:
            while waiting and len(refs) < limit:
                job = waiting.pop(0)
                refs[task.remote(job, sink, threads)] = job
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
            drain()
            for ref in ready:
                job = refs.pop(ref)
                try:
                    out = ray.get(ref)
                except ray.exceptions.RayError as e:
                    out = JobOutcome(job.id, False, error=f"segment {job.id}: lost {retries + 1} times "
                                     f"({type(e).__name__}); check the Ray nodes' memory and logs")
                results[job.id] = out
                on_event(("done" if out.ok else "failed", job.id, {**out.info, "error": out.error}))
        drain()
        sink.shutdown()
    return results


@contextmanager
def session(address: str | None = None, workers: int | None = None) -> Iterator[None]:
    """Connected to Ray inside: ``address``'s cluster, the one already connected, or a local instance
    (``workers`` CPUs) that is shut down on leaving."""
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        apply_env_defaults()  # a local Ray instance's workers inherit it
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     num_cpus=None if address else workers)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise InputError(f"--address {address}: cannot join the Ray cluster ({e}); start it with "
                             "`ray start --head` or omit --address for a local Ray instance") from None
    try:
        yield
    finally:
        if started_here:
            ray.shutdown()

