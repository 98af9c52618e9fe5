"""The features files: a seed pickle numpy 1.x and 2.x both load, and a reader that reads what was named."""

from __future__ import annotations

import io
import logging
import pickle
import pickletools
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

from trackreid.io.features import TrackFeatures, read_features, safe_pickle_load, write_features


def sample(seed: int = 0, dim: int = 8) -> TrackFeatures:
    rng = np.random.default_rng(seed)
    items = []
    for tid, n in ((3, 2), (7, 4), (11, 0)):
        allf = rng.normal(size=(n, dim)).astype(np.float32)
        items.append((tid, rng.normal(size=dim).astype(np.float32), allf, list(range(1, 2 * n + 1, 2))))
    return TrackFeatures.from_tracks(items, {"model": {"name": "x"}}, dim=dim)


def pickle_globals(data: bytes) -> set[str]:
    """``module.name`` of every global the pickle would import (GLOBAL and STACK_GLOBAL), without loading it."""
    found: set[str] = set()
    strings: list[str] = []
    memo: list[str | None] = []  # what each MEMOIZE stored, when it was a string
    last: str | None = None
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        if op.name == "GLOBAL":
            found.add(str(arg).replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]}.{strings[-1]}")
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(str(arg))
        elif op.name in ("BINGET", "LONG_BINGET", "GET") and memo[int(arg)] is not None:
            strings.append(str(memo[int(arg)]))
        if op.name == "MEMOIZE":
            memo.append(last)
        last = strings[-1] if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINGET", "LONG_BINGET",
                                          "GET") and strings else None
    return found


def test_the_scan_sees_numpy_2s_own_globals() -> None:
    """What the seed pickle must avoid: numpy 2's default array pickle names numpy._core."""
    native = pickle.dumps({1: np.zeros((2, 3), np.float32)}, protocol=pickle.HIGHEST_PROTOCOL)
    if np.__version__.startswith("1."):
        pytest.skip("numpy 1.x pickles name numpy.core")
    assert any(g.startswith("numpy._core") for g in pickle_globals(native))


def test_seed_pickle_names_only_globals_every_numpy_has(tmp_path: Path) -> None:
    write_features(sample(), tmp_path)
    data = (tmp_path / "track_features.pkl").read_bytes()
    assert data[:2] == b"\x80\x04"  # protocol 4
    assert pickle_globals(data) == {"numpy.ndarray", "numpy.dtype", "builtins.bytearray"}


def test_seed_pickle_loads_as_ordinary_writable_arrays_with_plain_int_keys(tmp_path: Path) -> None:
    tf = sample()
    write_features(tf, tmp_path)
    for data in (pickle.loads((tmp_path / "track_features.pkl").read_bytes()),  # noqa: S301 - our own file
                 safe_pickle_load(tmp_path / "track_features.pkl")):
        assert list(data) == [3, 7, 11] and all(type(k) is int for k in data)
        e = data[7]
        assert type(e["features"]) is np.ndarray and e["features"].dtype == np.float32
        assert e["all_features"].shape == (4, 8) and e["all_features"].flags.c_contiguous
        assert e["all_features"].flags.writeable
        np.testing.assert_array_equal(e["all_features"], tf.crops_of(1))
        assert e["frame_indices"] == [1, 3, 5, 7] and all(type(i) is int for i in e["frame_indices"])
        assert data[11]["all_features"].shape == (0, 8)


NUMPY1_CHECK = """
import pickle, sys
import numpy as np
assert np.__version__.startswith("1."), np.__version__
d = pickle.load(open(sys.argv[1], "rb"))
print(np.__version__, sorted(d), d[7]["all_features"].shape, float(d[7]["all_features"].sum()))
"""


@pytest.mark.slow
def test_seed_pickle_loads_under_numpy_1(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A throwaway venv with numpy 1.26.4 loads the file.

    Skipped only when pip cannot fetch numpy 1.26.4 (no package index reachable): that depends on
    the network, not on what CI installs. The opcode test above checks the same offline.
    """
    tf = sample()
    write_features(tf, tmp_path)
    env_dir = tmp_path_factory.mktemp("numpy1") / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    got = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "numpy==1.26.4"],
                         capture_output=True, text=True, timeout=300)
    if got.returncode != 0:
        shutil.rmtree(env_dir, ignore_errors=True)
        pytest.skip(f"pip cannot install numpy 1.26.4 here: {got.stderr.strip()[-200:]}")
    out = subprocess.run([str(py), "-c", NUMPY1_CHECK, str(tmp_path / "track_features.pkl")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "1.26.4"
    assert f"{float(tf.crops_of(1).sum())}" in out.stdout
    assert sys.version_info >= (3, 9)


def test_a_named_pickle_is_read_even_with_an_npz_beside_it(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    write_features(sample(0), tmp_path)
    with caplog.at_level(logging.WARNING):
        same = read_features(tmp_path / "track_features.pkl")
    assert caplog.text == ""  # both files agree: nothing to say
    np.testing.assert_array_equal(same.features, sample(0).features)
    assert same.meta == {"model": {"name": "x"}}  # the pickle has no metadata; the matching npz's comes along

    edited = sample(1)  # another tool rewrote the pickle; the npz is stale
    write_features(edited, tmp_path / "other")
    shutil.copy(tmp_path / "other" / "track_features.pkl", tmp_path / "track_features.pkl")
    with caplog.at_level(logging.WARNING):
        got = read_features(tmp_path / "track_features.pkl")
    np.testing.assert_array_equal(got.features, edited.features)  # what was named
    assert got.meta == {}  # the stale npz's metadata describes other features
    assert "track_features.npz next to it holds different features ('features' differs)" in caplog.text
    np.testing.assert_array_equal(read_features(tmp_path / "track_features.npz").features, sample(0).features)
    np.testing.assert_array_equal(read_features(tmp_path).features, sample(0).features)  # a folder: the npz
