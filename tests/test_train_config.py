"""FastReID-style config: the seed's file verbatim, v1 keys, _BASE_, overrides, precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ci import skip_or_fail
from trackreid.errors import InputError
from trackreid.train.config import SCHEMA, load_config

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "configs" / "my_osnet.yml"


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_seed_config_is_shipped_verbatim() -> None:
    seed_doc = (ROOT.parent / "shared" / "seed" / "step3-reid-extraction.md")
    if not seed_doc.is_file():
        skip_or_fail(f"the seed document {seed_doc} is not present")
    text = seed_doc.read_text()
    block = text.split("Tạo `configs/my_osnet.yml`:")[1].split("```yaml\n")[1].split("```")[0]
    assert SEED.read_text() == block


def test_seed_config_maps_pre_v1_names_and_says_so() -> None:
    cfg = load_config(SEED)
    assert cfg.model.backbone.arch == "osnet_x1_0"
    assert cfg.model.with_bnneck
    assert cfg.values["MODEL.BACKBONE.NAME"] == "build_osnet_backbone"
    assert cfg.values["MODEL.HEADS.NAME"] == "EmbeddingHead"
    assert cfg.values["MODEL.HEADS.POOL_LAYER"] == "GlobalAvgPool"
    assert cfg.datasets == ("my_dataset",) and cfg.tests == ("my_dataset",)  # "(...,)" is a tuple, as in yacs
    assert cfg.solver.base_lr == pytest.approx(0.00035) and cfg.solver.warmup_iters == 1500
    assert cfg.num_workers == 4 and cfg.output_dir == Path("logs/osnet_my_dataset")
    notes = " | ".join(cfg.notes)
    for word in ("'osnet_x1_0'", "'BNneckHead'", "'avgpool'"):
        assert word in notes
    # bag-of-tricks defaults fill what the seed leaves out
    assert cfg.model.losses == ("CrossEntropyLoss", "TripletLoss") and cfg.model.ce_epsilon == 0.1
    assert cfg.sampler == "NaiveIdentitySampler" and cfg.input.flip and cfg.input.rea


def test_fastreid_v1_keys_base_inheritance_and_overrides(tmp_path: Path) -> None:
    write(tmp_path, "Base.yml", """
MODEL:
  BACKBONE: {NAME: build_osnet_backbone, DEPTH: x0_5, FEAT_DIM: 512, WITH_IBN: False}
  HEADS: {NAME: EmbeddingHead, WITH_BNNECK: True, NECK_FEAT: after, POOL_LAYER: GlobalAvgPool}
  LOSSES:
    NAME: ("CrossEntropyLoss", "TripletLoss",)
    CE: {EPSILON: 0.1}
    TRI: {MARGIN: 0.0, HARD_MINING: True, NORM_FEAT: False}
SOLVER: {OPT: AdamW, SCHED: CosineAnnealingLR, DELAY_EPOCHS: 5, MAX_EPOCH: 30, AMP: {ENABLED: True}}
INPUT: {FLIP: {ENABLED: True, PROB: 0.5}, PADDING: {ENABLED: True, SIZE: 10}, CJ: {ENABLED: True}}
""")
    child = write(tmp_path, "child.yml", "_BASE_: Base.yml\nSOLVER:\n  BASE_LR: 0.001\n  MAX_EPOCH: 40\n")
    cfg = load_config(child, ["SOLVER.MAX_EPOCH", "50", "INPUT.SIZE_TRAIN", "(128, 64)",
                              "DATASETS.NAMES", '("a", "b")'])
    assert cfg.model.backbone.arch == "osnet_x0_5" and cfg.model.neck_feat == "after"
    assert cfg.model.tri_margin == 0.0 and cfg.solver.opt == "AdamW" and cfg.solver.amp
    assert cfg.solver.base_lr == 0.001 and cfg.solver.max_epoch == 50  # child, then command line win
    assert cfg.input.size_train == (128, 64) and cfg.datasets == ("a", "b") and cfg.input.cj
    assert not cfg.notes  # nothing to map


def test_pre_v1_keys_are_mapped(tmp_path: Path) -> None:
    p = write(tmp_path, "old.yml", """
INPUT: {DO_FLIP: False, DO_PAD: True, PADDING: 4, REA: {ENABLED: True, MEAN: [1.0, 2.0, 3.0]}}
DATALOADER: {PK_SAMPLER: False}
SOLVER: {SCHED: WarmupMultiStepLR, OPT: amsgrad}
""")
    cfg = load_config(p)
    assert not cfg.input.flip and cfg.input.padding and cfg.input.padding_size == 4
    assert cfg.input.rea_value == (1.0, 2.0, 3.0)
    assert cfg.sampler == "TrainingSampler" and cfg.solver.sched == "MultiStepLR" and cfg.solver.opt == "AMSGrad"
    assert len(cfg.notes) == 7


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(SEED, ["MODEL.BACKBONE.NAME", "osnet_ain_x0_25", "SOLVER.STEPS", "[10, 20]"])
    again = load_config(write(tmp_path, "resolved.yml", cfg.to_yaml()))
    assert dict(again.values) == dict(cfg.values)
    assert again.model.backbone.arch == "osnet_ain_x0_25"


@pytest.mark.parametrize(("text", "overrides", "message"), [
    ("SOLVER:\n  BASE_LRR: 0.1\n", [],
     r"bad.yml:2: unknown config key SOLVER.BASE_LRR \(did you mean 'SOLVER.BASE_LR'\?\)"),
    ("SOLVER:\n  EVAL_PERIOD: 3\n", [], r"did you mean 'TEST.EVAL_PERIOD'"),
    ("MODLE:\n  DEVICE: cpu\n", [], r"unknown config key MODLE.DEVICE"),
    ("", ["SOLVER.BASE_LR", "fast"], r"command line: SOLVER.BASE_LR: expected a number, found 'fast'"),
    ("SOLVER:\n  MAX_EPOCH: 1.5\n", [], r"bad.yml:2: SOLVER.MAX_EPOCH: expected an integer"),
    ("INPUT:\n  FLIP:\n    ENABLED: 'yes'\n", [], r"INPUT.FLIP.ENABLED: expected true or false"),
    ("SOLVER:\n  OPT: Adamm\n", [], r"SOLVER.OPT: 'Adamm' \(did you mean 'Adam'\?\) is not one of"),
    ("INPUT:\n  AUTOAUG:\n    ENABLED: True\n", [], r"INPUT.AUTOAUG.ENABLED: True is not implemented"),
    ("MODEL:\n  LOSSES:\n    NAME: ('CircleLoss',)\n", [], r"'CircleLoss'.* is not implemented"),
    ("SOLVER:\n  MAX_ITER: 100\n", [], r"SOLVER.MAX_ITER is a pre-v1 FastReID key.*MAX_EPOCH"),
    ("MODEL:\n  BACKBONE:\n    NAME: osnet_x1_0\n    DEPTH: x0_25\n", [], r"implies MODEL.BACKBONE.DEPTH 'x1_0'"),
    ("MODEL:\n  BACKBONE:\n    DEPTH: x0_25\n    WITH_IBN: True\n", [], r"no OSNet variant osnet_ibn_x0_25"),
    ("SOLVER:\n  IMS_PER_BATCH: 30\n", [], r"multiple of DATALOADER.NUM_INSTANCE 4"),
    ("INPUT:\n  SIZE_TRAIN: [256]\n", [], r"INPUT.SIZE_TRAIN: expected \[height, width\]"),
    ("SOLVER:\n  STEPS: [50, 20]\n", [], r"SOLVER.STEPS must increase"),
    ("- a\n- b\n", [], r"must be a mapping"),
    ("", ["SOLVER.BASE_LR"], r"KEY VALUE pairs"),
    ("_BASE_: missing.yml\n", [], r"missing.yml: no such config file \(named by _BASE_"),
])
def test_bad_configs_are_precise_errors(tmp_path: Path, text: str, overrides: list[str], message: str) -> None:
    p = write(tmp_path, "bad.yml", text)
    with pytest.raises(InputError, match=message):
        load_config(p, overrides)


def test_base_loop_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", "_BASE_: b.yml\n")
    write(tmp_path, "b.yml", "_BASE_: a.yml\n")
    with pytest.raises(InputError, match="_BASE_ inheritance loops"):
        load_config(tmp_path / "a.yml")


def test_schema_documents_every_key() -> None:
    doc = (ROOT / "docs" / "training.md").read_text()
    missing = [k for k in SCHEMA if f"`{k}`" not in doc]
    assert not missing, missing
