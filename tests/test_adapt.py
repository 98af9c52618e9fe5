"""trackreid adapt: constraint-respecting pseudo labels, a short real run, repeatability, no labels read."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trackreid.adapt import AdaptSettings, adapt
from trackreid.adapt.data import TrackCrops, read_tracks, track_means
from trackreid.adapt.memory import TrackMemory
from trackreid.adapt.pseudo import pseudo_labels, site_constraints, violations
from trackreid.associate.config import REVISIT_GAP, AssociateConfig
from trackreid.errors import InputError

PEOPLE = 8


def _write_camera(folder: Path, groups: list[list[Path]], ids: np.ndarray,
                  spans: list[tuple[int, int]]) -> None:
    """An extract-like output: crops/track_NNNN/frame_*.jpg + track_metadata.json, no identity anywhere."""
    tracks = {}
    for crops, tid, (first, last) in zip(groups, ids, spans, strict=True):
        rels = []
        for n, src in enumerate(crops):
            rel = f"crops/track_{tid:04d}/frame_{first:06d}_{n:03d}.jpg"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, folder / rel)
            rels.append(rel)
        tracks[str(int(tid))] = {"num_frames": last - first + 1, "first_frame": first, "last_frame": last,
                                 "num_crops": len(rels), "crops": rels}
    (folder / "track_metadata.json").write_text(json.dumps({"video": {"fps": 10.0}, "tracks": tracks}))


@pytest.fixture(scope="session")
def two_cameras(cuhk03_val: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], dict]:
    """CUHK03-val people as tracks of two cameras; truth (camera -> track -> person) kept here only."""
    root = tmp_path_factory.mktemp("adapt_cams")
    rng = np.random.default_rng(5)
    people = sorted({p.name[:4] for p in cuhk03_val.glob("*.jpg")})[:PEOPLE]
    truth: dict[str, dict[int, str]] = {}
    folders = []
    for cam, slots in (("camA", range(0, 5)), ("camB", range(5, 10))):
        groups = [[cuhk03_val / f"{p}_{s:02d}.jpg" for s in slots if (cuhk03_val / f"{p}_{s:02d}.jpg").is_file()]
                  for p in people]
        ids = rng.permutation(100)[:PEOPLE] + 1
        spans = [(1, 20)] * PEOPLE  # everyone in a camera at once: same-camera tracks are different people
        _write_camera(root / cam, groups, ids, spans)
        truth[cam] = {int(t): p for t, p in zip(ids, people, strict=True)}
        folders.append(root / cam)
    (root / "truth.json").write_text(json.dumps(truth))  # next to the inputs, never to be opened by adapt
    return folders, truth


SMALL = dict(rounds=2, iters_per_round=8, batch_size=32, num_instance=4, bn_images=64, embed_batch=32, workers=1,
             warmup_iters=0)


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


# ----------------------------------------------------------------------------- pseudo labels


def _random_tracks(n_per_cam: int, cams: int, seed: int) -> TrackCrops:
    rng = np.random.default_rng(seed)
    n = n_per_cam * cams
    start = rng.uniform(0, 60, n)
    end = start + rng.uniform(1, 15, n)
    return TrackCrops([f"c{c}" for c in range(cams)], [], np.zeros(0, np.int64),
                      np.repeat(np.arange(cams, dtype=np.int32), n_per_cam), np.arange(n, dtype=np.int64), start, end)


def test_pseudo_labels_respect_every_constraint(cuhk03_val: Path, msmt_pth: Path) -> None:
    import cv2

    from trackreid.embed.factory import build_embedder

    # 3 cameras of 40 tracks each: real features of 60 people seen in two views, random time spans
    paths = sorted(cuhk03_val.glob("*_00.jpg"))[:60] + sorted(cuhk03_val.glob("*_05.jpg"))[:60]
    emb = build_embedder(msmt_pth, device="cpu", backend="torch", batch_size=40)
    feats = emb.embed([cv2.imread(str(p)) for p in paths])
    data = _random_tracks(40, 3, seed=1)
    cents = track_means(feats, np.arange(120), 120)
    topology = {"links": [{"cameras": ["c0", "c1"], "transit": [0, 20]}, {"cameras": ["c1", "c2"]}]}
    for share, max_tracks in ((1.0, 100), (1.0, 3), (0.3, 100)):
        cons = site_constraints(data, AssociateConfig(topology=topology, max_gap=30.0, revisit_gap=None))
        res = pseudo_labels(data, cents, share, max_tracks, constraints=cons)
        labels = res.labels
        sizes = np.bincount(labels)
        assert sizes.max() <= max_tracks
        assert (sizes > 1).any(), "the real features link some tracks"
        for lab in np.flatnonzero(sizes > 1):
            m = np.flatnonzero(labels == lab)
            m = m[np.argsort(data.start[m], kind="stable")]
            for i in m:
                for j in m:
                    if i < j and data.track_camera[i] == data.track_camera[j]:
                        assert data.end[i] < data.start[j] or data.end[j] < data.start[i], "same camera, same time"
            for a, b in zip(m[:-1], m[1:], strict=True):  # the path, in time order
                ca, cb = sorted((int(data.track_camera[a]), int(data.track_camera[b])))
                assert (ca, cb) != (0, 2), "c0-c2 is not a linked camera pair"
                if (ca, cb) == (0, 1):
                    assert 0 <= data.start[b] - data.end[a] <= 20
            reach = data.end[m[0]]
            for x in m[1:]:
                assert data.start[x] - reach <= 30.0
                reach = max(reach, data.end[x])
    # a higher share links more tracks
    free = site_constraints(data, AssociateConfig(revisit_gap=None))
    few = pseudo_labels(data, cents, 0.2, 100, constraints=free).labels
    many = pseudo_labels(data, cents, 1.0, 100, constraints=free).labels
    assert (np.bincount(few)[few] > 1).sum() < (np.bincount(many)[many] > 1).sum()


def _tracks(cams: list[str], spans: list[tuple[int, float, float]]) -> TrackCrops:
    """Tracks (camera index, start s, end s) without crops."""
    c, a, b = (np.asarray(x) for x in zip(*spans, strict=True))
    return TrackCrops(cams, [], np.zeros(0, np.int64), c.astype(np.int32), np.arange(len(c), dtype=np.int64),
                      a.astype(np.float64), b.astype(np.float64))


def test_violations_check_whole_clusters_in_time_order() -> None:
    """A[0,10] (cam A), C[40,50] (cam C), B[20,30] (cam B) with links A-B and B-C is one valid path; in index
    order the partial cluster A+C has no link, which the old check reported as a violation."""
    data = _tracks(["A", "B", "C"], [(0, 0, 10), (2, 40, 50), (1, 20, 30)])
    links = {"links": [{"cameras": ["A", "B"]}, {"cameras": ["B", "C"]}]}
    cons = site_constraints(data, AssociateConfig(topology=links))
    assert cons.violation([0, 1, 2]) is None
    assert violations(cons, np.zeros(3, np.int64)) == 0
    only_ac = site_constraints(data, AssociateConfig(topology={"links": [{"cameras": ["A", "C"]}]}))
    assert only_ac.violation([2, 1, 0]) == "topology_not_linked"  # A->B is not a link, whatever the order
    assert violations(only_ac, np.array([0, 0, 0])) == 1
    assert violations(only_ac, np.array([0, 1, 2])) == 0


def test_pseudo_labels_obey_the_associations_revisit_gap() -> None:
    """One constraint set: adapt's pseudo identities use associate's defaults, the revisit gap included (two
    tracks of one camera 100 s apart are two visits, never one person), unless turned off as in associate."""
    data = _tracks(["c0", "c1"], [(0, 0, 10), (0, 110, 120), (1, 50, 60), (1, 0, 10), (0, 200, 210)])
    rng = np.random.default_rng(0)
    v, w = rng.normal(size=(2, 16))
    cents = np.stack([v, v, v, w, w + 0.3 * rng.normal(size=16)])  # c0's two visits alike, the w pair less so
    cents = (cents / np.linalg.norm(cents, axis=1, keepdims=True)).astype(np.float32)
    assert site_constraints(data).describe()["revisit_gap"] == REVISIT_GAP
    default = pseudo_labels(data, cents, 1.0, 100, scale_k=0).labels
    assert default[0] != default[1], "the revisit gap keeps two visits of camera c0 apart"
    assert len({default[0], default[1]} & {default[2]}) == 1, "the other camera's track joins one of them"
    free = pseudo_labels(data, cents, 1.0, 100, scale_k=0,
                         constraints=site_constraints(data, AssociateConfig(revisit_gap=None))).labels
    assert free[0] == free[1] == free[2]


def test_small_site_warning_only_below_the_measured_size_and_for_training_modes() -> None:
    from trackreid.adapt.loop import SMALL_SITE_TRACKS, small_site_warning

    small = _tracks(["a", "b"], [(0, 0, 1)] * 20 + [(1, 0, 1)] * (SMALL_SITE_TRACKS + 5))
    text = small_site_warning(small, "full")
    assert text is not None and text.startswith("20 tracks in the smallest camera") and "mAP" in text
    assert small_site_warning(small, "within") is not None
    assert small_site_warning(small, "bn") is None, "batch-norm statistics alone were measured to be safe"
    big = _tracks(["a", "b"], [(0, 0, 1)] * SMALL_SITE_TRACKS + [(1, 0, 1)] * SMALL_SITE_TRACKS)
    assert small_site_warning(big, "full") is None


def test_memory_losses_and_update() -> None:
    cents = np.eye(4, 8, dtype=np.float32)
    mem = TrackMemory(cents, np.array([0, 0, 1, 1]), momentum=0.5, temperature=0.1)
    f = torch.tensor(cents[[0, 2]])
    tracks = torch.tensor([0, 2])
    # each feature is its own track's centroid: the loss over its camera's 2 tracks is small
    assert float(mem.intra_loss(f, tracks)) < 0.01
    assert float(mem.intra_loss(torch.tensor(cents[[1, 3]]), tracks)) > 5
    mem.set_clusters(np.array([0, 1, 0, 2]), np.array([True, False, True, False]))
    assert mem.num_clusters == 1
    assert float(mem.inter_loss(f, tracks)) == 0.0  # one linked identity: nothing to contrast with
    mem.update(torch.tensor(cents[[1]]), torch.tensor([0]))
    assert torch.allclose(mem.bank[0].norm(), torch.tensor(1.0))
    assert float(mem.bank[0, 0]) == pytest.approx(float(mem.bank[0, 1]))


# ----------------------------------------------------------------------------- a real run


_RECORDING: list[list[str]] = []  # while not empty, every Python-level file open is appended to its list


def _audit(event: str, args: tuple) -> None:
    if _RECORDING and event == "open" and isinstance(args[0], (str, Path)):
        _RECORDING[0].append(str(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed; this one records only inside `adapted`


@pytest.fixture(scope="module")
def adapted(two_cameras, msmt_pth: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One short full-mode run, with every Python-level file open recorded."""
    folders, _truth = two_cameras
    out = tmp_path_factory.mktemp("adapt_run") / "run"
    recorded: list[str] = []
    _RECORDING.append(recorded)
    try:
        result = adapt(folders, msmt_pth, out, AdaptSettings(mode="full", seed=3, **SMALL))  # type: ignore[arg-type]
    finally:
        _RECORDING.clear()
    return result, recorded


def test_adapt_writes_a_loadable_checkpoint(adapted, two_cameras,  # type: ignore[no-untyped-def]
                                                                msmt_pth: Path) -> None:
    from trackreid.embed.factory import build_embedder

    result, _ = adapted
    folders, _ = two_cameras
    assert result.rounds_done == 2 and result.stop_reason == "finished"
    data = read_tracks(folders)
    rows = json.loads((result.output_dir / "adapt_log.json").read_text())
    assert [r["round"] for r in rows] == [0, 1, 2]
    assert all(len(r["loss_curve"]) == 8 and np.isfinite(r["eval_intra_loss"]) for r in rows[1:])
    assert rows[2]["linked_share"] >= rows[1]["linked_share"]
    for name in ("model_adapted.pth", "adapt_log.json", "adapt_log.csv", "adapt_signals.png", "adapt_settings.json"):
        assert (result.output_dir / name).is_file(), name
    # the checkpoint is what extract loads: same architecture, same embedding as the trained weights
    emb = build_embedder(result.model, device="cpu", backend="torch", batch_size=8)
    import cv2

    img = cv2.imread(str(data.paths[0]))
    f = emb.embed([img])
    assert f.shape == (1, 512)
    base = build_embedder(msmt_pth, device="cpu", backend="torch", batch_size=8).embed([img])
    assert not np.allclose(f, base, atol=1e-4), "the adapted weights differ from the base weights"


def test_a_few_steps_on_real_crops_lower_the_loss(two_cameras, msmt_pth: Path,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path) -> None:
    """adapt's model, optimizer, features and losses: five steps on 32 real crops lower the objective."""
    from trackreid.adapt.loop import _Run, features
    from trackreid.progress import NullProgress
    from trackreid.train.data import ImageLoader, to_tensor
    from trackreid.train.losses import triplet_loss

    folders, _ = two_cameras
    data = read_tracks(folders)
    run = _Run(data, msmt_pth, tmp_path, AdaptSettings(), NullProgress())
    cents = track_means(run.embed(), data.crop_track, data.num_tracks)
    mem = TrackMemory(cents, data.track_camera)
    idx = np.concatenate([np.flatnonzero(data.crop_track == t)[:2] for t in range(data.num_tracks)])
    pre = run.loaded.preprocess
    x = to_tensor(ImageLoader(pre).load([data.paths[i] for i in idx]), pre.mean, pre.std)
    tracks = torch.from_numpy(data.crop_track[idx])

    def objective() -> torch.Tensor:
        f = features(run.model, x)
        return mem.intra_loss(f, tracks) + triplet_loss(f, tracks, 0.3, norm_feat=True)

    run.model.train()
    losses = []
    for _ in range(5):
        loss = objective()
        losses.append(float(loss.detach()))
        run.optimizer.zero_grad()
        loss.backward()
        run.optimizer.step()
    with torch.no_grad():
        losses.append(float(objective()))
    assert losses[-1] < 0.8 * losses[0], losses


def test_adapt_never_opens_labels(adapted, two_cameras, msmt_pth: Path) -> None:  # type: ignore[no-untyped-def]
    _, opened = adapted
    folders, truth = two_cameras
    root = folders[0].parent
    assert not any(Path(p).name == "truth.json" for p in opened)
    inside = [p for p in opened if Path(p).resolve().is_relative_to(root.resolve())]
    assert inside and all(Path(p).name == "track_metadata.json" for p in inside), inside
    # and nothing it is given names a person: track ids and file names are unrelated to identities
    people = {p for cam in truth.values() for p in cam.values()}
    import re

    for folder in folders:
        stems = [p.stem for p in folder.rglob("*.jpg")]
        assert stems and not any(re.fullmatch(r"\d{4}_\d{2}", s) for s in stems)  # CUHK03's PPPP_NN
        meta = (folder / "track_metadata.json").read_text()
        assert not any(f'"{p}"' in meta for p in people)


def test_same_seed_and_resume_give_the_same_weights(two_cameras, msmt_pth: Path, adapted,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    folders, _ = two_cameras
    result, _ = adapted
    from dataclasses import replace

    s = AdaptSettings(mode="full", seed=3, **SMALL)  # type: ignore[arg-type]
    ref = _state(result.model)
    # the same seed again, one round, then --resume to two: the same weights as the uninterrupted run

    adapt(folders, msmt_pth, tmp_path / "resumed", replace(s, rounds=1))
    resumed = adapt(folders, msmt_pth, tmp_path / "resumed", s, resume=True)
    assert resumed.rounds_done == 2
    for k, v in _state(resumed.model).items():
        assert torch.equal(v, ref[k]), k
    settings_file = tmp_path / "resumed" / "adapt_settings.json"
    before = settings_file.read_bytes()
    with pytest.raises(InputError, match="settings the run started with"):
        adapt(folders, msmt_pth, tmp_path / "resumed", replace(s, lr=0.01), resume=True)
    with pytest.raises(InputError, match="constraints the run started with"):
        adapt(folders, msmt_pth, tmp_path / "resumed", s, resume=True, association=AssociateConfig(max_gap=60.0))
    assert settings_file.read_bytes() == before, "a refused --resume leaves adapt_settings.json as it was"


def test_bad_inputs_are_clear(tmp_path: Path, msmt_pth: Path, two_cameras) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="no track_metadata.json"):
        read_tracks([tmp_path])
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "track_metadata.json").write_text(json.dumps({"tracks": {"1": {"first_frame": 1, "last_frame": 2}}}))
    with pytest.raises(InputError, match="--save-crops"):
        read_tracks([bare])
    from trackreid.cli.main import main

    folders, _ = two_cameras
    out = tmp_path / "out"
    out.mkdir()
    (out / "model_adapted.pth").write_bytes(b"x")
    assert main(["adapt", "--features", str(folders[0]), "--reid-model", str(msmt_pth), "--output-dir",
                 str(out)]) != 0


def test_output_folder_rules(tmp_path: Path, msmt_pth: Path, two_cameras) -> None:  # type: ignore[no-untyped-def]
    """The rules shared with the trainer (train.engine.prepare_run_dir), as adapt words them."""
    from trackreid.errors import OutputError

    folders, _ = two_cameras
    s = AdaptSettings(mode="bn", seed=0, **SMALL)  # type: ignore[arg-type]
    out = tmp_path / "out"
    out.mkdir()
    (out / "model_adapted.pth").write_bytes(b"x")
    with pytest.raises(OutputError, match="already holds an adapt run.*--overwrite.*choose another --output-dir"):
        adapt(folders, msmt_pth, out, s)
    assert (out / "model_adapted.pth").read_bytes() == b"x"  # nothing deleted without --overwrite
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="nothing to resume"):
        adapt(folders, msmt_pth, tmp_path / "empty", s, resume=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="--output-dir exists and is a file"):
        adapt(folders, msmt_pth, tmp_path / "file", s)


def test_cli_reports_each_round_once(two_cameras, msmt_pth: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                     capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """The CLI prints each round's line; the library's log line is not printed as well (it was, twice)."""
    from trackreid.cli.main import main

    folders, _ = two_cameras
    code = main(["adapt", "--features", str(folders[0]), "--features", str(folders[1]), "--reid-model",
                 str(msmt_pth), "--output-dir", str(tmp_path / "out"), "--rounds", "1", "--iters-per-round", "2",
                 "--threads", "2", "--revisit-gap", "none"])
    out, err = capfd.readouterr()
    assert code == 0, err
    lines = [ln for ln in (out + err).splitlines() if "round 1/1" in ln]
    assert len(lines) == 1, lines
    warned = caplog.text + err
    assert "8 tracks in the smallest camera" in warned and "--mode bn" in warned, "the small-site warning, with numbers"
    saved = json.loads((tmp_path / "out" / "adapt_settings.json").read_text())
    assert saved["constraints"]["revisit_gap"] is None and saved["constraints"]["same_camera_overlap"] is True
