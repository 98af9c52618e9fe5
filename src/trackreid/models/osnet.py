"""OSNet, OSNet-IBN and OSNet-AIN (Zhou et al., ICCV 2019 / TPAMI 2021).

Module structure and state-dict names are identical to torchreid's ``osnet.py`` and
``osnet_ain.py`` so that model-zoo checkpoints load without renaming. On top of torchreid's
``fc`` head (Linear + BN + ReLU) the network can carry a BNNeck (``neck``, a BatchNorm1d as in
FastReID's EmbeddingHead), which is what our trainer adds and what FastReID checkpoints have.

In eval mode :meth:`OSNet.forward` returns the embedding (``fc`` output, or the BNNeck
output when a neck is present). In train mode it returns ``(logits, features)`` where
``features`` is the pre-neck embedding the triplet loss uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ArchSpec", "OSNet"]


@dataclass(frozen=True)
class ArchSpec:
    """The shape of one OSNet variant.

    ``family`` is ``"osnet"`` (torchreid osnet.py; ``ibn=True`` adds instance norm in the stem
    and the first stage) or ``"osnet_ain"`` (osnet_ain.py: per-block IN pattern, ``pool2`` /
    ``pool3`` transitions). ``channels`` are the widths of stem, conv2, conv3, conv4.
    """

    family: str
    channels: tuple[int, int, int, int]
    layers: tuple[int, int, int] = (2, 2, 2)
    ibn: bool = False


class ConvLayer(nn.Module):
    """Conv (no bias) + BatchNorm (or affine InstanceNorm) + ReLU."""

    def __init__(
        self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0, instance_norm: bool = False
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False)
        self.bn: nn.Module = nn.InstanceNorm2d(cout, affine=True) if instance_norm else nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Conv1x1(nn.Module):
    """1x1 conv + BN + ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class Conv1x1Linear(nn.Module):
    """1x1 conv + optional BN, no non-linearity."""

    def __init__(self, cin: int, cout: int, bn: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout) if bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.bn(x) if self.bn is not None else x


class LightConv3x3(nn.Module):
    """1x1 linear conv, then depthwise 3x3 conv + BN + ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False, groups=cout)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv2(self.conv1(x))))


class ChannelGate(nn.Module):
    """Aggregation gate shared by the four streams of a block (reduction 16, sigmoid)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=True)
        self.gate_activation = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gate_activation(self.fc2(self.relu(self.fc1(self.global_avgpool(x)))))
        return x * g


def _stream(channels: int, depth: int) -> nn.Sequential:
    return nn.Sequential(*[LightConv3x3(channels, channels) for _ in range(depth)])


class OSBlock(nn.Module):
    """torchreid osnet.py block: streams ``conv2a..conv2d``; optional IN after the residual."""

    def __init__(self, cin: int, cout: int, instance_norm: bool = False) -> None:
        super().__init__()
        mid = cout // 4
        self.conv1 = Conv1x1(cin, mid)
        self.conv2a = LightConv3x3(mid, mid)
        self.conv2b = _stream(mid, 2)
        self.conv2c = _stream(mid, 3)
        self.conv2d = _stream(mid, 4)
        self.gate = ChannelGate(mid)
        self.conv3 = Conv1x1Linear(mid, cout)
        self.downsample = Conv1x1Linear(cin, cout) if cin != cout else None
        self.IN = nn.InstanceNorm2d(cout, affine=True) if instance_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = (
            self.gate(self.conv2a(x1))
            + self.gate(self.conv2b(x1))
            + self.gate(self.conv2c(x1))
            + self.gate(self.conv2d(x1))
        )
        identity = self.downsample(x) if self.downsample is not None else x
        out = self.conv3(x2) + identity
        if self.IN is not None:
            out = self.IN(out)
        return F.relu(out)


class _AinStream(nn.Module):
    """osnet_ain.py ``LightConvStream``: the stream lives under ``.layers``."""

    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        self.layers = _stream(channels, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class OSBlockAIN(nn.Module):
    """osnet_ain.py block (``OSBlock`` / ``OSBlockINin``): streams in ``conv2`` ModuleList.

    With ``instance_norm`` the IN sits inside the residual branch and ``conv3`` has no BN.
    """

    def __init__(self, cin: int, cout: int, instance_norm: bool) -> None:
        super().__init__()
        mid = cout // 4
        self.conv1 = Conv1x1(cin, mid)
        self.conv2 = nn.ModuleList([_AinStream(mid, t) for t in range(1, 5)])
        self.gate = ChannelGate(mid)
        self.conv3 = Conv1x1Linear(mid, cout, bn=not instance_norm)
        self.downsample = Conv1x1Linear(cin, cout) if cin != cout else None
        self.IN = nn.InstanceNorm2d(cout, affine=True) if instance_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = sum(self.gate(stream(x1)) for stream in self.conv2)
        x3 = self.conv3(x2)
        if self.IN is not None:
            x3 = self.IN(x3)
        identity = self.downsample(x) if self.downsample is not None else x
        return F.relu(x3 + identity)


# Which blocks of osnet_ain use instance norm, per stage (torchreid osnet_ain_x1_0).
_AIN_PATTERN = ((True, True), (False, True), (True, False))


def _transition(channels: int) -> nn.Sequential:
    return nn.Sequential(Conv1x1(channels, channels), nn.AvgPool2d(2, stride=2))


class OSNet(nn.Module):
    """Omni-Scale Network with torchreid's module names.

    Args:
        spec: the variant's shape.
        feature_dim: width of the ``fc`` embedding layer, or ``None`` for no ``fc``
            (FastReID backbones end at ``conv5``; the embedding is then the pooled map).
        neck: add a BNNeck (BatchNorm1d) after the embedding; its output is the eval feature.
        num_classes: size of the identity classifier, 0 for none (feature extraction).
    """

    def __init__(
        self, spec: ArchSpec, feature_dim: int | None = 512, neck: bool = False, num_classes: int = 0
    ) -> None:
        super().__init__()
        self.spec = spec
        c = spec.channels
        ain = spec.family == "osnet_ain"
        stem_in = ain or spec.ibn
        self.conv1 = ConvLayer(3, c[0], 7, stride=2, padding=3, instance_norm=stem_in)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        if ain:
            self.conv2 = self._ain_stage(0, c[0], c[1])
            self.pool2 = _transition(c[1])
            self.conv3 = self._ain_stage(1, c[1], c[2])
            self.pool3 = _transition(c[2])
            self.conv4 = self._ain_stage(2, c[2], c[3])
        else:
            self.conv2 = self._stage(spec.layers[0], c[0], c[1], True, spec.ibn)
            self.conv3 = self._stage(spec.layers[1], c[1], c[2], True, False)
            self.conv4 = self._stage(spec.layers[2], c[2], c[3], False, False)
        self.conv5 = Conv1x1(c[3], c[3])
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Sequential | None = None
        self.feature_dim = c[3]
        if feature_dim is not None:
            self.fc = nn.Sequential(nn.Linear(c[3], feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(inplace=True))
            self.feature_dim = feature_dim
        self.neck: nn.BatchNorm1d | None = None
        if neck:
            self.neck = nn.BatchNorm1d(self.feature_dim)
            self.neck.bias.requires_grad_(False)  # BNNeck convention (Luo et al., FastReID)
        self.classifier: nn.Linear | None = None
        if num_classes > 0:
            self.classifier = nn.Linear(self.feature_dim, num_classes, bias=not neck)
        self._init_params()

    @staticmethod
    def _stage(n: int, cin: int, cout: int, reduce: bool, instance_norm: bool) -> nn.Sequential:
        blocks: list[nn.Module] = [OSBlock(cin, cout, instance_norm)]
        blocks += [OSBlock(cout, cout, instance_norm) for _ in range(1, n)]
        if reduce:
            blocks.append(_transition(cout))
        return nn.Sequential(*blocks)

    @staticmethod
    def _ain_stage(stage: int, cin: int, cout: int) -> nn.Sequential:
        pattern = _AIN_PATTERN[stage]
        return nn.Sequential(
            OSBlockAIN(cin, cout, pattern[0]), *[OSBlockAIN(cout, cout, p) for p in pattern[1:]]
        )

    def _init_params(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.InstanceNorm2d)):
                if m.weight is not None:
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv2(x)
        if hasattr(self, "pool2"):
            x = self.pool2(x)
        x = self.conv3(x)
        if hasattr(self, "pool3"):
            x = self.pool3(x)
        return self.conv5(self.conv4(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        v = self.global_avgpool(self.featuremaps(x)).flatten(1)
        if self.fc is not None:
            v = self.fc(v)
        b = self.neck(v) if self.neck is not None else v
        if not self.training:
            return b
        if self.classifier is None:
            raise RuntimeError("OSNet built with num_classes=0 has no classifier to train")
        return self.classifier(b), v
