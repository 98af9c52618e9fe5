"""The onnxruntime backend: third-party files as they come, our exports, and --backend auto."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from trackreid.embed import onnx_export
from trackreid.embed.backend import TorchBackend
from trackreid.embed.factory import build_backend, build_embedder
from trackreid.embed.onnx_backend import OnnxBackend
from trackreid.embed.preprocess import resize_crops
from trackreid.errors import InputError, ModelError
from trackreid.evaluate import cosine_distance, evaluate_ranking
from trackreid.export import read_crops
from trackreid.models.weights import sha256_file


@pytest.fixture(scope="module")
def crops(cuhk03_val: Path) -> list[np.ndarray]:
    return read_crops(cuhk03_val, 16)


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_third_party_onnx_reproduces_reference(msmt_onnx: Path, cuhk03_split,  # type: ignore[no-untyped-def]
                                               caplog: pytest.LogCaptureFixture) -> None:
    """shared/data/README.md: osnet_x0_25_msmt17.onnx on CUHK03 val, mAP 52.2, rank-1 51.9."""
    with caplog.at_level(logging.WARNING):
        emb = build_embedder(msmt_onnx, device="cpu", batch_size=64)
    assert isinstance(emb.backend, OnnxBackend)
    assert "assuming torchreid preprocessing" in caplog.text  # no sidecar: said so
    q, g, qi, gi = cuhk03_split
    fq, fg = emb.embed(qi), emb.embed(gi)
    m = evaluate_ranking(cosine_distance(fq, fg), q.pids, g.pids, q.camids, g.camids)
    assert (m.num_query, m.num_gallery) == (451, 487)
    assert abs(m.mAP - 52.2) <= 0.5
    assert abs(m.rank1 - 51.9) <= 0.5


def test_auto_backend_reproduces_pth_reference(msmt_pth: Path, cuhk03_features) -> None:  # type: ignore[no-untyped-def]
    """The default path for .pth on the CPU (onnxruntime on the cached export) keeps the reference numbers."""
    q, g, fq, fg = cuhk03_features(msmt_pth, "auto")
    m = evaluate_ranking(cosine_distance(fq, fg), q.pids, g.pids, q.camids, g.camids)
    assert abs(m.mAP - 41.0) <= 0.5 and abs(m.rank1 - 40.8) <= 0.5


def subnormal_weights(path: Path) -> int:
    """Subnormal float32 values among the file's initializers, counted with plain numpy."""
    from onnx import numpy_helper

    tiny = np.finfo(np.float32).tiny
    count = 0
    for init in onnx.load(str(path)).graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32:
            count += int(((a != 0) & (np.abs(a) < tiny)).sum())
    return count


def test_denormal_weights_are_zeroed_without_changing_outputs(msmt_onnx: Path, crops: list[np.ndarray]) -> None:
    zeroed = OnnxBackend.from_path(msmt_onnx, device="cpu")
    raw = OnnxBackend.from_path(msmt_onnx, device="cpu", zero_denormals=False)
    expected = subnormal_weights(msmt_onnx)
    assert expected > 0  # the shared third-party file has them (what makes it slow)
    assert zeroed.denormals_zeroed == expected and raw.denormals_zeroed == 0
    batch = resize_crops(crops, zeroed.preprocess)
    a, b = zeroed.run(batch), raw.run(batch)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert row_cosine(a, b).min() > 0.999999


def _rewrite(src: Path, dst: Path, batch: int | None, input_name: str, output_name: str) -> None:
    """A third party's export: other tensor names, optionally a fixed batch size."""
    m = onnx.load(str(src))
    old_in, old_out = m.graph.input[0].name, m.graph.output[0].name
    for node in m.graph.node:
        node.input[:] = [input_name if n == old_in else n for n in node.input]
        node.output[:] = [output_name if n == old_out else n for n in node.output]
    m.graph.input[0].name, m.graph.output[0].name = input_name, output_name
    if batch is not None:
        for v in (m.graph.input[0], m.graph.output[0]):
            v.type.tensor_type.shape.dim[0].dim_value = batch
    onnx.save(m, str(dst))


def test_unknown_names_and_fixed_batch(tmp_path: Path, msmt_onnx: Path, crops: list[np.ndarray]) -> None:
    path = tmp_path / "thirdparty.onnx"
    _rewrite(msmt_onnx, path, batch=5, input_name="input.1", output_name="embedding_out")
    fixed = OnnxBackend.from_path(path, device="cpu")
    ref = OnnxBackend.from_path(msmt_onnx, device="cpu")
    assert (fixed.input_name, fixed.output_name, fixed.fixed_batch) == ("input.1", "embedding_out", 5)
    assert fixed.feature_dim == 512
    batch = resize_crops(crops[:12], fixed.preprocess)  # chunks of 5, 5 and a padded 2
    np.testing.assert_allclose(fixed.run(batch), ref.run(batch), atol=1e-5)
    assert fixed.run(batch[:0]).shape == (0, 512)


def test_sidecar_describes_a_third_party_file(tmp_path: Path, msmt_onnx: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "model.onnx"
    shutil.copy(msmt_onnx, path)
    (tmp_path / "model.onnx.json").write_text(
        '{"preprocess": {"height": 256, "width": 128, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}, '
        '"arch": "osnet_x0_25"}')
    with caplog.at_level(logging.WARNING):
        b = OnnxBackend.from_path(path, device="cpu")
    assert "assuming" not in caplog.text
    assert b.info_source == "sidecar model.onnx.json"
    assert b.preprocess.mean == (0.5, 0.5, 0.5) and b.arch == "osnet_x0_25"
    (tmp_path / "model.onnx.json").write_text('{"preprocess": {"height": 384, "width": 128}}')
    with pytest.raises(ModelError, match="takes 256x128 images but its description says 384x128"):
        OnnxBackend.from_path(path, device="cpu")


def test_auto_backend_exports_once_and_matches_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     msmt_pth: Path, crops: list[np.ndarray]) -> None:
    monkeypatch.setenv("TRACKREID_HOME", str(tmp_path))
    auto = build_backend(msmt_pth, device="cpu")
    assert isinstance(auto, OnnxBackend)
    sha = sha256_file(msmt_pth)
    assert auto.path == tmp_path / "onnx" / f"{sha}.onnx"
    # Features keep the identity of the user's weights file, whichever backend ran it.
    assert auto.model_info["weights_sha256"] == sha and auto.model_info["name"] == msmt_pth.name
    assert auto.model_info["onnx"]["path"] == str(auto.path)
    assert auto.normalization_in_graph and auto.layout == "NHWC"  # uint8 pixels straight into the graph
    torch_backend = build_backend(msmt_pth, device="cpu", backend="torch")
    assert isinstance(torch_backend, TorchBackend)
    assert torch_backend.model_info["weights_sha256"] == sha
    batch = resize_crops(crops, auto.preprocess)
    assert row_cosine(auto.run(batch), torch_backend.run(batch)).min() >= 0.9999
    # `extract --reid-size`: both backends are built for the size, which their descriptions record;
    # the cached graph (dynamic height and width) is the same file.
    auto_small = build_backend(msmt_pth, device="cpu", input_size=(192, 96))
    torch_small = build_backend(msmt_pth, device="cpu", backend="torch", input_size=(192, 96))
    assert isinstance(auto_small, OnnxBackend) and auto_small.path == auto.path
    for b in (auto_small, torch_small):
        assert (b.preprocess.height, b.preprocess.width) == (192, 96)
        assert (b.model_info["preprocess"]["height"], b.model_info["preprocess"]["width"]) == (192, 96)
    small = resize_crops(crops, auto_small.preprocess)
    assert small.shape[1:3] == (192, 96)
    assert row_cosine(auto_small.run(small), torch_small.run(small)).min() >= 0.9999

    def no_export(*a: object, **k: object) -> None:
        raise AssertionError("the cached export should have been reused")

    monkeypatch.setattr(onnx_export, "export_loaded", no_export)
    again = build_backend(msmt_pth, device="cpu", backend="onnx")
    assert isinstance(again, OnnxBackend) and again.path == auto.path


def test_auto_backend_falls_back_to_torch_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        msmt_pth: Path, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TRACKREID_HOME", str(tmp_path))

    def missing() -> None:
        raise ModelError("ONNX export needs the onnx package: pip install onnx")

    monkeypatch.setattr(onnx_export, "require_onnx", missing)
    with caplog.at_level(logging.WARNING):
        b = build_backend(msmt_pth, device="cpu")
    assert isinstance(b, TorchBackend)
    assert "running eager PyTorch instead of onnxruntime" in caplog.text and "onnx package" in caplog.text
    with pytest.raises(ModelError, match="onnx package"):
        build_backend(msmt_pth, device="cpu", backend="onnx")  # asked for explicitly: an error


def test_clear_errors(tmp_path: Path, msmt_onnx: Path) -> None:
    with pytest.raises(InputError, match="runs on onnxruntime"):
        build_backend(msmt_onnx, backend="torch")
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="broken.onnx"):
        OnnxBackend.from_path(bad, device="cpu")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(InputError, match="no CUDA provider"):
            OnnxBackend.from_path(msmt_onnx, device="cuda")
