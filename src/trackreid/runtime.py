"""Process environment defaults, applied by entry points (the CLI, worker processes), never on import.

The review branch owns this module (issue 15); the `run` engines call
:func:`apply_env_defaults` first thing in every worker process they start.
"""

from __future__ import annotations

import os


def apply_env_defaults() -> None:
    """OMP_WAIT_POLICY=PASSIVE unless the user set it or opted out (TRACKREID_NO_ENV_DEFAULTS=1)."""
    if os.environ.get("TRACKREID_NO_ENV_DEFAULTS") == "1":
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
