"""`trackreid export-onnx`: the file computes what PyTorch computes, describes itself, and
nothing is kept when the check fails. Real weights (osnet_x0_25 MSMT17), real CUHK03 crops."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from trackreid.cli.main import main
from trackreid.embed import onnx_export
from trackreid.embed.onnx_backend import OnnxBackend
from trackreid.embed.preprocess import normalize, resize_crops
from trackreid.errors import InputError, OutputError
from trackreid.export import ExportResult, export_onnx, read_crops, sidecar_path
from trackreid.models.weights import load_model, sha256_file


def row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def crops(cuhk03_val: Path) -> list[np.ndarray]:
    return read_crops(cuhk03_val, 16)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, msmt_pth: Path, crops: list[np.ndarray]) -> ExportResult:
    return export_onnx(msmt_pth, tmp_path_factory.mktemp("export") / "osnet.onnx", verify_crops=crops)


def test_export_matches_pytorch_at_batch_1_and_16(exported: ExportResult, msmt_pth: Path,
                                                  crops: list[np.ndarray]) -> None:
    # An independent check: a bare onnxruntime session against the eager PyTorch model.
    loaded = load_model(msmt_pth)
    x = normalize(resize_crops(crops, loaded.preprocess), loaded.preprocess)
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    for n in (1, 16):
        got = session.run(["features"], {"images": x[:n]})[0]
        with torch.no_grad():
            want = loaded.model(torch.from_numpy(x[:n])).numpy()
        assert got.shape == (n, 512)
        assert row_cosine(got, want).min() >= 0.9999
        assert np.abs(got - want).max() < 1e-3
    batches = exported.info["verification"]["batches"]
    assert set(batches) == {"batch_1", "batch_16"}
    assert min(b["min_cosine"] for b in batches.values()) >= 0.9999


def test_export_is_valid_and_describes_itself(exported: ExportResult, msmt_pth: Path) -> None:
    proto = onnx.load(str(exported.path))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["images"]
    assert [o.name for o in proto.graph.output] == ["features"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch
    assert next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 17
    side = json.loads(sidecar_path(exported.path).read_text())
    assert side["source_weights"]["sha256"] == sha256_file(msmt_pth)
    assert side["arch"] == "osnet_x0_25"
    assert side["normalization_in_graph"] is False
    assert side["preprocess"]["mean"] == [0.485, 0.456, 0.406]
    assert side["input"]["shape"] == ["batch", 3, 256, 128]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["trackreid"]) == side
    # The backend reads that description back: nothing is assumed.
    backend = OnnxBackend.from_path(exported.path, device="cpu")
    assert backend.info_source == "metadata"
    assert backend.model_info["weights_sha256"] == sha256_file(msmt_pth)


def test_static_batch_fp16_export_serves_any_batch(tmp_path: Path, msmt_pth: Path, crops: list[np.ndarray],
                                                  exported: ExportResult) -> None:
    r = export_onnx(msmt_pth, tmp_path / "b4.onnx", static_batch=4, fp16=True, verify_crops=crops)
    proto = onnx.load(str(r.path))
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [4, 3, 256, 128]
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 in and out
    assert {t.data_type for t in proto.graph.initializer if len(t.dims) == 4} == {onnx.TensorProto.FLOAT16}
    assert r.min_cosine >= 0.9999 and r.info["fp16"] is True and r.info["static_batch"] == 4
    fixed = OnnxBackend.from_path(r.path, device="cpu")
    dynamic = OnnxBackend.from_path(exported.path, device="cpu")
    assert fixed.fixed_batch == 4 and dynamic.fixed_batch is None
    batch = resize_crops(crops[:7], fixed.preprocess)  # one full chunk of 4, one zero-padded chunk of 3
    assert row_cosine(fixed.run(batch), dynamic.run(batch)).min() >= 0.9999
    assert fixed.run(batch[:1]).shape == (1, 512)


def test_failed_check_deletes_output_and_exits_nonzero(tmp_path: Path, msmt_pth: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    real = onnx_export._reference_embeddings

    def wrong(loaded, batch):  # type: ignore[no-untyped-def]
        return np.roll(real(loaded, batch), 1, axis=1)  # as if the graph had lost a channel's order

    monkeypatch.setattr(onnx_export, "_reference_embeddings", wrong)
    out = tmp_path / "bad.onnx"
    rc = main(["export-onnx", "--reid-model", str(msmt_pth), "--output", str(out)])
    assert rc != 0
    assert "differs from PyTorch" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no model, no sidecar, no temporary file


@pytest.mark.parametrize(("args", "error", "words"), [
    ({"output": "x.pth"}, InputError, "ending in .onnx"),
    ({"opset": 5}, InputError, "--opset 5"),
    ({"static_batch": 0}, InputError, "--static-batch 0"),
])
def test_bad_arguments(tmp_path: Path, msmt_pth: Path, args: dict, error: type, words: str) -> None:
    kw = {"output": "m.onnx", **args}
    with pytest.raises(error, match=words):
        export_onnx(msmt_pth, tmp_path / kw.pop("output"), **kw)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_not_overwritten(tmp_path: Path, msmt_pth: Path) -> None:
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="--overwrite"):
        export_onnx(msmt_pth, out)
    assert out.read_bytes() == b"keep me"
