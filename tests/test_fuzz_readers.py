"""Property-based fuzzing of the readers of user files (hypothesis).

Random bytes and random near-valid content given to the MOT reader, the feature readers
(.npz and the seed's .pkl) and the training config reader either read successfully (and
then the result satisfies the type's invariants) or raise a :class:`TrackReidError`: never
any other exception. Each property runs a bounded number of examples with no deadline, so
the whole file takes seconds.
"""

from __future__ import annotations

import io
import pickle
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trackreid.errors import TrackReidError
from trackreid.io.features import TrackFeatures, read_features, write_features
from trackreid.io.mot import read_mot
from trackreid.train.config import SCHEMA, load_config

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="trackreid-fuzz-") as d:
        yield Path(d)


def _write(folder: Path, name: str, data: bytes) -> Path:
    p = folder / name
    p.write_bytes(data)
    return p


# -- MOT ----------------------------------------------------------------------------------------

NUMBER_TEXT = st.one_of(
    st.integers(-3, 2000).map(str),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True, width=64).map(repr),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e400", "0x10", "1,5", "frame", "id", "-1", "0", "1.0", "١"]),
)


@st.composite
def mot_text(draw: st.DrawFn) -> str:
    """Rows of 4 to 12 mostly numeric fields, one delimiter per file (sometimes mixed), headers, blanks."""
    delim = draw(st.sampled_from([",", ";", "\t", " ", ", ", "  "]))
    rows = []
    if draw(st.booleans()):
        rows.append(delim.join(["frame", "id", "bb_left", "bb_top", "bb_width", "bb_height"]))
    columns = draw(st.sampled_from([6, 7, 9, 10]))
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.integers(0, 12))
        if kind == 0:
            rows.append(draw(st.sampled_from(["", "   ", "# comment", "\x00", "\ufeff1,1,1,1,1,1"])))
            continue
        n = draw(st.integers(4, 12)) if kind == 1 else columns
        if kind >= 4:  # a plausible row
            fields = [str(draw(st.integers(0, 40))), str(draw(st.integers(-2, 5))),
                      *(repr(draw(st.floats(-50, 500))) for _ in range(4))]
            fields += [str(draw(st.sampled_from([0, 1, 1, 1, 2]))) for _ in range(n - 6)]
        else:
            fields = [draw(NUMBER_TEXT) for _ in range(n)]
        rows.append((delim if kind != 2 else draw(st.sampled_from([",", ";", " "]))).join(fields))
    return draw(st.sampled_from(["\n", "\r\n"])).join(rows) + draw(st.sampled_from(["", "\n"]))


def _check_tracks_or_error(path: Path) -> None:
    try:
        t = read_mot(path)
    except TrackReidError:
        return
    assert len(t) > 0
    assert t.frame.dtype == np.int64 and (t.frame >= 1).all()
    assert t.track_id.dtype == np.int64 and (t.track_id >= 0).all()
    assert (t.xywh[:, 2:] > 0).all() and np.isfinite(t.xywh).all()
    pairs = set(zip(t.frame.tolist(), t.track_id.tolist(), strict=True))
    assert len(pairs) == len(t)  # one box per (frame, id)


@FUZZ
@given(data=st.binary(max_size=600))
def test_mot_reader_random_bytes(scratch: Path, data: bytes) -> None:
    _check_tracks_or_error(_write(scratch, "random.txt", data))


@FUZZ
@given(text=mot_text())
def test_mot_reader_near_valid_rows(scratch: Path, text: str) -> None:
    _check_tracks_or_error(_write(scratch, "near.txt", text.encode("utf-8")))


# -- features -----------------------------------------------------------------------------------

def _valid_features(n_tracks: int = 3, dim: int = 8) -> TrackFeatures:
    rng = np.random.default_rng(0)
    items = [(t + 1, rng.normal(size=dim), rng.normal(size=(t + 1, dim)), np.arange(1, t + 2))
             for t in range(n_tracks)]
    return TrackFeatures.from_tracks(items, {"model": {"name": "x"}})


@pytest.fixture(scope="module")
def valid_files(scratch: Path) -> dict[str, bytes]:
    folder = scratch / "valid"
    folder.mkdir()
    write_features(_valid_features(), folder)
    return {s: (folder / f"track_features.{s}").read_bytes() for s in ("npz", "pkl")}


def _check_features_or_error(path: Path) -> None:
    try:
        tf = read_features(path)
    except TrackReidError:
        return
    assert tf.features.ndim == 2 and len(tf.features) == len(tf.track_ids)
    assert tf.offsets[-1] == len(tf.all_features) == len(tf.frame_indices)


def _mutate(data: bytes, draw: st.DrawFn) -> bytes:
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.integers(0, 2))
        if op == 0 and buf:
            buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
        elif op == 1:
            del buf[draw(st.integers(0, len(buf))):]
        else:
            at = draw(st.integers(0, len(buf)))
            buf[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(buf)


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from(["npz", "pkl"]))
def test_feature_readers_random_bytes(scratch: Path, data: bytes, suffix: str) -> None:
    _check_features_or_error(_write(scratch, f"random.{suffix}", data))


@FUZZ
@given(data=st.data(), suffix=st.sampled_from(["npz", "pkl"]))
def test_feature_readers_mutated_valid_files(scratch: Path, valid_files: dict[str, bytes], data: st.DataObject,
                                             suffix: str) -> None:
    _check_features_or_error(_write(scratch, f"mutated.{suffix}", _mutate(valid_files[suffix], data.draw)))


ARRAYS = st.one_of(
    st.integers(0, 3).flatmap(lambda nd: st.tuples(*[st.integers(0, 4)] * nd)).flatmap(
        lambda shape: st.sampled_from(["f4", "f8", "i8", "i4", "u1", "b1", "U3", "c8"]).map(
            lambda dt: np.zeros(shape, dtype=dt))),
    st.just(np.array("{}")), st.just(np.array("not json")), st.just(np.arange(4)),
)
NAMES = st.sampled_from(["track_ids", "features", "all_features", "offsets", "frame_indices", "meta", "x"])


@FUZZ
@given(arrays=st.dictionaries(NAMES, ARRAYS, max_size=7))
def test_npz_reader_near_valid_arrays(scratch: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _check_features_or_error(_write(scratch, "near.npz", buf.getvalue()))


LEAF = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**40), st.floats(), st.text(max_size=5),
                 st.binary(max_size=5), ARRAYS, st.lists(st.integers(-2, 9), max_size=4))
ENTRY = st.dictionaries(st.sampled_from(["features", "all_features", "frame_indices", "other"]), LEAF, max_size=4)


@FUZZ
@given(seed=st.one_of(
    st.dictionaries(st.one_of(st.integers(-3, 2**40), st.text(max_size=3), st.none()),
                    st.one_of(ENTRY, LEAF), max_size=4),
    LEAF, st.lists(ENTRY, max_size=3)),
    protocol=st.integers(0, pickle.HIGHEST_PROTOCOL))
def test_pkl_reader_near_valid_structures(scratch: Path, seed: object, protocol: int) -> None:
    _check_features_or_error(_write(scratch, "near.pkl", pickle.dumps(seed, protocol=protocol)))


def test_pkl_reader_refuses_code_and_npz_refuses_pickled_objects(scratch: Path) -> None:
    """The two ways a features file could run code are refused before anything runs."""
    _write(scratch, "evil.pkl", b"cos\nsystem\n(S'touch " + str(scratch / "pwned").encode() + b"'\ntR.")
    with pytest.raises(TrackReidError, match="refused to unpickle os.system"):
        read_features(scratch / "evil.pkl")
    assert not (scratch / "pwned").exists()
    buf = io.BytesIO()
    np.savez(buf, track_ids=np.array([object()], dtype=object))
    _write(scratch, "objects.npz", buf.getvalue())
    with pytest.raises(TrackReidError, match="objects.npz"):
        read_features(scratch / "objects.npz")
    with zipfile.ZipFile(scratch / "zip.npz", "w") as z:
        z.writestr("track_ids.npy", b"\x93NUMPY garbage")
    with pytest.raises(TrackReidError, match="zip.npz"):
        read_features(scratch / "zip.npz")


# -- training config ----------------------------------------------------------------------------

KEYS = sorted(SCHEMA)
YAML_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
                       st.text(max_size=8), st.lists(st.one_of(st.integers(-3, 300), st.text(max_size=3)), max_size=4),
                       st.sampled_from(["(1, 2)", "('a',)", "[256, 128]", "osnet_x1_0", "BNneckHead", "1e-3", "{"]))


@st.composite
def config_yaml(draw: st.DrawFn) -> str:
    flat = draw(st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=6)), YAML_VALUE,
                                max_size=6))
    nested: dict[str, object] = {}
    for key, value in flat.items():
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = value
    text = yaml.safe_dump(nested, allow_unicode=True)
    if draw(st.booleans()):  # damage it: cut, or insert a stray character
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", ":", "[", "\t", "- ", "'", "&a *a", "!!python/object:os.system"]))
    return text


def _check_config_or_error(path: Path) -> None:
    try:
        load_config(path)
    except TrackReidError:
        return


@FUZZ
@given(data=st.binary(max_size=400))
def test_config_reader_random_bytes(scratch: Path, data: bytes) -> None:
    _check_config_or_error(_write(scratch, "random.yml", data))


@FUZZ
@given(text=config_yaml())
def test_config_reader_near_valid_yaml(scratch: Path, text: str) -> None:
    _check_config_or_error(_write(scratch, "near.yml", text.encode("utf-8")))


@FUZZ
@given(opts=st.lists(st.one_of(st.sampled_from(KEYS), st.text(max_size=6), YAML_VALUE.map(str)), max_size=6))
def test_config_overrides_random(opts: list[str]) -> None:
    try:
        load_config(None, opts)
    except TrackReidError:
        return
