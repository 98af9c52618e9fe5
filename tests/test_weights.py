"""Weight loading: zoo files, wrappers, FastReID layout, our format, refusals."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from trackreid.errors import ModelError, UnsafeFileError
from trackreid.models.registry import create_model
from trackreid.models.weights import load_model, save_checkpoint


def _same_output(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    x = torch.rand(2, 3, 256, 128)
    with torch.no_grad():
        return torch.allclose(a.eval()(x), b.eval()(x), atol=1e-5)


def test_real_zoo_file_loads_and_infers_arch(msmt_pth: Path) -> None:
    loaded = load_model(msmt_pth)
    assert loaded.arch == "osnet_x0_25"
    assert loaded.feature_dim == 512
    assert loaded.source_format == "torchreid"
    assert loaded.sha256 == "6f57607fed9f502b9efed546108132ee715df5a5b6e6932c6269bacb47f59f99"
    assert loaded.model.classifier is None  # the 1041-id classifier is dropped
    assert loaded.denormals_zeroed > 0  # this file carries subnormal weights (REFERENCE.md)


@pytest.mark.parametrize("wrap", ["module", "state_dict", "module+state_dict", "zip", "legacy"])
def test_wrappers_load(tmp_path: Path, market_pth: Path, wrap: str) -> None:
    sd = torch.load(market_pth, weights_only=True)
    ref = load_model(market_pth).model
    obj: object = sd
    if "module" in wrap:
        obj = {f"module.{k}": v for k, v in sd.items()}
    if "state_dict" in wrap:
        obj = {"state_dict": obj, "epoch": 150}
    path = tmp_path / "w.pth"
    torch.save(obj, path, _use_new_zipfile_serialization=(wrap != "legacy"))
    loaded = load_model(path)
    assert loaded.arch == "osnet_x0_25"
    assert _same_output(loaded.model, ref)


def test_fastreid_layout_loads_with_bnneck_as_embedding(tmp_path: Path) -> None:
    # FastReID: backbone.* (torchreid names, no fc), heads.bottleneck.0.* (BNNeck), heads.weight
    src = create_model("osnet_x0_5", no_fc=True, neck=True).eval()
    with torch.no_grad():
        src.neck.running_mean.uniform_(-1, 1)  # type: ignore[union-attr]
    sd = {}
    for k, v in src.state_dict().items():
        sd[("heads.bottleneck.0." + k[5:]) if k.startswith("neck.") else "backbone." + k] = v
    sd["heads.weight"] = torch.randn(751, 256)
    sd["pixel_mean"] = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    sd["pixel_std"] = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    path = tmp_path / "model_final.pth"
    torch.save({"model": sd, "iteration": 1000, "scheduler": {}}, path)
    loaded = load_model(path)
    assert (loaded.arch, loaded.source_format, loaded.feature_dim) == ("osnet_x0_5", "fastreid", 256)
    assert loaded.model.neck is not None and loaded.model.fc is None
    assert loaded.preprocess.interpolation == "bicubic"
    assert loaded.preprocess.mean == pytest.approx((0.485, 0.456, 0.406))
    assert _same_output(loaded.model, src)


def test_trackreid_safetensors_round_trip(tmp_path: Path) -> None:
    src = create_model("osnet_ain_x0_25", neck=True).eval()
    path = tmp_path / "ours.safetensors"
    save_checkpoint(src, "osnet_ain_x0_25", path)
    loaded = load_model(path)
    assert (loaded.arch, loaded.source_format) == ("osnet_ain_x0_25", "trackreid")
    assert _same_output(loaded.model, src)


def test_wrong_arch_is_a_clear_error(market_pth: Path) -> None:
    with pytest.raises(ModelError, match=r"do not fit --arch osnet_x1_0: mis-shaped .*conv1.conv.weight"):
        load_model(market_pth, arch="osnet_x1_0")


def test_not_an_osnet_lists_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"layer1.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ModelError, match="not an OSNet checkpoint.*missing"):
        load_model(path)


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_code_executing_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"conv1.conv.weight": _Payload(str(marker))}, f)
    with pytest.raises(UnsafeFileError, match=r"refused.*(system|posix)"):
        load_model(path)
    assert not marker.exists()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such weights file"):
        load_model(tmp_path / "nope.pth")
