"""FastReID-style training configuration: YAML files, ``_BASE_`` inheritance, ``KEY VALUE`` overrides.

The schema (:data:`SCHEMA`) lists every key FastReID v1 knows (``fastreid/config/defaults.py``)
plus a few trackreid extensions. Its defaults are FastReID's defaults with
``configs/Base-bagtricks.yml`` applied and OSNet chosen as the backbone, so a short config such
as the seed's trains a BoT-style model (BNNeck, CE with label smoothing + hard triplet, PK
sampler, flip, pad-and-crop, random erasing).

* Files are read with ``yaml.safe_load``; string values of tuple/list/number keys are decoded
  with :func:`ast.literal_eval` as yacs does, so ``NAMES: ("my_dataset",)`` is a tuple.
* Pre-v1 names (the seed's ``osnet_x1_0`` / ``BNneckHead`` / ``avgpool``, ``INPUT.DO_FLIP``, ...)
  are mapped onto the canonical keys; each mapping is reported in :attr:`TrainConfig.notes`.
* Unknown keys and values of the wrong type are :class:`InputError` with the file, line and a
  did-you-mean. Keys FastReID has but this trainer does not implement are accepted at their
  default value only (for example ``INPUT.AUTOAUG.ENABLED: False``).
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trackreid.errors import InputError, yaml_error_text
from trackreid.suggest import did_you_mean

log = logging.getLogger(__name__)

DEPTHS = ("x1_0", "x0_75", "x0_5", "x0_25", "tiny")


@dataclass(frozen=True)
class Key:
    """One configuration key: default, value kind, allowed values, and how the trainer uses it."""

    default: Any
    kind: str  # str | int | float | bool | strs | ints | floats
    allowed: tuple[Any, ...] | None = None
    status: str = "used"  # used | ignored (accepted, has no effect here) | extension (not in FastReID)
    doc: str = ""


def _k(default: Any, doc: str = "", *, kind: str | None = None, allowed: tuple[Any, ...] | None = None,
       status: str = "used") -> Key:
    if kind is None:
        if isinstance(default, bool):
            kind = "bool"
        elif isinstance(default, int):
            kind = "int"
        elif isinstance(default, float):
            kind = "float"
        elif isinstance(default, str):
            kind = "str"
        elif isinstance(default, tuple):
            kind = "strs"
        elif isinstance(default, list) and all(isinstance(v, int) for v in default):
            kind = "ints"
        else:
            kind = "floats"
    return Key(default, kind, allowed, status, doc)


_OFF = (False,)
_IMAGENET_MEAN = [123.675, 116.28, 103.53]
_IMAGENET_STD = [58.395, 57.12, 57.375]

SCHEMA: dict[str, Key] = {
    "MODEL.DEVICE": _k("auto", "auto, cpu, cuda or cuda:N (FastReID's default is cuda; ours picks cuda when "
                       "present, else the CPU)"),
    "MODEL.META_ARCHITECTURE": _k("Baseline", "backbone + embedding head", allowed=("Baseline",)),
    "MODEL.FREEZE_LAYERS": _k([], "modules kept frozen for SOLVER.FREEZE_ITERS iterations: 'backbone' "
                              "(everything but neck and classifier) or top-level names (conv1 ... fc)",
                              kind="strs"),
    "MODEL.BACKBONE.NAME": _k("build_osnet_backbone", "the backbone builder", allowed=("build_osnet_backbone",)),
    "MODEL.BACKBONE.DEPTH": _k("x1_0", "OSNet width", allowed=DEPTHS),
    "MODEL.BACKBONE.LAST_STRIDE": _k(1, "ResNet option; OSNet has none", status="ignored"),
    "MODEL.BACKBONE.FEAT_DIM": _k(512, "embedding width: the fc width (WITH_FC), else the last stage's"),
    "MODEL.BACKBONE.NORM": _k("BN", allowed=("BN",)),
    "MODEL.BACKBONE.WITH_IBN": _k(False, "OSNet-IBN (x1_0 only)"),
    "MODEL.BACKBONE.WITH_SE": _k(False, allowed=_OFF),
    "MODEL.BACKBONE.WITH_NL": _k(False, allowed=_OFF),
    "MODEL.BACKBONE.PRETRAIN": _k(True, "initialise from PRETRAIN_PATH"),
    "MODEL.BACKBONE.PRETRAIN_PATH": _k("", "torchreid / FastReID / trackreid weights (path or zoo name); the "
                                       "classifier is dropped and re-sized to the training identities"),
    "MODEL.BACKBONE.WITH_AIN": _k(False, "OSNet-AIN", status="extension"),
    "MODEL.BACKBONE.WITH_FC": _k(True, "keep torchreid's fc embedding layer (Linear+BN+ReLU); False ends "
                                 "at the pooled last stage as FastReID's OSNet does", status="extension"),
    "MODEL.HEADS.NAME": _k("EmbeddingHead", allowed=("EmbeddingHead",)),
    "MODEL.HEADS.NORM": _k("BN", allowed=("BN",)),
    "MODEL.HEADS.NUM_CLASSES": _k(0, "0 = the number of training identities (set from the data)"),
    "MODEL.HEADS.EMBEDDING_DIM": _k(0, "size the embedding with MODEL.BACKBONE.FEAT_DIM", allowed=(0,)),
    "MODEL.HEADS.WITH_BNNECK": _k(True, "BatchNorm neck; its output is the embedding at test time"),
    "MODEL.HEADS.NECK_FEAT": _k("before", "feature the triplet loss sees: before or after the neck",
                                allowed=("before", "after")),
    "MODEL.HEADS.POOL_LAYER": _k("GlobalAvgPool", allowed=("GlobalAvgPool", "FastGlobalAvgPool")),
    "MODEL.HEADS.CLS_LAYER": _k("Linear", allowed=("Linear",)),
    "MODEL.HEADS.MARGIN": _k(0.0, "margin classifiers only", status="ignored"),
    "MODEL.HEADS.SCALE": _k(1.0, "margin classifiers only", status="ignored"),
    "MODEL.LOSSES.NAME": _k(("CrossEntropyLoss", "TripletLoss"), "any of CrossEntropyLoss, TripletLoss"),
    "MODEL.LOSSES.CE.EPSILON": _k(0.1, "label smoothing (0 = none)"),
    "MODEL.LOSSES.CE.ALPHA": _k(0.2, "adaptive label smoothing only", status="ignored"),
    "MODEL.LOSSES.CE.SCALE": _k(1.0, "weight of the loss"),
    "MODEL.LOSSES.FL.ALPHA": _k(0.25, status="ignored"),
    "MODEL.LOSSES.FL.GAMMA": _k(2.0, status="ignored"),
    "MODEL.LOSSES.FL.SCALE": _k(1.0, status="ignored"),
    "MODEL.LOSSES.TRI.MARGIN": _k(0.3, "0 = soft margin"),
    "MODEL.LOSSES.TRI.NORM_FEAT": _k(False, "L2-normalise features first (cosine distance)"),
    "MODEL.LOSSES.TRI.HARD_MINING": _k(True, "batch-hard; False = softmax-weighted mining"),
    "MODEL.LOSSES.TRI.SCALE": _k(1.0, "weight of the loss"),
    "MODEL.LOSSES.CIRCLE.MARGIN": _k(0.25, status="ignored"),
    "MODEL.LOSSES.CIRCLE.GAMMA": _k(128.0, status="ignored"),
    "MODEL.LOSSES.CIRCLE.SCALE": _k(1.0, status="ignored"),
    "MODEL.LOSSES.COSFACE.MARGIN": _k(0.25, status="ignored"),
    "MODEL.LOSSES.COSFACE.GAMMA": _k(128.0, status="ignored"),
    "MODEL.LOSSES.COSFACE.SCALE": _k(1.0, status="ignored"),
    "MODEL.WEIGHTS": _k("", "whole-model weights to start from (and to evaluate with --eval-only)"),
    "MODEL.PIXEL_MEAN": _k(_IMAGENET_MEAN, "RGB mean on the 0-255 scale"),
    "MODEL.PIXEL_STD": _k(_IMAGENET_STD, "RGB std on the 0-255 scale"),
    "KD.MODEL_CONFIG": _k([], kind="strs", allowed=((),)),
    "KD.MODEL_WEIGHTS": _k([], kind="strs", allowed=((),)),
    "KD.EMA.ENABLED": _k(False, allowed=_OFF),
    "KD.EMA.MOMENTUM": _k(0.999, status="ignored"),
    "INPUT.SIZE_TRAIN": _k([256, 128], "height, width"),
    "INPUT.SIZE_TEST": _k([256, 128], "height, width; recorded in the checkpoint for extraction"),
    "INPUT.INTERPOLATION": _k("bilinear", "resize filter (torchreid: bilinear, FastReID: bicubic)",
                              allowed=("bilinear", "bicubic"), status="extension"),
    "INPUT.CROP.ENABLED": _k(False, allowed=_OFF),
    "INPUT.CROP.SIZE": _k([224, 224], status="ignored"),
    "INPUT.CROP.SCALE": _k([0.16, 1.0], status="ignored"),
    "INPUT.CROP.RATIO": _k([0.75, 1.3333333], status="ignored"),
    "INPUT.FLIP.ENABLED": _k(True, "random horizontal flip"),
    "INPUT.FLIP.PROB": _k(0.5),
    "INPUT.PADDING.ENABLED": _k(True, "pad then random crop back to SIZE_TRAIN"),
    "INPUT.PADDING.MODE": _k("constant", allowed=("constant", "edge", "reflect")),
    "INPUT.PADDING.SIZE": _k(10),
    "INPUT.CJ.ENABLED": _k(False, "colour jitter"),
    "INPUT.CJ.PROB": _k(0.5),
    "INPUT.CJ.BRIGHTNESS": _k(0.15),
    "INPUT.CJ.CONTRAST": _k(0.15),
    "INPUT.CJ.SATURATION": _k(0.1),
    "INPUT.CJ.HUE": _k(0.1),
    "INPUT.AFFINE.ENABLED": _k(False, allowed=_OFF),
    "INPUT.AUTOAUG.ENABLED": _k(False, allowed=_OFF),
    "INPUT.AUTOAUG.PROB": _k(0.0, status="ignored"),
    "INPUT.AUGMIX.ENABLED": _k(False, allowed=_OFF),
    "INPUT.AUGMIX.PROB": _k(0.0, status="ignored"),
    "INPUT.REA.ENABLED": _k(True, "random erasing"),
    "INPUT.REA.PROB": _k(0.5),
    "INPUT.REA.VALUE": _k(_IMAGENET_MEAN, "fill colour, RGB 0-255"),
    "INPUT.RPT.ENABLED": _k(False, allowed=_OFF),
    "INPUT.RPT.PROB": _k(0.5, status="ignored"),
    "DATASETS.NAMES": _k(("Market1501",), "training sets: prepared folders (a path, or a name under the "
                         "datasets root)"),
    "DATASETS.TESTS": _k(("Market1501",), "test sets (their query/ and gallery/)"),
    "DATASETS.COMBINEALL": _k(False, allowed=_OFF),
    "DATALOADER.SAMPLER_TRAIN": _k("NaiveIdentitySampler", "PK sampler, or TrainingSampler (plain shuffle)",
                                   allowed=("NaiveIdentitySampler", "TrainingSampler")),
    "DATALOADER.NUM_INSTANCE": _k(4, "K images per identity in a batch"),
    "DATALOADER.NUM_WORKERS": _k(8, "image decoding threads (capped at the CPU count)"),
    "DATALOADER.SET_WEIGHT": _k([], kind="floats", status="ignored"),
    "SOLVER.AMP.ENABLED": _k(False, "mixed precision: float16 on CUDA, bfloat16 on the CPU"),
    "SOLVER.OPT": _k("Adam", allowed=("Adam", "AdamW", "SGD", "AMSGrad")),
    "SOLVER.MAX_EPOCH": _k(120),
    "SOLVER.BASE_LR": _k(0.00035),
    "SOLVER.BIAS_LR_FACTOR": _k(1.0),
    "SOLVER.HEADS_LR_FACTOR": _k(1.0, "learning-rate factor of the neck and classifier"),
    "SOLVER.MOMENTUM": _k(0.9, "SGD momentum"),
    "SOLVER.NESTEROV": _k(False),
    "SOLVER.WEIGHT_DECAY": _k(0.0005),
    "SOLVER.WEIGHT_DECAY_NORM": _k(0.0005, "for BatchNorm/InstanceNorm weights"),
    "SOLVER.WEIGHT_DECAY_BIAS": _k(0.0005),
    "SOLVER.SCHED": _k("MultiStepLR", allowed=("MultiStepLR", "CosineAnnealingLR")),
    "SOLVER.DELAY_EPOCHS": _k(0, "cosine: epochs at full rate before the decay"),
    "SOLVER.GAMMA": _k(0.1),
    "SOLVER.STEPS": _k([40, 90], "epochs at which MultiStepLR multiplies the rate by GAMMA"),
    "SOLVER.ETA_MIN_LR": _k(1e-7),
    "SOLVER.WARMUP_FACTOR": _k(0.1),
    "SOLVER.WARMUP_ITERS": _k(2000, "iterations (everything else counts epochs)"),
    "SOLVER.WARMUP_METHOD": _k("linear", allowed=("linear", "constant")),
    "SOLVER.FREEZE_ITERS": _k(0),
    "SOLVER.SWA.ENABLED": _k(False, allowed=_OFF),
    "SOLVER.SWA.ITER": _k(10, status="ignored"),
    "SOLVER.SWA.PERIOD": _k(2, status="ignored"),
    "SOLVER.SWA.LR_FACTOR": _k(10.0, status="ignored"),
    "SOLVER.SWA.ETA_MIN_LR": _k(3.5e-6, status="ignored"),
    "SOLVER.SWA.LR_SCHED": _k(False, status="ignored"),
    "SOLVER.CHECKPOINT_PERIOD": _k(20, "epochs between checkpoints"),
    "SOLVER.IMS_PER_BATCH": _k(64),
    "SOLVER.CLIP_GRADIENTS.ENABLED": _k(False),
    "SOLVER.CLIP_GRADIENTS.CLIP_TYPE": _k("norm", allowed=("norm", "value")),
    "SOLVER.CLIP_GRADIENTS.CLIP_VALUE": _k(5.0),
    "SOLVER.CLIP_GRADIENTS.NORM_TYPE": _k(2.0),
    "TEST.EVAL_PERIOD": _k(20, "epochs between evaluations (0 = only at the end)"),
    "TEST.IMS_PER_BATCH": _k(128),
    "TEST.METRIC": _k("cosine", allowed=("cosine", "euclidean")),
    "TEST.ROC.ENABLED": _k(False, allowed=_OFF),
    "TEST.FLIP.ENABLED": _k(False, "average the features of the image and its mirror"),
    "TEST.AQE.ENABLED": _k(False, allowed=_OFF),
    "TEST.AQE.ALPHA": _k(3.0, status="ignored"),
    "TEST.AQE.QE_TIME": _k(1, status="ignored"),
    "TEST.AQE.QE_K": _k(5, status="ignored"),
    "TEST.RERANK.ENABLED": _k(False, allowed=_OFF),
    "TEST.RERANK.K1": _k(20, status="ignored"),
    "TEST.RERANK.K2": _k(6, status="ignored"),
    "TEST.RERANK.LAMBDA": _k(0.3, status="ignored"),
    "TEST.PRECISE_BN.ENABLED": _k(False, allowed=_OFF),
    "TEST.PRECISE_BN.DATASET": _k("Market1501", status="ignored"),
    "TEST.PRECISE_BN.NUM_ITER": _k(300, status="ignored"),
    "OUTPUT_DIR": _k("logs/"),
    "CUDNN_BENCHMARK": _k(False),
    "SEED": _k(0, "seeds initialisation, sampling and augmentation (runs are repeatable)", status="extension"),
}

# Keys renamed since pre-v1 FastReID -> their canonical name.
KEY_ALIASES: dict[str, str] = {
    "INPUT.DO_FLIP": "INPUT.FLIP.ENABLED",
    "INPUT.FLIP_PROB": "INPUT.FLIP.PROB",
    "INPUT.DO_PAD": "INPUT.PADDING.ENABLED",
    "INPUT.PADDING": "INPUT.PADDING.SIZE",
    "INPUT.PADDING_MODE": "INPUT.PADDING.MODE",
    "INPUT.DO_CJ": "INPUT.CJ.ENABLED",
    "INPUT.DO_AUTOAUG": "INPUT.AUTOAUG.ENABLED",
    "INPUT.DO_AUGMIX": "INPUT.AUGMIX.ENABLED",
    "INPUT.REA.MEAN": "INPUT.REA.VALUE",
    "SOLVER.AMP_ENABLED": "SOLVER.AMP.ENABLED",
    "SOLVER.FP16_ENABLED": "SOLVER.AMP.ENABLED",
    "TEST.ROC_ENABLED": "TEST.ROC.ENABLED",
    "MODEL.HEADS.IN_FEAT": "MODEL.BACKBONE.FEAT_DIM",
}

# Pre-v1 keys whose value is translated into another key (see _map_seed_values).
_VALUE_MAPPED_KEYS = ("DATALOADER.PK_SAMPLER",)

# Removed keys whose meaning changed: no silent mapping, a pointer to the replacement.
REMOVED_KEYS: dict[str, str] = {
    "SOLVER.MAX_ITER": "training length is SOLVER.MAX_EPOCH (epochs) since FastReID v1",
    "SOLVER.DELAY_ITERS": "use SOLVER.DELAY_EPOCHS (epochs)",
    "MODEL.HEADS.REDUCTION_DIM": "size the embedding with MODEL.BACKBONE.FEAT_DIM",
    "DATALOADER.NAIVE_WAY": "use DATALOADER.SAMPLER_TRAIN: NaiveIdentitySampler",
}


@dataclass(frozen=True)
class BackboneConfig:
    arch: str  # our architecture name, e.g. osnet_x0_25
    feat_dim: int
    with_fc: bool
    pretrain: bool
    pretrain_path: str


@dataclass(frozen=True)
class ModelConfig:
    device: str
    backbone: BackboneConfig
    with_bnneck: bool
    neck_feat: str
    num_classes: int
    losses: tuple[str, ...]
    ce_epsilon: float
    ce_scale: float
    tri_margin: float
    tri_norm_feat: bool
    tri_hard_mining: bool
    tri_scale: float
    weights: str
    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]
    freeze_layers: tuple[str, ...]


@dataclass(frozen=True)
class InputConfig:
    size_train: tuple[int, int]
    size_test: tuple[int, int]
    interpolation: str
    flip: bool
    flip_prob: float
    padding: bool
    padding_mode: str
    padding_size: int
    cj: bool
    cj_prob: float
    cj_brightness: float
    cj_contrast: float
    cj_saturation: float
    cj_hue: float
    rea: bool
    rea_prob: float
    rea_value: tuple[float, float, float]


@dataclass(frozen=True)
class SolverConfig:
    amp: bool
    opt: str
    max_epoch: int
    base_lr: float
    bias_lr_factor: float
    heads_lr_factor: float
    momentum: float
    nesterov: bool
    weight_decay: float
    weight_decay_norm: float
    weight_decay_bias: float
    sched: str
    delay_epochs: int
    gamma: float
    steps: tuple[int, ...]
    eta_min_lr: float
    warmup_factor: float
    warmup_iters: int
    warmup_method: str
    freeze_iters: int
    checkpoint_period: int
    ims_per_batch: int
    clip_gradients: bool
    clip_type: str
    clip_value: float
    norm_type: float


@dataclass(frozen=True)
class TrainConfig:
    """The resolved configuration: typed sections plus the flat key -> value table it came from."""

    model: ModelConfig
    input: InputConfig
    datasets: tuple[str, ...]
    tests: tuple[str, ...]
    sampler: str
    num_instance: int
    num_workers: int
    solver: SolverConfig
    eval_period: int
    test_batch: int
    test_metric: str
    test_flip: bool
    output_dir: Path
    cudnn_benchmark: bool
    seed: int
    values: Mapping[str, Any] = field(repr=False)
    notes: tuple[str, ...] = ()

    def to_nested(self) -> dict[str, Any]:
        """The full resolved configuration as nested plain dicts/lists (YAML- and JSON-ready)."""
        return unflatten(self.values)

    def to_yaml(self) -> str:
        head = "".join(f"# {n}\n" for n in self.notes)
        return head + yaml.dump(self.to_nested(), Dumper=_Dumper, sort_keys=False)


class _Dumper(yaml.SafeDumper):
    """Block mappings, flow lists: reads like FastReID's config files."""


_Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


# ----------------------------------------------------------------------------- reading


def unflatten(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in SCHEMA:  # schema order, so the saved file reads like FastReID's defaults
        if key not in values:
            continue
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        v = values[key]
        node[leaf] = list(v) if isinstance(v, tuple) else v
    return out


def _line_map(text: str) -> dict[str, int]:
    """Dotted key -> 1-based line number, from the YAML node tree (no object construction)."""
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    path = f"{prefix}{k.value}"
                    lines[path] = k.start_mark.line + 1
                    walk(v, path + ".")

    walk(root, "")
    return lines


@dataclass
class _Source:
    where: str  # "file.yml:12" or "command line"


def _where(src: Mapping[str, _Source], key: str) -> str:
    s = src.get(key)
    return f"{s.where}: " if s else ""


def _flatten(d: Mapping[str, Any], prefix: str, path: Path, lines: dict[str, int],
             out: dict[str, Any], src: dict[str, _Source]) -> None:
    for k, v in d.items():
        if not isinstance(k, str):
            raise InputError(f"{path}: key {k!r} under {prefix or 'the top level'} is not a name")
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            if not v:
                continue
            _flatten(v, key + ".", path, lines, out, src)
        else:
            out[key] = v
            src[key] = _Source(f"{path}:{lines[key]}" if key in lines else str(path))


def _unknown_key_message(key: str) -> str:
    if key in REMOVED_KEYS:
        return f"{key} is a pre-v1 FastReID key that trackreid does not map: {REMOVED_KEYS[key]}"
    leaf = key.rsplit(".", 1)[-1]
    same_leaf = [k for k in SCHEMA if k.rsplit(".", 1)[-1] == leaf]
    hint = f" (did you mean {same_leaf[0]!r}?)" if same_leaf else did_you_mean(key, list(SCHEMA) + list(KEY_ALIASES))
    if not hint:
        section = key.split(".", 1)[0]
        if section not in {k.split(".", 1)[0] for k in SCHEMA}:
            hint = did_you_mean(section, {k.split(".", 1)[0] for k in SCHEMA})
    return f"unknown config key {key}{hint}. The accepted keys are listed in docs/training.md"


def _canonical_keys(values: dict[str, Any], src: dict[str, _Source], notes: list[str]) -> None:
    for old, new in KEY_ALIASES.items():
        if old in values:
            if new in values and values[new] != values[old]:
                raise InputError(f"{_where(src, old)}{old} (old name of {new}) and {new} are both set, "
                                 f"to different values; keep only {new}")
            values[new] = values.pop(old)
            src[new] = src.pop(old)
            notes.append(f"{old} is the pre-v1 name of {new}; mapped")
    for key in values:
        if key not in SCHEMA and key not in _VALUE_MAPPED_KEYS:
            raise InputError(f"{_where(src, key)}{_unknown_key_message(key)}")


def _read_file(path: Path, stack: tuple[Path, ...], notes: list[str]) -> tuple[dict[str, Any], dict[str, _Source]]:
    path = path.expanduser()
    if path.resolve() in stack:
        chain = " -> ".join(str(p) for p in (*stack, path.resolve()))
        raise InputError(f"{path}: _BASE_ inheritance loops ({chain})")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        where = f" (named by _BASE_ in {stack[-1]})" if stack else ""
        raise InputError(f"{path}: no such config file{where}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file; --config-file expects a YAML config") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read the config file ({e.strerror or e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML at {yaml_error_text(e)}; fix the file (a FastReID-style "
                         "config of KEY: value lines)") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InputError(f"{path}: a config file must be a mapping of KEY: value, found {type(data).__name__}")
    data = dict(data)
    values: dict[str, Any] = {}
    src: dict[str, _Source] = {}
    base = data.pop("_BASE_", None)
    if base is not None:
        if not isinstance(base, str):
            raise InputError(f"{path}: _BASE_ must be a file name, found {base!r}")
        base_path = Path(base).expanduser()
        if not base_path.is_absolute():
            base_path = path.parent / base_path
        values, src = _read_file(base_path, (*stack, path.resolve()), notes)
    own: dict[str, Any] = {}
    own_src: dict[str, _Source] = {}
    _flatten(data, "", path, _line_map(text), own, own_src)
    _canonical_keys(own, own_src, notes)
    values.update(own)
    src.update(own_src)
    return values, src


def parse_overrides(opts: Sequence[str]) -> list[tuple[str, str]]:
    """``["SOLVER.BASE_LR", "0.001", ...]`` -> pairs; an odd count is an error."""
    opts = list(opts)
    if len(opts) % 2:
        raise InputError(f"overrides come in KEY VALUE pairs; {opts[-1]!r} has no value")
    return [(opts[i], opts[i + 1]) for i in range(0, len(opts), 2)]


# ----------------------------------------------------------------------------- values


def _decode(kind: str, value: Any) -> Any:
    """yacs-style: a string given for a non-string key is read as a Python literal."""
    if isinstance(value, str) and kind != "str":
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def _coerce(key: str, spec: Key, value: Any, where: str) -> Any:
    value = _decode(spec.kind, value)

    def bad(expected: str) -> InputError:
        return InputError(f"{where}{key}: expected {expected}, found {value!r} ({type(value).__name__})")

    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        raise bad("true or false")
    if spec.kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad("an integer")
    if spec.kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad("a number")
    if spec.kind == "str":
        if isinstance(value, str):
            return value
        raise bad("a string")
    if spec.kind == "strs":
        if isinstance(value, str):
            return (value,)
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise bad('a list of strings, e.g. ("name",)')
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 for v in value):
        if spec.kind == "ints":
            if all(float(v).is_integer() for v in value):
                return [int(v) for v in value]
            raise bad("a list of integers")
        return [float(v) for v in value]
    raise bad("a list of integers" if spec.kind == "ints" else "a list of numbers")


def _arch_from_seed_name(name: str) -> dict[str, Any] | None:
    """``osnet_x1_0`` / ``osnet_ibn_x1_0`` / ``osnet_ain_x0_25`` -> canonical backbone keys."""
    for prefix, extra in (("osnet_ibn_", {"MODEL.BACKBONE.WITH_IBN": True}),
                          ("osnet_ain_", {"MODEL.BACKBONE.WITH_AIN": True}), ("osnet_", {})):
        if name.startswith(prefix) and name[len(prefix):] in DEPTHS:
            return {"MODEL.BACKBONE.NAME": "build_osnet_backbone", "MODEL.BACKBONE.DEPTH": name[len(prefix):],
                    **extra}
    return None


def _map_seed_values(values: dict[str, Any], src: dict[str, _Source], notes: list[str]) -> None:
    """The seed's (and pre-v1 FastReID's) value spellings -> canonical values."""
    name = values.get("MODEL.BACKBONE.NAME")
    if isinstance(name, str) and name != "build_osnet_backbone":
        mapped = _arch_from_seed_name(name)
        if mapped is not None:
            for k, v in mapped.items():
                if k != "MODEL.BACKBONE.NAME" and k in values and values[k] != v:
                    raise InputError(f"{_where(src, 'MODEL.BACKBONE.NAME')}MODEL.BACKBONE.NAME {name!r} implies "
                                     f"{k} {v!r}, but {k} is {values[k]!r}; set one of them")
            values.update(mapped)
            described = ", ".join(f"{k} {v!r}" for k, v in mapped.items())
            notes.append(f"MODEL.BACKBONE.NAME {name!r} is a torchreid model name; mapped to {described}")
    head = values.get("MODEL.HEADS.NAME")
    if head == "BNneckHead":
        if values.get("MODEL.HEADS.WITH_BNNECK") is False:
            raise InputError(f"{_where(src, 'MODEL.HEADS.NAME')}MODEL.HEADS.NAME 'BNneckHead' has a BNNeck but "
                             "MODEL.HEADS.WITH_BNNECK is False")
        values["MODEL.HEADS.NAME"] = "EmbeddingHead"
        values["MODEL.HEADS.WITH_BNNECK"] = True
        notes.append("MODEL.HEADS.NAME 'BNneckHead' is the pre-v1 FastReID name; mapped to "
                     "MODEL.HEADS.NAME 'EmbeddingHead' + MODEL.HEADS.WITH_BNNECK True")
    simple = {
        ("MODEL.HEADS.POOL_LAYER", "avgpool"): "GlobalAvgPool",
        ("MODEL.HEADS.CLS_LAYER", "linear"): "Linear",
        ("SOLVER.SCHED", "WarmupMultiStepLR"): "MultiStepLR",
        ("SOLVER.SCHED", "WarmupCosineAnnealingLR"): "CosineAnnealingLR",
        ("SOLVER.OPT", "amsgrad"): "AMSGrad",
        ("SOLVER.OPT", "adam"): "Adam",
        ("SOLVER.OPT", "sgd"): "SGD",
    }
    for (key, old), new in simple.items():
        if values.get(key) == old:
            values[key] = new
            notes.append(f"{key} {old!r} is a pre-v1/torchreid name; mapped to {new!r}")
    pk = _decode("bool", values.pop("DATALOADER.PK_SAMPLER", None))
    if pk is not None:
        where = _where(src, "DATALOADER.PK_SAMPLER")
        src.pop("DATALOADER.PK_SAMPLER", None)
        if not isinstance(pk, bool):
            raise InputError(f"{where}DATALOADER.PK_SAMPLER: expected true or false, found {pk!r}")
        values["DATALOADER.SAMPLER_TRAIN"] = "NaiveIdentitySampler" if pk else "TrainingSampler"
        notes.append(f"DATALOADER.PK_SAMPLER {pk} is pre-v1; mapped to DATALOADER.SAMPLER_TRAIN "
                     f"{values['DATALOADER.SAMPLER_TRAIN']!r}")


def _check_allowed(values: Mapping[str, Any], src: Mapping[str, _Source]) -> None:
    for key, v in values.items():
        spec = SCHEMA[key]
        if spec.allowed is None:
            continue
        probe = tuple(v) if isinstance(v, list) else v
        if probe not in spec.allowed:
            shown = ", ".join(repr(list(a) if isinstance(a, tuple) else a) for a in spec.allowed)
            if len(spec.allowed) == 1:
                raise InputError(f"{_where(src, key)}{key}: {v!r} is not implemented by trackreid's trainer "
                                 f"(accepted: {shown})")
            hint = did_you_mean(str(v), [str(a) for a in spec.allowed]) if isinstance(v, str) else ""
            raise InputError(f"{_where(src, key)}{key}: {v!r}{hint} is not one of {shown}")


def _pair(key: str, v: list[int], src: Mapping[str, _Source]) -> tuple[int, int]:
    if len(v) != 2 or min(v) < 16:
        raise InputError(f"{_where(src, key)}{key}: expected [height, width], each at least 16, found {v}")
    return (int(v[0]), int(v[1]))


def _triple(key: str, v: list[float], src: Mapping[str, _Source]) -> tuple[float, float, float]:
    if len(v) != 3:
        raise InputError(f"{_where(src, key)}{key}: expected 3 values (R, G, B), found {v}")
    return (float(v[0]), float(v[1]), float(v[2]))


def _build(values: Mapping[str, Any], src: Mapping[str, _Source], notes: tuple[str, ...]) -> TrainConfig:
    from trackreid.models.registry import ARCHITECTURES, arch_spec

    v = values

    def positive(key: str, allow_zero: bool = False) -> None:
        if v[key] < 0 or (v[key] == 0 and not allow_zero):
            raise InputError(f"{_where(src, key)}{key}: must be {'>= 0' if allow_zero else '> 0'}, found {v[key]}")

    for key in ("SOLVER.MAX_EPOCH", "SOLVER.BASE_LR", "SOLVER.IMS_PER_BATCH", "DATALOADER.NUM_INSTANCE",
                "TEST.IMS_PER_BATCH", "SOLVER.CHECKPOINT_PERIOD", "INPUT.PADDING.SIZE"):
        positive(key)
    for key in ("SOLVER.WARMUP_ITERS", "SOLVER.FREEZE_ITERS", "TEST.EVAL_PERIOD", "SOLVER.DELAY_EPOCHS",
                "MODEL.HEADS.NUM_CLASSES", "MODEL.LOSSES.CE.EPSILON", "MODEL.LOSSES.TRI.MARGIN",
                "DATALOADER.NUM_WORKERS", "SOLVER.WEIGHT_DECAY"):
        positive(key, allow_zero=True)
    for key in ("INPUT.FLIP.PROB", "INPUT.CJ.PROB", "INPUT.REA.PROB", "SOLVER.WARMUP_FACTOR"):
        if not 0.0 <= v[key] <= 1.0:
            raise InputError(f"{_where(src, key)}{key}: expected a value in [0, 1], found {v[key]}")
    if v["MODEL.LOSSES.CE.EPSILON"] >= 1:
        raise InputError(f"{_where(src, 'MODEL.LOSSES.CE.EPSILON')}MODEL.LOSSES.CE.EPSILON: label smoothing must "
                         f"be in [0, 1), found {v['MODEL.LOSSES.CE.EPSILON']}")
    losses = v["MODEL.LOSSES.NAME"]
    known_losses = ("CrossEntropyLoss", "TripletLoss")
    for name in losses:
        if name not in known_losses:
            raise InputError(f"{_where(src, 'MODEL.LOSSES.NAME')}MODEL.LOSSES.NAME: {name!r}"
                             f"{did_you_mean(name, known_losses)} is not implemented; accepted: "
                             f"{', '.join(known_losses)}")
    if not losses:
        raise InputError(f"{_where(src, 'MODEL.LOSSES.NAME')}MODEL.LOSSES.NAME: name at least one loss")
    if v["MODEL.BACKBONE.WITH_IBN"] and v["MODEL.BACKBONE.WITH_AIN"]:
        raise InputError(f"{_where(src, 'MODEL.BACKBONE.WITH_AIN')}MODEL.BACKBONE.WITH_IBN and WITH_AIN are "
                         "different networks; choose one")
    depth = v["MODEL.BACKBONE.DEPTH"]
    family = ("osnet_ain_" if v["MODEL.BACKBONE.WITH_AIN"]
              else "osnet_ibn_" if v["MODEL.BACKBONE.WITH_IBN"] else "osnet_")
    arch = f"{family}{depth}"
    if arch not in ARCHITECTURES:
        raise InputError(f"{_where(src, 'MODEL.BACKBONE.DEPTH')}no OSNet variant {arch}: "
                         f"MODEL.BACKBONE.DEPTH {depth!r} with the chosen IBN/AIN option; known: "
                         f"{', '.join(sorted(ARCHITECTURES))}")
    last_width = arch_spec(arch).channels[3]
    if not v["MODEL.BACKBONE.WITH_FC"] and v["MODEL.BACKBONE.FEAT_DIM"] != last_width:
        raise InputError(f"{_where(src, 'MODEL.BACKBONE.FEAT_DIM')}MODEL.BACKBONE.FEAT_DIM: {arch} without fc "
                         f"ends at {last_width} channels, found {v['MODEL.BACKBONE.FEAT_DIM']}; set FEAT_DIM "
                         f"{last_width} or MODEL.BACKBONE.WITH_FC True")
    positive("MODEL.BACKBONE.FEAT_DIM")
    batch, k = v["SOLVER.IMS_PER_BATCH"], v["DATALOADER.NUM_INSTANCE"]
    if v["DATALOADER.SAMPLER_TRAIN"] == "NaiveIdentitySampler" and (batch % k or batch // k < 2):
        raise InputError(f"{_where(src, 'SOLVER.IMS_PER_BATCH')}SOLVER.IMS_PER_BATCH {batch} must be a multiple "
                         f"of DATALOADER.NUM_INSTANCE {k} holding at least 2 identities")
    steps = v["SOLVER.STEPS"]
    if list(steps) != sorted(steps):
        raise InputError(f"{_where(src, 'SOLVER.STEPS')}SOLVER.STEPS must increase, found {steps}")
    if not v["DATASETS.NAMES"]:
        raise InputError("DATASETS.NAMES: name at least one training set")
    freeze = tuple(v["MODEL.FREEZE_LAYERS"])
    if freeze and not v["SOLVER.FREEZE_ITERS"]:
        notes = (*notes, "MODEL.FREEZE_LAYERS is set but SOLVER.FREEZE_ITERS is 0: nothing is frozen")
    backbone = BackboneConfig(arch, v["MODEL.BACKBONE.FEAT_DIM"], v["MODEL.BACKBONE.WITH_FC"],
                              v["MODEL.BACKBONE.PRETRAIN"], v["MODEL.BACKBONE.PRETRAIN_PATH"])
    model = ModelConfig(
        device=v["MODEL.DEVICE"], backbone=backbone, with_bnneck=v["MODEL.HEADS.WITH_BNNECK"],
        neck_feat=v["MODEL.HEADS.NECK_FEAT"], num_classes=v["MODEL.HEADS.NUM_CLASSES"], losses=tuple(losses),
        ce_epsilon=v["MODEL.LOSSES.CE.EPSILON"], ce_scale=v["MODEL.LOSSES.CE.SCALE"],
        tri_margin=v["MODEL.LOSSES.TRI.MARGIN"], tri_norm_feat=v["MODEL.LOSSES.TRI.NORM_FEAT"],
        tri_hard_mining=v["MODEL.LOSSES.TRI.HARD_MINING"], tri_scale=v["MODEL.LOSSES.TRI.SCALE"],
        weights=v["MODEL.WEIGHTS"], pixel_mean=_triple("MODEL.PIXEL_MEAN", v["MODEL.PIXEL_MEAN"], src),
        pixel_std=_triple("MODEL.PIXEL_STD", v["MODEL.PIXEL_STD"], src), freeze_layers=freeze,
    )
    if min(model.pixel_std) <= 0:
        raise InputError(f"{_where(src, 'MODEL.PIXEL_STD')}MODEL.PIXEL_STD must be positive, found "
                         f"{list(model.pixel_std)}")
    inp = InputConfig(
        size_train=_pair("INPUT.SIZE_TRAIN", v["INPUT.SIZE_TRAIN"], src),
        size_test=_pair("INPUT.SIZE_TEST", v["INPUT.SIZE_TEST"], src), interpolation=v["INPUT.INTERPOLATION"],
        flip=v["INPUT.FLIP.ENABLED"], flip_prob=v["INPUT.FLIP.PROB"], padding=v["INPUT.PADDING.ENABLED"],
        padding_mode=v["INPUT.PADDING.MODE"], padding_size=v["INPUT.PADDING.SIZE"], cj=v["INPUT.CJ.ENABLED"],
        cj_prob=v["INPUT.CJ.PROB"], cj_brightness=v["INPUT.CJ.BRIGHTNESS"], cj_contrast=v["INPUT.CJ.CONTRAST"],
        cj_saturation=v["INPUT.CJ.SATURATION"], cj_hue=v["INPUT.CJ.HUE"], rea=v["INPUT.REA.ENABLED"],
        rea_prob=v["INPUT.REA.PROB"], rea_value=_triple("INPUT.REA.VALUE", v["INPUT.REA.VALUE"], src),
    )
    solver = SolverConfig(
        amp=v["SOLVER.AMP.ENABLED"], opt=v["SOLVER.OPT"], max_epoch=v["SOLVER.MAX_EPOCH"], base_lr=v["SOLVER.BASE_LR"],
        bias_lr_factor=v["SOLVER.BIAS_LR_FACTOR"], heads_lr_factor=v["SOLVER.HEADS_LR_FACTOR"],
        momentum=v["SOLVER.MOMENTUM"], nesterov=v["SOLVER.NESTEROV"], weight_decay=v["SOLVER.WEIGHT_DECAY"],
        weight_decay_norm=v["SOLVER.WEIGHT_DECAY_NORM"], weight_decay_bias=v["SOLVER.WEIGHT_DECAY_BIAS"],
        sched=v["SOLVER.SCHED"], delay_epochs=v["SOLVER.DELAY_EPOCHS"], gamma=v["SOLVER.GAMMA"],
        steps=tuple(steps), eta_min_lr=v["SOLVER.ETA_MIN_LR"], warmup_factor=v["SOLVER.WARMUP_FACTOR"],
        warmup_iters=v["SOLVER.WARMUP_ITERS"], warmup_method=v["SOLVER.WARMUP_METHOD"],
        freeze_iters=v["SOLVER.FREEZE_ITERS"], checkpoint_period=v["SOLVER.CHECKPOINT_PERIOD"],
        ims_per_batch=batch, clip_gradients=v["SOLVER.CLIP_GRADIENTS.ENABLED"],
        clip_type=v["SOLVER.CLIP_GRADIENTS.CLIP_TYPE"], clip_value=v["SOLVER.CLIP_GRADIENTS.CLIP_VALUE"],
        norm_type=v["SOLVER.CLIP_GRADIENTS.NORM_TYPE"],
    )
    return TrainConfig(
        model=model, input=inp, datasets=tuple(v["DATASETS.NAMES"]), tests=tuple(v["DATASETS.TESTS"]),
        sampler=v["DATALOADER.SAMPLER_TRAIN"], num_instance=k, num_workers=v["DATALOADER.NUM_WORKERS"],
        solver=solver, eval_period=v["TEST.EVAL_PERIOD"], test_batch=v["TEST.IMS_PER_BATCH"],
        test_metric=v["TEST.METRIC"], test_flip=v["TEST.FLIP.ENABLED"], output_dir=Path(v["OUTPUT_DIR"]),
        cudnn_benchmark=v["CUDNN_BENCHMARK"], seed=v["SEED"], values=dict(v), notes=notes,
    )


def load_config(
    path: str | Path | None = None, overrides: Iterable[tuple[str, Any]] | Sequence[str] = (),
) -> TrainConfig:
    """Read a FastReID-style YAML file (with ``_BASE_``), apply ``KEY VALUE`` overrides, validate.

    ``overrides`` is a list of ``(key, value)`` pairs or a flat ``[KEY, VALUE, ...]`` list (the CLI's
    trailing arguments). Values given as strings are decoded as Python literals where the key
    is not a string key, like FastReID's ``--opts``.
    """
    notes: list[str] = []
    values: dict[str, Any] = {}
    src: dict[str, _Source] = {}
    if path is not None:
        values, src = _read_file(Path(path), (), notes)
    given: list[Any] = list(overrides)
    pairs: list[tuple[str, Any]] = (parse_overrides(given) if given and all(isinstance(p, str) for p in given)
                                    else [(str(k), v) for k, v in given])
    cli: dict[str, Any] = {}
    cli_src: dict[str, _Source] = {}
    for key, value in pairs:
        cli[str(key)] = value
        cli_src[str(key)] = _Source("command line")
    _canonical_keys(cli, cli_src, notes)
    values.update(cli)
    src.update(cli_src)
    for key in list(values):
        values[key] = _decode(SCHEMA[key].kind, values[key]) if key in SCHEMA else values[key]
    _map_seed_values(values, src, notes)
    resolved: dict[str, Any] = {}
    for key, spec in SCHEMA.items():
        if key in values:
            resolved[key] = _coerce(key, spec, values[key], _where(src, key))
        else:
            resolved[key] = tuple(spec.default) if spec.kind == "strs" else spec.default
    _check_allowed(resolved, src)
    for key in values:
        if SCHEMA[key].status == "ignored" and resolved[key] != SCHEMA[key].default:
            notes.append(f"{key} has no effect on OSNet training here ({SCHEMA[key].doc or 'unused option'})")
    return _build(resolved, src, tuple(notes))
