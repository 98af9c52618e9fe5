"""Training on real CUHK03 crops: the loss falls, checkpoints load in extract, resume is exact, Ctrl-C saves."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from trackreid.cli.main import main
from trackreid.datasets import read_image_set
from trackreid.embed.factory import build_embedder
from trackreid.errors import OutputError
from trackreid.models.weights import load_model
from trackreid.prepare_data import layout_items, write_layout
from trackreid.train.config import load_config
from trackreid.train.data import read_dataset
from trackreid.train.engine import evaluate_weights, train
from trackreid.train.evaluation import embed_images
from trackreid.train.model import preprocess_of

ROOT = Path(__file__).resolve().parents[1]
SEED_CONFIG = ROOT / "configs" / "my_osnet.yml"


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny batches on a shared 2-core CPU: one thread avoids OpenMP spin-waits (seconds per step)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_dataset(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 training identities x 4 real crops (2 per camera), 4 test identities (query cam A, gallery cam B)."""
    s = read_image_set(shared_data / "cuhk03" / "train", "cuhk03")
    ids = np.unique(s.pids)
    keep = []
    for pid in ids[:8]:
        idx = np.flatnonzero(s.pids == pid)
        keep += list(idx[s.camids[idx] == 0][:2]) + list(idx[s.camids[idx] == 1][:2])
    train_set = s.subset(np.isin(np.arange(len(s)), keep))
    test = s.subset(np.isin(s.pids, ids[8:12]))
    items = (layout_items(train_set, "train") + layout_items(test.subset(test.camids == 0), "query")
             + layout_items(test.subset(test.camids == 1), "gallery"))
    out = tmp_path_factory.mktemp("data") / "tiny"
    write_layout(out, items)
    return out


def overrides(dataset: Path, out: Path, **extra: Any) -> list[str]:
    base = {
        "MODEL.BACKBONE.NAME": "osnet_x0_25", "DATASETS.NAMES": f"('{dataset}',)",
        "DATASETS.TESTS": f"('{dataset}',)", "INPUT.SIZE_TRAIN": "[64, 32]", "INPUT.SIZE_TEST": "[64, 32]",
        "SOLVER.IMS_PER_BATCH": "16", "SOLVER.MAX_EPOCH": "4", "SOLVER.WARMUP_ITERS": "0",
        "SOLVER.CHECKPOINT_PERIOD": "2", "TEST.EVAL_PERIOD": "2", "DATALOADER.NUM_WORKERS": "1",
        "INPUT.REA.ENABLED": "False", "OUTPUT_DIR": str(out),
    }
    base.update({k.replace("__", "."): str(v) for k, v in extra.items()})
    return [x for kv in base.items() for x in kv]


def weights_of(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.fixture(scope="module")
def uninterrupted(tiny_dataset: Path, msmt_pth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed's config file verbatim, with command-line overrides, through the CLI."""
    out = tmp_path_factory.mktemp("runs") / "full"
    argv = ["train", "--quiet", "--config-file", str(SEED_CONFIG),
            *overrides(tiny_dataset, out, MODEL__BACKBONE__PRETRAIN_PATH=msmt_pth)]
    assert main(argv) == 0
    return out


def test_run_writes_everything_and_loss_falls(uninterrupted: Path) -> None:
    for name in ("config.yaml", "metrics.csv", "metrics.json", "curves.png", "model_final.pth", "model_best.pth",
                 "model_0002.pth", "model_final.safetensors", "last_checkpoint"):
        assert (uninterrupted / name).is_file(), name
    import json

    metrics = json.loads((uninterrupted / "metrics.json").read_text())
    hist = metrics["history"]
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert hist[-1]["loss_ce"] < hist[0]["loss_ce"]
    assert [r["mAP"] is not None for r in hist] == [False, True, False, True]
    assert metrics["best"]["mAP"] == max(r["mAP"] for r in hist if r["mAP"] is not None)
    saved = (uninterrupted / "config.yaml").read_text()
    assert "mapped to MODEL.HEADS.NAME 'EmbeddingHead'" in saved  # the seed's names, reported
    assert load_config(uninterrupted / "config.yaml").model.backbone.arch == "osnet_x0_25"


def test_checkpoint_loads_in_extract(uninterrupted: Path, tiny_dataset: Path) -> None:
    loaded = load_model(uninterrupted / "model_final.pth")
    assert loaded.arch == "osnet_x0_25" and loaded.source_format == "trackreid"
    assert loaded.model.neck is not None and loaded.model.classifier is None
    assert (loaded.preprocess.height, loaded.preprocess.width) == (64, 32)
    ds = read_dataset(tiny_dataset)
    assert ds.query is not None
    crops = [cv2.imread(str(p)) for p in ds.query.paths]
    emb = build_embedder(uninterrupted / "model_final.pth", device="cpu", batch_size=8).embed(crops)
    # The same network as the trainer's own evaluation sees it.
    cfg = load_config(uninterrupted / "config.yaml")
    direct = embed_images(loaded.model, ds.query, preprocess_of(cfg), torch.device("cpu"))
    assert emb.shape == (len(crops), 512)
    np.testing.assert_allclose(emb, direct, rtol=1e-3, atol=1e-3)
    for other in ("model_best.pth", "model_final.safetensors"):
        assert load_model(uninterrupted / other).arch == "osnet_x0_25"


def test_eval_only_matches_training_evaluation(uninterrupted: Path, tiny_dataset: Path) -> None:
    import json

    cfg = load_config(uninterrupted / "config.yaml")
    got = evaluate_weights(cfg, uninterrupted / "model_best.pth")
    best = json.loads((uninterrupted / "metrics.json").read_text())["best"]
    assert got["tiny"].mAP == pytest.approx(best["mAP"], abs=0.05)


def test_ctrl_c_saves_and_resume_matches_uninterrupted(uninterrupted: Path, tiny_dataset: Path, msmt_pth: Path,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    cfg = load_config(SEED_CONFIG, overrides(tiny_dataset, out, MODEL__BACKBONE__PRETRAIN_PATH=msmt_pth))

    class CtrlCAt:
        """A progress sink that presses Ctrl-C during the 3rd iteration (mid-epoch 2)."""

        def __init__(self) -> None:
            self.iters = 0

        def start(self, description: str, total: int | None, unit: str = "items") -> None:
            pass

        def advance(self, n: int = 1, **info: Any) -> None:
            if "loss" in info:
                self.iters += n
                if self.iters == 3:
                    os.kill(os.getpid(), signal.SIGINT)

        def finish(self) -> None:
            pass

    first = train(cfg, progress=CtrlCAt())
    assert first.stop_reason == "interrupted" and first.iterations == 3
    assert (out / "last_checkpoint").read_text().strip() == "model_stopped.pth"
    with pytest.raises(OutputError, match="already holds a training run.*--resume"):
        train(cfg)  # a run is there: refuse to overwrite it silently
    second = train(cfg, resume=True)
    assert second.finished and second.iterations == 8
    a, b = weights_of(uninterrupted / "model_final.pth"), weights_of(out / "model_final.pth")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    full = torch.load(uninterrupted / "model_final.pth", weights_only=True)["history"]

    def no_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in rows]

    assert no_time(second.history) == no_time(full)  # same losses, same mAP, epoch by epoch


def test_stop_at_epoch_end_then_resume_is_exact(uninterrupted: Path, tiny_dataset: Path, msmt_pth: Path,
                                                tmp_path: Path) -> None:
    out = tmp_path / "stopped"
    cfg = load_config(SEED_CONFIG, overrides(tiny_dataset, out, MODEL__BACKBONE__PRETRAIN_PATH=msmt_pth))
    # Stops after the last iteration of epoch 2, before that epoch's evaluation and checkpoint:
    # the resumed run must do them first, then go on.
    first = train(cfg, stop_after=4)
    assert first.stop_reason == "iteration limit" and (first.epochs_done, first.iterations) == (1, 4)
    assert train(cfg, resume=True).finished
    a, b = weights_of(uninterrupted / "model_final.pth"), weights_of(out / "model_final.pth")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_eval_only_and_misplaced_flag(uninterrupted: Path, tiny_dataset: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import json

    argv = ["train", "--quiet", "--config-file", str(SEED_CONFIG), "--eval-only",
            *overrides(tiny_dataset, uninterrupted, MODEL__WEIGHTS=uninterrupted / "model_best.pth")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads(printed[printed.index("{"):])
    best = json.loads((uninterrupted / "metrics.json").read_text())["best"]
    assert result["tiny"]["mAP"] == pytest.approx(best["mAP"], abs=0.05)
    assert main(["train", "--config-file", str(SEED_CONFIG), "SOLVER.MAX_EPOCH", "2", "--resume"]) == 2
    assert "--resume comes after the KEY VALUE overrides" in capsys.readouterr().err
