"""Process environment defaults, applied where they work: before torch loads, in processes we start.

``import trackreid`` changes nothing in ``os.environ``. The ``trackreid`` command's entry point
(and every worker process the project starts) calls :func:`apply_env_defaults` first thing,
before torch is imported, because OpenMP reads its variables only when torch loads:

* ``OMP_WAIT_POLICY=PASSIVE``: OpenMP worker threads that spin while they wait (libgomp's
  default) made eager PyTorch many times slower on a 2-core machine whose cores other processes
  were also using: the spinning thread holds the core the working one needs. PASSIVE lets them
  sleep (``benchmarks/omp_wait.py`` prints the comparison).
* ``OPENCV_LOG_LEVEL=FATAL``: OpenCV writes FFmpeg's complaints (``[ERROR:0@0.04] ...
  Could not find decoder``) straight to the process's stderr, beside trackreid's own one-line
  error that already says what failed and how to fix it.

A value the user set always wins; ``TRACKREID_NO_ENV_DEFAULTS=1`` turns all of this off.
This module imports nothing heavy.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

ENV_DEFAULTS: dict[str, str] = {"OMP_WAIT_POLICY": "PASSIVE", "OPENCV_LOG_LEVEL": "FATAL"}
OPT_OUT = "TRACKREID_NO_ENV_DEFAULTS"
_TRUE = ("1", "true", "yes", "on")


def env_defaults_disabled(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether the user opted out (``TRACKREID_NO_ENV_DEFAULTS`` set to 1/true/yes/on)."""
    env = os.environ if environ is None else environ
    return env.get(OPT_OUT, "").strip().lower() in _TRUE


def env_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The defaults :func:`apply_env_defaults` would set (none when opted out or already set)."""
    env = os.environ if environ is None else environ
    if env_defaults_disabled(env):
        return {}
    return {k: v for k, v in ENV_DEFAULTS.items() if k not in env}


def apply_env_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set each of :data:`ENV_DEFAULTS` the user has not set; return what was set.

    Call it before torch is imported (the CLI entry point and worker processes do). Called
    later, the values still reach the processes this one starts, and a debug message says
    that this process keeps the OpenMP settings it loaded with.
    """
    env = os.environ if environ is None else environ
    applied = env_defaults(env)
    env.update(applied)
    if applied and environ is None and "torch" in sys.modules:
        log.debug("%s set after torch was imported: it takes effect in child processes only",
                  ", ".join(f"{k}={v}" for k, v in applied.items()))
    return applied
