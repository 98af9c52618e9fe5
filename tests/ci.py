"""CI detection for tests: what may be skipped on a developer's machine must fail under CI."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

_TRUE = ("1", "true", "yes", "on")


def in_ci() -> bool:
    """``CI`` set to a true value (1, true, yes, on; any case). ``CI=0`` or ``CI=false`` is not CI."""
    return os.environ.get("CI", "").strip().lower() in _TRUE


def skip_or_fail(reason: str) -> NoReturn:
    """Skip on a developer's machine; under CI, which installs everything, fail instead."""
    if in_ci():
        pytest.fail(f"{reason}; CI must provide it")
    pytest.skip(reason)
