"""The local engine: spawned worker processes, each with its own embedder, fed one job at a time.

``workers x threads = cores``. The driver hands each worker one job over its own pipe and
reads its events (start, progress) and its outcome from the same pipe, so it always knows
which job each worker holds. A worker that dies (killed, out of memory, a crash in native
code) charges an attempt to the job it held, and only to that job: the other workers go on,
a fresh worker takes its place, and a job that kills its worker ``retries + 1`` times fails
alone (a poison segment cannot take the others down with it).

Workers die with the driver: on Linux each asks the kernel for SIGKILL when its parent exits
(``PR_SET_PDEATHSIG``), and every worker also watches its parent's pid, so a ``kill -9`` of
``trackreid run`` leaves no worker running.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from trackreid.run.worker import JobOutcome, run_segment, setup_worker
from trackreid.runtime import apply_env_defaults

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from trackreid.run.plan import SegmentJob

Event = tuple[str, str, dict[str, Any]]
PR_SET_PDEATHSIG = 1
PARENT_POLL_S = 0.5


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


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` does: the kernel's parent-death signal (Linux) and a watching thread."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(PARENT_POLL_S)

    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=watch, name="trackreid-parent-watch", daemon=True).start()


class _PipeSink:
    """Events of the running job, sent to the driver over the worker's pipe."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def put(self, item: Any) -> None:
        self.conn.send(item)


def _worker_main(conn: Connection, threads: int, parent: int) -> None:
    die_with_parent(parent)
    setup_worker(threads)
    sink = _PipeSink(conn)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if job is None:
            return
        outcome = run_segment(job, sink)
        conn.send(("outcome", job.id, outcome))


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    job: SegmentJob | None = None


def run_jobs(jobs: list[SegmentJob], on_event: Callable[[Event], None], workers: int | None = None,
             retries: int = 3) -> dict[str, JobOutcome]:
    """Run every job; return its outcome by job id (a job whose worker died ``retries + 1`` times fails)."""
    results: dict[str, JobOutcome] = {}
    if not jobs:
        return results
    w, threads = split_cores(workers, len(jobs))
    apply_env_defaults()  # inherited by the spawned workers, which also apply it before torch loads
    ctx = mp.get_context("spawn")
    attempts = {j.id: 0 for j in jobs}
    pending = collections.deque(jobs)
    pool: list[_Worker] = []

    def start_worker() -> _Worker:
        ours, theirs = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=_worker_main, args=(theirs, threads, os.getpid()), name="trackreid-worker",
                           daemon=True)
        proc.start()
        theirs.close()
        worker = _Worker(proc, ours)
        pool.append(worker)
        return worker

    def give(worker: _Worker) -> None:
        worker.job = pending.popleft() if pending else None
        if worker.job is not None:
            worker.conn.send(worker.job)

    def receive(worker: _Worker) -> None:
        kind, job_id, info = worker.conn.recv()
        if kind != "outcome":
            on_event((kind, job_id, info))
            return
        results[job_id] = info
        worker.job = None
        on_event(("done" if info.ok else "failed", job_id, {**info.info, "error": info.error}))
        give(worker)

    def lost(worker: _Worker) -> None:
        """The worker died: charge its job (only its job) and put a fresh worker in its place."""
        pool.remove(worker)
        worker.conn.close()
        job = worker.job
        if job is not None:
            attempts[job.id] += 1
            code = worker.process.exitcode
            if attempts[job.id] > retries:
                results[job.id] = JobOutcome(job.id, False, error=f"segment {job.id}: its worker process died "
                                             f"{attempts[job.id]} times (exit code {code}; out of memory?)")
                on_event(("failed", job.id, {"error": results[job.id].error}))
            else:
                on_event(("retry", job.id, {"attempt": attempts[job.id], "exit_code": code}))
                pending.appendleft(job)
        if pending:
            give(start_worker())

    try:
        for _ in range(w):
            give(start_worker())
        while len(results) < len(jobs):
            busy = [wk for wk in pool if wk.job is not None]
            if not busy:  # cannot happen while jobs remain: every lost job is requeued to a fresh worker
                raise RuntimeError("local engine: jobs left but no worker holds one")
            ready = set(wait([wk.conn for wk in busy] + [wk.process.sentinel for wk in busy], timeout=1.0))
            for wk in busy:
                try:
                    while wk.conn.poll():  # an outcome sent just before a worker exits still counts
                        receive(wk)
                except (EOFError, OSError):
                    pass
                if wk.process.sentinel in ready or not wk.process.is_alive():
                    wk.process.join(timeout=5)
                    if wk.job is not None:
                        lost(wk)
                    else:
                        pool.remove(wk)
    finally:
        for wk in pool:
            with contextlib.suppress(OSError, ValueError):  # a worker that is gone already
                wk.conn.send(None)
        for wk in pool:
            wk.process.join(timeout=10)
            if wk.process.is_alive():
                wk.process.kill()
                wk.process.join()
            wk.conn.close()
    return results
