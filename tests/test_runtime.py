"""Process environment defaults: never on import, always in the CLI before torch, user wins, opt-out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from trackreid.cli.main import main
from trackreid.runtime import ENV_DEFAULTS, apply_env_defaults


def test_importing_trackreid_leaves_the_environment_alone() -> None:
    # Third-party libraries first (OpenCV's loader sets LD_LIBRARY_PATH on import: not ours to judge).
    code = ("import json, os, sys, cv2, numpy, onnxruntime, torch; before = dict(os.environ); "
            "import trackreid, trackreid.embed.factory, trackreid.extract, trackreid.cli.main; "
            "print(json.dumps([before == dict(os.environ), 'trackreid.embed.backend' in sys.modules]))")
    env = {k: v for k, v in os.environ.items() if k not in ENV_DEFAULTS}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    unchanged, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded
    assert unchanged


@pytest.mark.parametrize(("env", "expected_policy", "applied"), [
    ({}, "PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE", "OPENCV_LOG_LEVEL": "FATAL"}),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE", {"OPENCV_LOG_LEVEL": "FATAL"}),  # the user's value wins
    ({"TRACKREID_NO_ENV_DEFAULTS": "1"}, None, {}),  # opted out
    ({"TRACKREID_NO_ENV_DEFAULTS": "true"}, None, {}),
    # 0 is not an opt-out
    ({"TRACKREID_NO_ENV_DEFAULTS": "0"}, "PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE", "OPENCV_LOG_LEVEL": "FATAL"}),
])
def test_apply_env_defaults(env: dict[str, str], expected_policy: str | None, applied: dict[str, str]) -> None:
    target = dict(env)
    assert apply_env_defaults(target) == applied
    assert target.get("OMP_WAIT_POLICY") == expected_policy


# Records OMP_WAIT_POLICY at the moment torch is first imported, then runs a command that loads torch.
WHEN_TORCH_LOADS = """
import os, sys
seen = []
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            seen.append(os.environ.get("OMP_WAIT_POLICY"))
sys.meta_path.insert(0, Spy())
from trackreid.cli.main import main
assert "torch" not in sys.modules
main(["models", "list"])
print(seen[0] if seen else "torch never imported")
"""


@pytest.mark.parametrize(("opt_out", "policy"), [(None, "PASSIVE"), ("1", "None")])
def test_the_cli_entry_point_applies_them_before_torch_loads(opt_out: str | None, policy: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENV_DEFAULTS and k != "TRACKREID_NO_ENV_DEFAULTS"}
    if opt_out:
        env["TRACKREID_NO_ENV_DEFAULTS"] = opt_out
    out = subprocess.run([sys.executable, "-c", WHEN_TORCH_LOADS], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == policy


def test_in_process_cli_call_keeps_a_user_value(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert main(["models", "list"]) == 0
    capsys.readouterr()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
