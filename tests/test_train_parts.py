"""The trainer's parts: losses, PK sampler with resumable state, LR schedule, augmentation, dataset reading."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trackreid.errors import InputError, ModelError
from trackreid.train.config import load_config
from trackreid.train.data import augment, read_dataset, resolve_dataset
from trackreid.train.losses import cross_entropy_ls, triplet_loss
from trackreid.train.model import build_model, init_from, lr_factor
from trackreid.train.sampler import IdentitySampler, ShuffleSampler


def test_cross_entropy_label_smoothing() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    y = torch.tensor([0, 2])
    assert torch.allclose(cross_entropy_ls(logits, y, 0.0), F.cross_entropy(logits, y))
    assert torch.allclose(cross_entropy_ls(logits, y, 0.1), F.cross_entropy(logits, y, label_smoothing=0.1))


def test_triplet_batch_hard_by_hand() -> None:
    # 1-D features: identity 0 at 0 and 1, identity 1 at 3 and 5.
    f = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
    y = torch.tensor([0, 0, 1, 1])
    # hardest positive / nearest negative per anchor: (1,3) (1,2) (2,2) (2,4)
    d_ap = torch.tensor([1.0, 1.0, 2.0, 2.0])
    d_an = torch.tensor([3.0, 2.0, 2.0, 4.0])
    expected = F.relu(d_ap - d_an + 0.3).mean()
    assert torch.allclose(triplet_loss(f, y, margin=0.3), expected, atol=1e-5)
    assert torch.allclose(triplet_loss(f, y, margin=0.0), F.softplus(d_ap - d_an).mean(), atol=1e-5)
    soft = triplet_loss(f, y, margin=0.3, hard_mining=False)
    assert 0 < float(soft) < float(triplet_loss(f, y, margin=0.3))  # weighted mining is gentler
    # no positives in the batch: nothing to learn from, and no NaN
    assert float(triplet_loss(f, torch.tensor([0, 1, 2, 3]))) == 0.0


def test_pk_sampler_batches_and_exact_resume() -> None:
    pids = np.repeat(np.arange(10), [2, 6, 4, 4, 9, 1, 4, 5, 4, 4])
    s = IdentitySampler(pids, batch_size=16, num_instance=4, seed=7)
    for _ in range(20):
        b = s.next_batch()
        assert len(b) == 16
        ids, counts = np.unique(pids[b], return_counts=True)
        assert len(ids) == 4 and (counts == 4).all()
    state = s.state_dict()
    ahead = [s.next_batch() for _ in range(5)]
    t = IdentitySampler(pids, batch_size=16, num_instance=4, seed=999)
    t.load_state_dict(state)
    assert all((a == b).all() for a, b in zip(ahead, [t.next_batch() for _ in range(5)], strict=True))
    with pytest.raises(InputError, match="identities per batch"):
        IdentitySampler(pids, batch_size=64, num_instance=4, seed=0)


def test_shuffle_sampler_covers_every_image_per_pass_and_resumes() -> None:
    s = ShuffleSampler(12, 4, seed=1)
    first = np.concatenate([s.next_batch() for _ in range(3)])
    assert sorted(first.tolist()) == list(range(12))
    state = s.state_dict()
    ahead = [s.next_batch() for _ in range(4)]
    t = ShuffleSampler(12, 4, seed=5)
    t.load_state_dict(state)
    assert all((a == b).all() for a, b in zip(ahead, [t.next_batch() for _ in range(4)], strict=True))


def test_lr_schedule_warmup_multistep_cosine() -> None:
    s = load_config(None, ["SOLVER.WARMUP_ITERS", "100", "SOLVER.WARMUP_FACTOR", "0.1",
                           "SOLVER.STEPS", "[2, 4]"]).solver
    assert lr_factor(s, 0, 0) == pytest.approx(0.1)
    assert lr_factor(s, 50, 0) == pytest.approx(0.55)
    assert lr_factor(s, 100, 1) == 1.0
    assert lr_factor(s, 500, 2) == pytest.approx(0.1) and lr_factor(s, 900, 4) == pytest.approx(0.01)
    c = load_config(None, ["SOLVER.SCHED", "CosineAnnealingLR", "SOLVER.WARMUP_ITERS", "0", "SOLVER.MAX_EPOCH", "10",
                           "SOLVER.DELAY_EPOCHS", "2", "SOLVER.ETA_MIN_LR", "0"]).solver
    assert [lr_factor(c, 0, e) for e in (0, 2)] == [1.0, 1.0]
    assert lr_factor(c, 0, 6) == pytest.approx(0.5)
    assert lr_factor(c, 0, 10) == pytest.approx(0.0, abs=1e-9)
    assert lr_factor(c, 0, 4) == pytest.approx((1 + math.cos(math.pi * 2 / 8)) / 2)


def test_augmentation_is_reproducible_and_does_what_it_says() -> None:
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, size=(8, 32, 16, 3), dtype=np.uint8)
    cfg = load_config(None, ["INPUT.CJ.ENABLED", "True"]).input
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = augment(batch, cfg, mean, std, g1), augment(batch, cfg, mean, std, g2)
    assert a.shape == (8, 3, 32, 16) and torch.equal(a, b)
    plain = load_config(None, ["INPUT.FLIP.ENABLED", "False", "INPUT.PADDING.ENABLED", "False",
                               "INPUT.REA.ENABLED", "False"]).input
    x = augment(batch, plain, mean, std, torch.Generator())
    ref = (torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    assert torch.allclose(x, ref, atol=1e-6)
    flip = load_config(None, ["INPUT.FLIP.PROB", "1.0", "INPUT.PADDING.ENABLED", "False",
                              "INPUT.REA.ENABLED", "False"]).input
    assert torch.allclose(augment(batch, flip, mean, std, torch.Generator()), ref.flip(3), atol=1e-6)
    erase = load_config(None, ["INPUT.FLIP.ENABLED", "False", "INPUT.PADDING.ENABLED", "False",
                               "INPUT.REA.PROB", "1.0", "INPUT.REA.VALUE", "[127.5, 127.5, 127.5]"]).input
    e = augment(batch, erase, mean, std, torch.Generator().manual_seed(0))
    changed = (e != ref).any(dim=1)  # erased pixels are exactly the fill value (0 after normalising)
    assert changed.any() and torch.allclose(e.permute(0, 2, 3, 1)[changed], torch.zeros(3), atol=1e-6)


def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((20, 10, 3), 128, np.uint8))


def test_read_prepared_dataset_views(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for name in ("train/0001/0001_c1s1_000001_00.jpg", "train/0001/0001_c2s1_000002_00.jpg",
                 "train/0003/0003_c1s1_000001_00.jpg", "query/0002/0002_c1s1_000001_00.jpg",
                 "gallery/0002/0002_c1s2_000040_00.jpg", "gallery/0004/0004_c2s1_000001_00.jpg"):
        _img(root / name)
    ds = read_dataset(root)
    assert ds.num_classes == 2 and ds.train.pids.tolist() == [0, 0, 1]
    assert ds.query is not None and ds.gallery is not None
    # camera 1 segment 1 vs camera 1 segment 2: different views, so the match counts
    assert ds.query.camids.tolist() == [1001] and ds.gallery.camids.tolist() == [1002, 2001]
    assert ds.query.pids[0] == ds.gallery.pids[0] != ds.gallery.pids[1]
    # The seed's layout without camera ids: query and gallery are different views
    bare = tmp_path / "bare"
    for name in ("train/a/img_001.jpg", "query/b/img_001.jpg", "gallery/b/img_002.jpg"):
        _img(bare / name)
    b = read_dataset(bare)
    assert b.query is not None and b.gallery is not None
    assert b.query.camids.tolist() == [0] and b.gallery.camids.tolist() == [1]
    with pytest.raises(InputError, match="not a prepared dataset"):
        read_dataset(tmp_path / "ds" / "train")
    assert resolve_dataset("ds", tmp_path) == tmp_path / "ds"
    with pytest.raises(InputError, match="prepare-data --output-dir dataset/nope"):
        resolve_dataset("nope", tmp_path)


def test_init_from_pretrained_resizes_classifier(msmt_pth: Path) -> None:
    cfg = load_config(None, ["MODEL.BACKBONE.NAME", "osnet_x0_25"])
    model = build_model(cfg, num_classes=7)
    report = init_from(model, msmt_pth, "osnet_x0_25", backbone_only=True)
    assert sorted({k.split(".")[0] for k in report.new}) == ["classifier", "neck"]
    assert model.classifier is not None and model.classifier.weight.shape == (7, 512)  # not MSMT's 1041
    ref = torch.load(msmt_pth, map_location="cpu", weights_only=True)
    assert torch.equal(model.state_dict()["fc.0.weight"], ref["fc.0.weight"])  # fc kept from the file
    with pytest.raises(ModelError, match="these weights are osnet_x0_25, the config builds osnet_x0_5"):
        init_from(build_model(load_config(None, ["MODEL.BACKBONE.DEPTH", "x0_5"]), 7), msmt_pth, "osnet_x0_5")


def test_init_from_fastreid_and_own_checkpoints(msmt_pth: Path, tmp_path: Path) -> None:
    torchreid_sd = torch.load(msmt_pth, map_location="cpu", weights_only=True)
    # A FastReID-style OSNet checkpoint: backbone.* without fc, BNNeck at heads.bottleneck.0, a classifier.
    fast = {f"backbone.{k}": v for k, v in torchreid_sd.items() if not k.startswith(("fc.", "classifier."))}
    neck_w = torch.rand(128)
    fast.update({"heads.bottleneck.0.weight": neck_w, "heads.bottleneck.0.bias": torch.zeros(128),
                 "heads.bottleneck.0.running_mean": torch.zeros(128), "heads.bottleneck.0.running_var": torch.ones(128),
                 "heads.weight": torch.randn(751, 128)})
    path = tmp_path / "fastreid_model_final.pth"
    torch.save({"model": fast, "iteration": 10}, path)
    cfg = load_config(None, ["MODEL.BACKBONE.DEPTH", "x0_25", "MODEL.BACKBONE.WITH_FC", "False",
                             "MODEL.BACKBONE.FEAT_DIM", "128"])
    model = build_model(cfg, num_classes=5)
    report = init_from(model, path, "osnet_x0_25")
    assert report.source_format == "fastreid" and [k.split(".")[0] for k in report.new] == ["classifier"]
    assert torch.equal(model.state_dict()["neck.weight"], neck_w)
    assert torch.equal(model.state_dict()["conv1.conv.weight"], torchreid_sd["conv1.conv.weight"])
    # ours (safetensors): everything but the classifier comes back
    from trackreid.models.weights import save_checkpoint

    ours = tmp_path / "ours.safetensors"
    save_checkpoint(model, "osnet_x0_25", ours)
    again = build_model(cfg, num_classes=9)
    assert [k.split(".")[0] for k in init_from(again, ours, "osnet_x0_25").new] == ["classifier"]
    assert torch.equal(again.state_dict()["neck.weight"], neck_w)


@pytest.mark.parametrize("opt", ["Adam", "AMSGrad", "AdamW", "SGD"])
def test_optimizers_step_with_fastreid_param_groups(opt: str) -> None:
    from trackreid.train.model import build_optimizer

    cfg = load_config(None, ["MODEL.BACKBONE.DEPTH", "tiny", "MODEL.BACKBONE.FEAT_DIM", "64", "SOLVER.OPT", opt,
                             "SOLVER.HEADS_LR_FACTOR", "10", "SOLVER.BIAS_LR_FACTOR", "2",
                             "SOLVER.WEIGHT_DECAY_NORM", "0"])
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=3).train()
    optim = build_optimizer(model, cfg.solver)
    groups = {g["name"]: g for g in optim.param_groups}
    base = cfg.solver.base_lr
    assert groups["conv1.conv.weight"]["lr"] == pytest.approx(base)
    assert groups["classifier.weight"]["lr"] == pytest.approx(10 * base)
    assert groups["fc.0.bias"]["lr"] == pytest.approx(2 * base)
    assert groups["conv1.bn.weight"]["weight_decay"] == 0
    assert (opt == "AMSGrad") == bool(optim.param_groups[0].get("amsgrad", False))
    before = model.conv1.conv.weight.detach().clone()
    logits, _ = model(torch.randn(4, 3, 64, 32))
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    optim.step()
    assert not torch.equal(before, model.conv1.conv.weight)


def _write(folder: Path, names: list[str]) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.zeros((8, 4, 3), np.uint8))


def test_training_evaluation_reads_query_and_gallery_like_evaluate(tmp_path: Path) -> None:
    """One reader for both: Market keeps distractors and the camera-only rule; seed names have no camera."""
    from trackreid.datasets import DISTRACTOR_PID, dataset_query_gallery

    market = tmp_path / "market"
    _write(market, ["bounding_box_train/0002_c1s1_000001_00.jpg", "query/0001_c1s1_000001_00.jpg",
                    "bounding_box_test/0001_c1s2_000100_00.jpg", "bounding_box_test/0001_c2s1_000001_00.jpg",
                    "bounding_box_test/0000_c1s1_000001_00.jpg", "bounding_box_test/-1_c1s1_000001_00.jpg"])
    ds = read_dataset(market)
    q, g = dataset_query_gallery(market)
    assert ds.query is not None and ds.gallery is not None
    assert np.array_equal(ds.gallery.pids, g.pids) and np.array_equal(ds.gallery.camids, g.camids)
    assert DISTRACTOR_PID in ds.gallery.pids.tolist() and -1 not in ds.gallery.pids.tolist()
    same_camera = ds.gallery.camids[ds.gallery.pids == 1]
    assert sorted(same_camera.tolist()) == [1, 2]  # c1s2 is camera 1 (ignored for the c1 query), c2s1 camera 2
    seed = tmp_path / "seed"
    _write(seed, ["train/0001/img_001.jpg", "query/0002/img_001.jpg", "gallery/0002/img_002.jpg"])
    ds = read_dataset(seed)
    assert ds.query is not None and ds.gallery is not None
    assert ds.query.camids.tolist() == [0] and ds.gallery.camids.tolist() == [1]
