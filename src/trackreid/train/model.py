"""The network, its initialisation from pretrained weights, the optimizer and the learning-rate schedule."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from trackreid.errors import ModelError
from trackreid.models.osnet import OSNet
from trackreid.models.registry import Preprocess, create_model
from trackreid.train.config import SolverConfig, TrainConfig

log = logging.getLogger(__name__)

HEAD_MODULES = ("neck", "classifier")


@dataclass
class InitReport:
    """What an initialisation from pretrained weights did."""

    path: str
    source_format: str
    loaded: int
    new: list[str] = field(default_factory=list)  # in the model, not in the file
    unused: list[str] = field(default_factory=list)  # in the file, not in the model

    def describe(self) -> str:
        def short(keys: list[str]) -> str:
            groups = sorted({k.split(".")[0] for k in keys})
            return ", ".join(groups) if groups else "none"

        return (f"initialised from {self.path} ({self.source_format}): {self.loaded} tensors loaded; "
                f"new (trained from scratch): {short(self.new)}; in the file but unused: {short(self.unused)}")


def preprocess_of(cfg: TrainConfig, test: bool = True) -> Preprocess:
    """How images are fed to the network, as recorded in checkpoints for extraction."""
    h, w = cfg.input.size_test if test else cfg.input.size_train
    m, s = cfg.model.pixel_mean, cfg.model.pixel_std
    mean = (round(m[0] / 255, 7), round(m[1] / 255, 7), round(m[2] / 255, 7))  # 0.224, not 0.22399999999999998
    std = (round(s[0] / 255, 7), round(s[1] / 255, 7), round(s[2] / 255, 7))
    return Preprocess(height=h, width=w, mean=mean, std=std, interpolation=cfg.input.interpolation)


def build_model(cfg: TrainConfig, num_classes: int) -> OSNet:
    b = cfg.model.backbone
    if cfg.model.num_classes and cfg.model.num_classes != num_classes:
        raise ModelError(f"MODEL.HEADS.NUM_CLASSES is {cfg.model.num_classes} but the training data has "
                         f"{num_classes} identities; set it to 0 (taken from the data)")
    return create_model(b.arch, feature_dim=b.feat_dim if b.with_fc else None, no_fc=not b.with_fc,
                        neck=cfg.model.with_bnneck, num_classes=num_classes)


def init_from(model: OSNet, path: Path, arch: str, backbone_only: bool = False) -> InitReport:
    """Load pretrained weights (torchreid, FastReID or ours) non-strictly, the classifier re-sized.

    The file's architecture must be the configured one; tensors with another shape are an
    error naming them. The classifier (any number of identities) is never loaded.
    """
    from trackreid.models.weights import infer_arch, load_state

    sd, fmt, _config, _pre = load_state(path)
    try:
        infer_arch(sd, path, arch)  # the configured architecture (one comparison: fast)
    except ModelError:
        found = infer_arch(sd, path)  # which one it is, for the message (raises if none)
        raise ModelError(f"{path}: these weights are {found}, the config builds {arch}; set MODEL.BACKBONE.DEPTH "
                         "(and WITH_IBN / WITH_AIN) to match the weights") from None
    if backbone_only:
        sd = {k: v for k, v in sd.items() if not k.startswith(HEAD_MODULES)}
    own = model.state_dict()
    misshaped = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in sd.items()
                 if k in own and v.shape != own[k].shape]
    if misshaped:
        raise ModelError(f"{path}: tensors of another shape than the model's: {', '.join(misshaped[:4])}; check "
                         "MODEL.BACKBONE.FEAT_DIM and WITH_FC against the weights")
    result = model.load_state_dict(sd, strict=False)
    new = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    return InitReport(str(path), fmt, len(sd) - len(result.unexpected_keys), new, list(result.unexpected_keys))


def _is_head(name: str) -> bool:
    return name.startswith(HEAD_MODULES)


def param_groups(model: nn.Module, s: SolverConfig) -> list[dict[str, object]]:
    """FastReID's grouping: rates and weight decay per parameter kind (bias, norm, head)."""
    norm_types = (nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)
    norm_params = {id(p) for m in model.modules() if isinstance(m, norm_types) for p in m.parameters(recurse=False)}
    groups: list[dict[str, object]] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lr, wd = s.base_lr, s.weight_decay
        if id(p) in norm_params:
            wd = s.weight_decay_norm
        if name.endswith(".bias"):
            lr, wd = s.base_lr * s.bias_lr_factor, s.weight_decay_bias
        if _is_head(name):
            lr *= s.heads_lr_factor
        groups.append({"params": [p], "lr": lr, "initial_lr": lr, "weight_decay": wd, "name": name})
    return groups


def build_optimizer(model: nn.Module, s: SolverConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, s)
    if s.opt == "SGD":
        return torch.optim.SGD(groups, lr=s.base_lr, momentum=s.momentum, nesterov=s.nesterov)  # type: ignore[arg-type]
    if s.opt == "AdamW":
        return torch.optim.AdamW(groups, lr=s.base_lr)  # type: ignore[arg-type]
    return torch.optim.Adam(groups, lr=s.base_lr, amsgrad=s.opt == "AMSGrad")  # type: ignore[arg-type]


def lr_factor(s: SolverConfig, iteration: int, epoch: int) -> float:
    """Multiplier of the base rate: warmup (by iteration) times the main schedule (by epoch)."""
    warm = 1.0
    if iteration < s.warmup_iters:
        if s.warmup_method == "constant":
            warm = s.warmup_factor
        else:
            alpha = iteration / s.warmup_iters
            warm = s.warmup_factor * (1 - alpha) + alpha
    if s.sched == "CosineAnnealingLR":
        if epoch < s.delay_epochs:
            main = 1.0
        else:
            span = max(1, s.max_epoch - s.delay_epochs)
            t = min(epoch - s.delay_epochs, span)
            eta = s.eta_min_lr / s.base_lr
            main = eta + (1 - eta) * (1 + math.cos(math.pi * t / span)) / 2
    else:
        main = s.gamma ** sum(1 for step in s.steps if epoch >= step)
    return warm * main


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> float:
    for g in optimizer.param_groups:
        g["lr"] = g["initial_lr"] * factor
    return float(optimizer.param_groups[0]["lr"]) if optimizer.param_groups else 0.0


def frozen_names(model: nn.Module, layers: tuple[str, ...]) -> set[str]:
    """Top-level module names frozen by ``MODEL.FREEZE_LAYERS`` (``backbone`` = all but the head)."""
    tops = [n for n, _ in model.named_children()]
    out: set[str] = set()
    for layer in layers:
        if layer == "backbone":
            out |= {n for n in tops if n not in HEAD_MODULES}
        elif layer in tops:
            out.add(layer)
        else:
            from trackreid.suggest import did_you_mean

            raise ModelError(f"MODEL.FREEZE_LAYERS: no module {layer!r}{did_you_mean(layer, tops)}; "
                             f"known: backbone, {', '.join(tops)}")
    return out
