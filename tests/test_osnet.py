"""The OSNet family: torchreid's state-dict names and sizes, eval/train outputs."""

from __future__ import annotations

import pytest
import torch

from trackreid.models.registry import ARCHITECTURES, create_model

# Keys named in REFERENCE.md / torchreid osnet.py and osnet_ain.py.
OSNET_KEYS = [
    "conv1.conv.weight", "conv1.bn.running_mean", "conv2.0.conv2a.conv1.weight", "conv2.0.conv2d.3.bn.weight",
    "conv2.0.gate.fc1.weight", "conv2.0.gate.fc2.bias", "conv2.0.downsample.conv.weight",
    "conv2.2.0.conv.weight", "conv3.2.0.bn.running_var", "conv4.1.conv3.bn.weight", "conv5.conv.weight",
    "fc.0.weight", "fc.1.running_mean",
]
AIN_KEYS = [
    "conv1.bn.weight", "conv2.0.conv2.0.layers.0.conv1.weight", "conv2.0.conv2.3.layers.3.bn.weight",
    "conv2.0.IN.weight", "pool2.0.conv.weight", "pool3.0.bn.weight", "conv3.0.conv3.bn.weight",
    "conv3.1.IN.bias", "conv4.1.conv3.bn.weight", "fc.0.weight",
]


@pytest.mark.parametrize(
    ("name", "params_m"),
    [("osnet_x1_0", 2.17), ("osnet_x0_75", 1.29), ("osnet_x0_5", 0.63), ("osnet_x0_25", 0.20)],
)
def test_sizes_match_torchreid(name: str, params_m: float) -> None:
    model = create_model(name)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n / 1e6 - params_m) < 0.01


def test_osnet_state_dict_names() -> None:
    keys = set(create_model("osnet_x1_0").state_dict())
    assert set(OSNET_KEYS) <= keys
    assert not any(k.startswith(("pool2", "classifier", "neck")) for k in keys)


def test_ibn_adds_instance_norm_in_stem_and_first_stage() -> None:
    sd = create_model("osnet_ibn_x1_0").state_dict()
    assert "conv2.0.IN.weight" in sd and "conv2.1.IN.weight" in sd
    assert "conv3.0.IN.weight" not in sd
    assert "conv1.bn.running_mean" not in sd  # InstanceNorm in the stem keeps no running stats


def test_ain_state_dict_names() -> None:
    sd = create_model("osnet_ain_x1_0").state_dict()
    assert set(AIN_KEYS) <= set(sd)
    assert "conv2.0.conv3.bn.weight" not in sd  # IN blocks have no BN after conv3
    assert "conv3.0.IN.weight" not in sd  # the first block of conv3 is a plain OSBlock


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_eval_returns_embedding_and_train_returns_logits(name: str) -> None:
    model = create_model(name, num_classes=7)
    x = torch.randn(2, 3, 64, 32)
    model.eval()
    with torch.no_grad():
        emb = model(x)
    assert isinstance(emb, torch.Tensor)
    assert emb.shape == (2, model.feature_dim)
    assert (emb >= 0).all()  # fc ends in ReLU
    model.train()
    logits, feats = model(x)
    assert logits.shape == (2, 7) and feats.shape == (2, model.feature_dim)


def test_bnneck_changes_the_eval_feature() -> None:
    model = create_model("osnet_tiny", neck=True, num_classes=3).eval()
    assert model.neck is not None
    model.neck.running_mean.fill_(1.0)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 32))
    assert isinstance(out, torch.Tensor)
    assert (out < 0).any()  # neck output is centred, not ReLU'd
