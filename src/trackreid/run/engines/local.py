"""The local engine: a pool of spawned processes, each with its own embedder.

``workers x threads = cores``. A worker that dies (killed, out of memory) breaks the pool;
the jobs it held are then resubmitted to a fresh pool, up to ``retries`` times each. Workers
report start/progress through a manager queue, which the driver drains into ``on_event``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from trackreid.run.worker import EventSink, JobOutcome, run_segment, setup_worker
from trackreid.runtime import apply_env_defaults

if TYPE_CHECKING:
    from trackreid.run.plan import SegmentJob

Event = tuple[str, str, dict[str, Any]]

_SINK: EventSink | None = None


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def split_cores(workers: int | None, jobs: int) -> tuple[int, int]:
    """(workers, threads per worker): by default half as many workers as cores, never more than jobs."""
    n = cores()
    w = workers if workers else max(1, n // 2)
    w = max(1, min(w, jobs or 1))
    return w, max(1, n // w)


def _init(threads: int, sink: EventSink | None) -> None:
    global _SINK
    setup_worker(threads)
    _SINK = sink


def _run(job: SegmentJob) -> JobOutcome:
    return run_segment(job, _SINK)


def _drain(q: Any, on_event: Callable[[Event], None]) -> None:
    while True:
        try:
            item = q.get_nowait()
        except (queue.Empty, EOFError, OSError):
            return
        on_event(item)


def run_jobs(jobs: list[SegmentJob], on_event: Callable[[Event], None], workers: int | None = None,
             retries: int = 3) -> dict[str, JobOutcome]:
    """Run every job; return its outcome by job id (a job lost ``retries + 1`` times fails)."""
    results: dict[str, JobOutcome] = {}
    if not jobs:
        return results
    w, threads = split_cores(workers, len(jobs))
    apply_env_defaults()  # inherited by the spawned workers, which also apply it before torch loads
    ctx = mp.get_context("spawn")
    attempts = {j.id: 0 for j in jobs}
    pending = list(jobs)
    with ctx.Manager() as manager:
        q = manager.Queue()
        while pending:
            with ProcessPoolExecutor(w, mp_context=ctx, initializer=_init, initargs=(threads, q)) as pool:
                futures: dict[Future[JobOutcome], SegmentJob] = {pool.submit(_run, j): j for j in pending}
                pending = []
                todo = set(futures)
                while todo:
                    done, todo = wait(todo, timeout=0.2, return_when=FIRST_COMPLETED)
                    _drain(q, on_event)
                    for fut in done:
                        job = futures[fut]
                        try:
                            out = fut.result()
                        except BrokenProcessPool:
                            attempts[job.id] += 1
                            if attempts[job.id] > retries:
                                out = JobOutcome(job.id, False, error=f"segment {job.id}: its worker process died "
                                                 f"{attempts[job.id]} times (out of memory?)")
                            else:
                                on_event(("retry", job.id, {"attempt": attempts[job.id]}))
                                pending.append(job)
                                continue
                        results[job.id] = out
                        on_event(("done" if out.ok else "failed", job.id, {**out.info, "error": out.error}))
            _drain(q, on_event)
    return results
