"""What runs is what was asked, or a warning and a record say otherwise; the caller's model is left alone.

Real weights (osnet_x0_25 MSMT17 .pth and the third-party .onnx), real CUHK03 crops.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.builders import Scene, make_index_scene
from trackreid.cli.main import main
from trackreid.embed.backend import TorchBackend
from trackreid.embed.factory import build_backend, build_embedder
from trackreid.embed.onnx_backend import OnnxBackend, ran_on
from trackreid.embed.preprocess import resize_crops
from trackreid.errors import InputError
from trackreid.export import read_crops
from trackreid.io.features import read_features
from trackreid.models.weights import load_model


@pytest.fixture(scope="module")
def crops(cuhk03_val: Path) -> list[np.ndarray]:
    return read_crops(cuhk03_val, 8)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return make_index_scene(tmp_path_factory.mktemp("scene"))


# ----------------------------------------------------------------------------- --reid-size (item 2)

def test_reid_size_is_what_extract_runs_and_records(scene: Scene, msmt_pth: Path, tmp_path: Path) -> None:
    out = tmp_path / "small"
    assert main(["extract", "--source", str(scene.video), "--tracks", str(scene.tracks), "--reid-model", str(msmt_pth),
                 "--backend", "torch", "--device", "cpu", "--reid-size", "128", "64", "--sampling", "even",
                 "--max-crops-per-track", "3", "--output-dir", str(out), "-q"]) == 0
    meta = json.loads((out / "track_metadata.json").read_text())
    pre = meta["model"]["preprocess"]
    assert (pre["height"], pre["width"]) == (128, 64)
    npz_pre = read_features(out / "track_features.npz").meta["model"]["preprocess"]
    assert (npz_pre["height"], npz_pre["width"]) == (128, 64)
    # The features are those of 128x64 inputs: the same as an embedder built for that size.
    from trackreid.extract import ExtractConfig, extract
    from trackreid.sampling import SamplingConfig

    emb = build_embedder(msmt_pth, device="cpu", backend="torch", input_size=(128, 64))
    want = extract(scene.video, scene.tracks, emb, None,
                   ExtractConfig(sampling=SamplingConfig(max_crops_per_track=3, strategy="even"))).features
    np.testing.assert_allclose(read_features(out).all_features, want.all_features, atol=1e-5)


def test_a_fixed_shape_onnx_model_refuses_another_size(msmt_onnx: Path, scene: Scene, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InputError, match=r"--reid-size 192 96: .* takes only 256x128 images"):
        build_backend(msmt_onnx, device="cpu", input_size=(192, 96))
    assert build_backend(msmt_onnx, device="cpu", input_size=(256, 128)).preprocess.height == 256
    rc = main(["extract", "--source", str(scene.video), "--tracks", str(scene.tracks), "--reid-model",
               str(msmt_onnx), "--reid-size", "192", "96", "--output-dir", str(tmp_path / "o"), "-q"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "takes only 256x128 images" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("size", "words"), [((16, 128), "too small"), ((256, 8), "too small")])
def test_too_small_sizes(msmt_onnx: Path, size: tuple[int, int], words: str) -> None:
    with pytest.raises(InputError, match=words):
        build_backend(msmt_onnx, device="cpu", input_size=size)


def test_ipg_embeds_at_the_size_the_features_were_made_with() -> None:
    from trackreid.centralize import model_input_size
    from trackreid.io.features import TrackFeatures

    tf = TrackFeatures.from_tracks([(1, np.ones(4), np.ones((1, 4)), [1])],
                                   {"model": {"preprocess": {"height": 128, "width": 64}}})
    assert model_input_size(tf) == (128, 64)
    assert model_input_size(TrackFeatures.from_tracks([(1, np.ones(4), np.ones((1, 4)), [1])])) is None


# ----------------------------------------------------------------------------- silent downgrades (item 6)

def test_half_on_the_cpu_is_a_warning_and_a_record(msmt_pth: Path, msmt_onnx: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        t = build_backend(msmt_pth, device="cpu", backend="torch", half=True)
    assert not t.describe()["half"]
    assert "--half ignored: float16 runs on CUDA only" in caplog.text
    assert any("float32 on cpu" in n for n in t.describe()["notes"])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        o = build_backend(msmt_onnx, device="cpu", half=True)
    assert isinstance(o, OnnxBackend)
    assert "--half ignored: onnxruntime" in caplog.text and "--half ignored" in o.describe()["notes"][0]
    assert "notes" not in build_backend(msmt_onnx, device="cpu").describe()  # nothing to say when asked nothing


@pytest.mark.parametrize(("device", "where", "providers", "expected"), [
    ("cpu", "cpu", ["CPUExecutionProvider"], ("cpu", None)),
    ("auto", "cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"], ("cuda", None)),
    ("auto", "cuda", ["CPUExecutionProvider"], ("cpu", "could not start its CUDA provider")),
    ("cuda:1", "cuda:1", ["CPUExecutionProvider"], InputError),
])
def test_the_session_providers_decide_where_it_ran(device: str, where: str, providers: list[str],
                                                   expected: object) -> None:
    if expected is InputError:
        with pytest.raises(InputError, match="could not start its CUDA provider"):
            ran_on(device, where, providers)
        return
    got, note = ran_on(device, where, providers)
    want_where, want_note = expected  # type: ignore[misc]
    assert got == want_where
    assert (note is None) if want_note is None else (want_note in note)  # type: ignore[operator]


def test_the_recorded_providers_are_the_sessions(msmt_onnx: Path) -> None:
    b = OnnxBackend.from_path(msmt_onnx, device="cpu")
    assert b.describe()["providers"] == list(b.session.get_providers()) and b.describe()["device"] == "cpu"


def test_auto_backend_lets_a_bad_thread_count_surface(msmt_pth: Path, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("TRACKREID_HOME", str(tmp_path))
    monkeypatch.setenv("TRACKREID_THREADS", "two")
    with pytest.raises(InputError, match="TRACKREID_THREADS='two'"):
        build_backend(msmt_pth, device="cpu")  # not a silent fall back to eager PyTorch
    assert not (tmp_path / "onnx").exists()  # checked before any export work


# ----------------------------------------------------------------------------- the caller's model (item 7)

def test_two_torch_backends_from_one_loaded_model(msmt_pth: Path, crops: list[np.ndarray]) -> None:
    loaded = load_model(msmt_pth)
    params = {k: v.detach().clone() for k, v in loaded.model.state_dict().items()}
    contiguous = TorchBackend(loaded, torch.device("cpu"), channels_last=False)
    batch = resize_crops(crops, loaded.preprocess)
    before = contiguous.run(batch)
    fast = TorchBackend(loaded, torch.device("cpu"), channels_last=True)
    # The caller's model: same tensors, same dtype, same (contiguous) memory format, still in eval mode.
    for k, v in loaded.model.state_dict().items():
        assert v.dtype == params[k].dtype and v.is_contiguous(), k
        assert torch.equal(v, params[k]), k
    assert not loaded.model.training
    assert fast.model is not loaded.model and contiguous.model is not loaded.model
    conv = loaded.model.conv1.conv.weight
    assert conv.is_contiguous() and not fast.model.conv1.conv.weight.is_contiguous()  # only the copy changed
    np.testing.assert_array_equal(contiguous.run(batch), before)  # the first backend is unaffected
    np.testing.assert_allclose(fast.run(batch), before, atol=1e-4)
