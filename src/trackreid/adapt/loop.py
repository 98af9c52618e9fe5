"""Rounds of label-free adaptation: re-embed, pseudo-label, train, save.

:func:`adapt` runs :class:`AdaptSettings` on the crops of several extract outputs:

0. batch-norm statistics re-estimated on the target crops (saved as round 0);
1. each round: embed every crop with the current model, average per track, pseudo-label
   (within-camera track classes; in ``full`` mode also cross-camera links from the
   constrained clustering, a growing share per round), then ``iters_per_round`` steps of the
   track-centroid memory losses + hard triplet, with the trainer's model, optimizer,
   augmentation and PK sampler;
2. after each round, ``model_adapted.pth`` (our checkpoint: loads in extract, evaluate,
   export-onnx and associate), ``adapt_log.json`` / ``.csv`` and ``adapt_signals.png``.

Ctrl-C or the time budget ends the run at the last finished round. Every random draw of a
round comes from generators seeded with ``(seed, round)``; with the optimizer state in the
checkpoint, ``resume=True`` continues exactly, and a repeated run gives the same weights (CPU).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trackreid import __version__
from trackreid.adapt.data import TrackCrops, read_tracks, track_means
from trackreid.adapt.memory import TrackMemory
from trackreid.adapt.pseudo import site_constraints
from trackreid.associate.config import AssociateConfig
from trackreid.datasets import ImageSet
from trackreid.errors import InputError
from trackreid.io.atomic import atomic_path
from trackreid.progress import NullProgress, Progress
from trackreid.train.history import write_csv

log = logging.getLogger(__name__)

MODES = ("bn", "within", "full")
MODEL_NAME = "model_adapted.pth"
OUR_FILES = (MODEL_NAME, "adapt_log.json", "adapt_log.csv", "adapt_signals.png", "adapt_settings.json")
# settings that may change on --resume (they do not change what a round learns)
RESUME_MAY_CHANGE = ("rounds", "max_minutes", "device", "workers", "embed_batch")


@dataclass(frozen=True)
class AdaptSettings:
    mode: str = "full"  # bn: batch-norm statistics only; within: track classes per camera; full: + cross-camera
    rounds: int = 6
    iters_per_round: int = 150
    batch_size: int = 64
    num_instance: int = 4  # crops per pseudo identity in a batch
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    warmup_iters: int = 50
    temperature: float = 0.05
    momentum: float = 0.2  # memory update: bank = m * bank + (1 - m) * feature
    inter_weight: float = 0.5
    triplet_weight: float = 1.0
    triplet_margin: float = 0.3
    share_start: float = 0.3  # share of cross-camera mutual nearest pairs linkable in round 1 ...
    share_end: float = 0.8  # ... growing linearly to this share in the last round
    scale_k: int = 10  # hubness correction of the link similarities (CSLS over k other-camera tracks; 0 = off)
    max_cluster_tracks: int = 0  # 0 = 2 x number of cameras: larger clusters shrink the threshold
    stop_change: float = 0.01  # stop when the linked pairs change less than this (share fully grown)
    bn_images: int = 3000  # crops used to re-estimate the batch-norm statistics (0 = skip)
    seed: int = 0
    device: str = "auto"
    workers: int = 2
    embed_batch: int = 64  # 64 embeds 35 % faster per crop than 128 on a 2-core CPU (cache)
    max_minutes: float | None = None

    def check(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"--mode {self.mode!r}: expected one of {', '.join(MODES)}")
        for name in ("rounds", "bn_images", "warmup_iters"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} {getattr(self, name)}: expected 0 or more")
        if self.iters_per_round < 1:
            raise InputError(f"--iters-per-round {self.iters_per_round}: expected 1 or more")
        if self.batch_size % self.num_instance or self.batch_size // self.num_instance < 2:
            raise InputError(f"batch size {self.batch_size} must be a multiple of {self.num_instance} crops per "
                             "identity, with at least 2 identities per batch")
        if not 0 < self.share_start <= 1 or not 0 < self.share_end <= 1:
            raise InputError("share_start and share_end are fractions in (0, 1]")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise InputError(f"--max-minutes {self.max_minutes}: expected a positive number")


@dataclass
class AdaptResult:
    output_dir: Path
    model: Path
    rounds_done: int
    stop_reason: str  # finished | converged | interrupted | time limit
    log: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- model pieces


def features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The embedding extract uses (fc, then the BNNeck if any), in the model's current mode."""
    v = model.global_avgpool(model.featuremaps(x)).flatten(1)  # type: ignore[operator]
    if model.fc is not None:  # type: ignore[attr-defined]
        v = model.fc(v)  # type: ignore[operator]
    neck = model.neck  # type: ignore[attr-defined]
    return neck(v) if neck is not None else v  # type: ignore[operator]


def _batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def reestimate_bn(model: nn.Module, paths: Sequence[Path], preprocess: Any, device: torch.device, batch_size: int,
                  workers: int, seed: int, progress: Progress) -> int:
    """Replace every batch-norm layer's running statistics by their average over ``paths`` (shuffled batches)."""
    from trackreid.train.data import ImageLoader, to_tensor

    bns = _batchnorms(model)
    if not bns or not paths:
        return 0
    order = np.random.default_rng(seed).permutation(len(paths))
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    was_training = model.training
    model.train()
    loader = ImageLoader(preprocess, workers)
    progress.start("batch-norm statistics", len(paths), "crops")
    try:
        for i in range(0, len(order), batch_size):
            chunk = [paths[int(j)] for j in order[i:i + batch_size]]
            if len(chunk) < 2:
                break
            x = to_tensor(loader.load(chunk), preprocess.mean, preprocess.std).to(device)
            features(model, x.contiguous(memory_format=torch.channels_last))
            progress.advance(len(chunk))
    finally:
        loader.close()
        progress.finish()
        for m, mom in zip(bns, momenta, strict=True):
            m.momentum = mom
        model.train(was_training)
    return len(paths)


# ----------------------------------------------------------------------------- the run


def _header(loaded: Any, model: nn.Module, base: Path, settings: AdaptSettings, rnd: int,
            data: TrackCrops, constraints: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "format": "trackreid",
        "arch": loaded.arch,
        "feature_dim": int(model.feature_dim),  # type: ignore[arg-type]
        "neck": getattr(model, "neck", None) is not None,
        "preprocess": loaded.preprocess.to_dict(),
        "num_classes": 0,
        "trackreid_version": __version__,
        "adapted_from": {"path": str(base), "sha256": loaded.sha256},
        "adapt": {"round": rnd, "settings": asdict(settings), "cameras": data.cameras, "tracks": data.num_tracks,
                  "crops": len(data), "constraints": constraints},
    }


def _prepare_output(out: Path, resume: bool, overwrite: bool) -> None:
    from trackreid.train.engine import prepare_run_dir

    existing = [n for n in OUR_FILES if (out / n).exists()] if out.is_dir() else []
    prepare_run_dir(out, existing, resume=resume, overwrite=overwrite, flag="--output-dir", kind="an adapt run",
                    elsewhere="choose another --output-dir")
    if resume and not (out / MODEL_NAME).is_file():
        raise InputError(f"{out}: nothing to resume (no {MODEL_NAME}); start without --resume")


#: Fewer tracks than this in a camera: training rounds were measured to hurt as often as to help
#: (docs/adapt.md, "When adapt helps: measured on site size"; benchmarks/adapt_guard.py).
SMALL_SITE_TRACKS = 100


def small_site_warning(data: TrackCrops, mode: str) -> str | None:
    """The warning for a site below :data:`SMALL_SITE_TRACKS` tracks in some camera (training modes only),
    with the measured numbers, or None."""
    fewest = int(np.bincount(data.track_camera, minlength=len(data.cameras)).min())
    if mode == "bn" or fewest >= SMALL_SITE_TRACKS:
        return None
    return (f"{fewest} tracks in the smallest camera: below {SMALL_SITE_TRACKS} tracks per camera the training rounds "
            "were measured to make the model WORSE about as often as better (two-camera CUHK03 sites of 10 and 40 "
            "people, 8 runs: the last round's cross-camera mAP fell in 3, by up to 16.9 points, and swung by up to 25 "
            "points between rounds; with 150 people it rose in 4 of 4, by 9.7 to 41.4). Batch-norm statistics alone "
            "(--mode bn, seconds) did better there: +10.8 mAP on average against +6.5, and fell in 1 of the 8 runs "
            "(by 1.7). Check the adapted model on labelled data before using it (docs/adapt.md)")


def _linked_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    pairs: set[tuple[int, int]] = set()
    for lab in np.unique(labels):
        members = np.flatnonzero(labels == lab)
        if len(members) > 1:
            pairs |= {(int(a), int(b)) for i, a in enumerate(members) for b in members[i + 1:]}
    return pairs


def label_change(previous: np.ndarray | None, labels: np.ndarray) -> float | None:
    """Share of linked track pairs that differ between two labellings (0 = identical links)."""
    if previous is None or len(previous) != len(labels):
        return None
    a, b = _linked_pairs(previous), _linked_pairs(labels)
    union = a | b
    return len(a ^ b) / len(union) if union else 0.0


def _separation(centroids: np.ndarray, camera: np.ndarray) -> dict[str, float]:
    """Label-free signals of the track features: same-camera nearest similarity, cross-camera mutual pairs."""
    sim = centroids @ centroids.T
    same = camera[:, None] == camera[None, :]
    np.fill_diagonal(same, False)
    out: dict[str, float] = {}
    s_same = np.where(same, sim, -np.inf).max(axis=1)
    finite = np.isfinite(s_same)
    out["same_camera_nn_sim"] = float(s_same[finite].mean()) if finite.any() else float("nan")
    other = camera[:, None] != camera[None, :]
    if other.any():
        s_other = np.where(other, sim, -np.inf)
        nn_idx = s_other.argmax(axis=1)
        has = np.isfinite(s_other.max(axis=1))
        mutual = has & has[nn_idx] & (nn_idx[nn_idx] == np.arange(len(nn_idx)))
        out["cross_camera_nn_sim"] = float(s_other.max(axis=1)[has].mean())
        out["mutual_share"] = float(mutual.mean())
        out["mutual_sim"] = float(sim[np.arange(len(nn_idx)), nn_idx][mutual].mean()) if mutual.any() else float("nan")
    return out


def _objective(feats: np.ndarray, centroids: np.ndarray, data: TrackCrops, temperature: float) -> float:
    """The within-camera memory loss of the un-augmented crops against their tracks' means (evaluation mode)."""
    mem = TrackMemory(centroids, data.track_camera, temperature=temperature)
    with torch.no_grad():
        return float(mem.intra_loss(torch.from_numpy(feats), torch.from_numpy(data.crop_track)))


class _Run:
    def __init__(self, data: TrackCrops, base: Path, out: Path, settings: AdaptSettings, progress: Progress,
                 association: AssociateConfig | None = None) -> None:
        from trackreid.embed.device import resolve_device
        from trackreid.models.weights import load_model
        from trackreid.train.config import load_config
        from trackreid.train.model import build_optimizer

        self.data, self.base, self.out, self.s, self.progress = data, base, out, settings, progress
        self.device = resolve_device(settings.device)
        self.loaded = load_model(base)
        self.model = self.loaded.model.to(self.device)
        self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # the trainer's augmentation and optimizer, configured through its own config keys
        cfg = load_config(None, [("SOLVER.BASE_LR", settings.lr), ("SOLVER.WEIGHT_DECAY", settings.weight_decay),
                                 ("SOLVER.WEIGHT_DECAY_NORM", settings.weight_decay),
                                 ("SOLVER.WEIGHT_DECAY_BIAS", settings.weight_decay)])
        pre = self.loaded.preprocess
        self.input_cfg = replace(cfg.input, size_train=(pre.height, pre.width), size_test=(pre.height, pre.width))
        self.optimizer = build_optimizer(self.model, cfg.solver)
        self.round = 0
        self.iteration = 0
        self.log: list[dict[str, Any]] = []
        self.labels: np.ndarray | None = None
        # the association's constraints on these tracks (one set, one implementation: adapt.pseudo)
        self.constraints = site_constraints(data, association) if settings.mode == "full" else None
        self.constraints_used = None if self.constraints is None else self.constraints.describe()

    # ------------------------------------------------------------ state

    def save(self) -> Path:
        from trackreid.train import checkpoint as ckpt

        state = {
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "trackreid": _header(self.loaded, self.model, self.base, self.s, self.round, self.data,
                                 self.constraints_used),
            "optimizer": self.optimizer.state_dict(),
            "round": self.round,
            "iteration": self.iteration,
            "log": self.log,
            "labels": None if self.labels is None else torch.from_numpy(self.labels.astype(np.int64)),
        }
        path = ckpt.save(state, self.out / MODEL_NAME, mark_last=False)
        _write_log(self.out, self.log)
        return path

    def restore(self) -> None:
        from trackreid.train import checkpoint as ckpt

        path = self.out / MODEL_NAME
        ck = ckpt.load(path)
        saved = ck["trackreid"].get("adapt", {})
        before, now = saved.get("settings", {}), asdict(self.s)
        changed = [k for k in now if k in before and before[k] != now[k] and k not in RESUME_MAY_CHANGE]
        if changed:
            shown = "; ".join(f"{k}: {before[k]!r} -> {now[k]!r}" for k in changed[:4])
            raise InputError(f"{path}: --resume needs the settings the run started with; changed: {shown}")
        if "constraints" in saved and saved["constraints"] != self.constraints_used:
            raise InputError(f"{path}: --resume needs the constraints the run started with (--topology, --max-gap, "
                             f"--revisit-gap, --no-motion-gate, the tracks files); they were {saved['constraints']}, "
                             f"now {self.constraints_used}")
        if saved.get("tracks") != self.data.num_tracks or saved.get("crops") != len(self.data):
            raise InputError(f"{path}: the run adapted on {saved.get('tracks')} tracks / {saved.get('crops')} crops; "
                             f"the --features folders now hold {self.data.num_tracks} / {len(self.data)}. "
                             "Resume needs the same inputs")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.round, self.iteration = int(ck["round"]), int(ck["iteration"])
        self.log = list(ck["log"])
        self.labels = None if ck.get("labels") is None else ck["labels"].numpy()
        log.info("resumed %s after round %d", path, self.round)

    # ------------------------------------------------------------ pieces

    def embed(self) -> np.ndarray:
        from trackreid.train.evaluation import embed_images

        n = len(self.data)
        images = ImageSet(self.data.paths, np.zeros(n, np.int64), np.zeros(n, np.int64))
        self.progress.start(f"round {self.round + 1}: embed crops", n, "crops")
        f = embed_images(self.model, images, self.loaded.preprocess, self.device, self.s.embed_batch,
                         workers=self.s.workers, progress=self.progress, channels_last=True)
        self.progress.finish()
        return f

    def pseudo(self, centroids: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        n = self.data.num_tracks
        if self.s.mode != "full":
            return np.arange(n, dtype=np.int64), {}
        from trackreid.adapt.pseudo import pseudo_labels

        rounds = max(1, self.s.rounds - 1)
        share = self.s.share_start + (self.s.share_end - self.s.share_start) * min(self.round, rounds) / rounds
        max_tracks = self.s.max_cluster_tracks or 2 * len(self.data.cameras)
        res = pseudo_labels(self.data, centroids, share, max_tracks, scale_k=self.s.scale_k,
                            constraints=self.constraints)
        return res.labels, {"share": share, **res.info}

    def train_round(self, labels: np.ndarray, centroids: np.ndarray, stop: Any, deadline: float | None) -> dict:
        from trackreid.train.data import ImageLoader, augment
        from trackreid.train.losses import triplet_loss
        from trackreid.train.model import set_lr
        from trackreid.train.sampler import IdentitySampler

        s, d = self.s, self.data
        memory = TrackMemory(centroids, d.track_camera, s.momentum, s.temperature, self.device)
        linked = np.bincount(labels)[labels] > 1
        memory.set_clusters(labels, linked)
        crop_labels = labels[d.crop_track]
        round_seed = s.seed * 1000 + self.round
        # fewer pseudo identities than a batch asks for (a small site): smaller batches
        p = min(s.batch_size // s.num_instance, len(np.unique(labels)))
        sampler = IdentitySampler(crop_labels, p * s.num_instance, s.num_instance, round_seed)
        gen = torch.Generator().manual_seed(round_seed)
        pre = self.loaded.preprocess
        loader = ImageLoader(pre, s.workers)
        sums: dict[str, float] = {}
        curve: list[float] = []
        self.model.train()
        self.progress.start(f"round {self.round + 1}/{s.rounds}: train", s.iters_per_round, "iters")
        try:
            for _ in range(s.iters_per_round):
                warm = min(1.0, 0.1 + 0.9 * self.iteration / s.warmup_iters) if s.warmup_iters else 1.0
                set_lr(self.optimizer, warm)
                idx = sampler.next_batch()
                x = augment(loader.load([d.paths[i] for i in idx]), self.input_cfg, pre.mean, pre.std, gen)
                x = x.to(self.device).contiguous(memory_format=torch.channels_last)
                tracks = torch.from_numpy(d.crop_track[idx]).to(self.device)
                y = torch.from_numpy(crop_labels[idx]).to(self.device)
                f = features(self.model, x).float()
                parts = {"loss_intra": memory.intra_loss(f, tracks)}
                if s.mode == "full":
                    parts["loss_inter"] = memory.inter_loss(f, tracks) * s.inter_weight
                if s.triplet_weight:
                    parts["loss_triplet"] = triplet_loss(f, y, s.triplet_margin, norm_feat=True) * s.triplet_weight
                loss = sum(parts.values())
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[union-attr]
                self.optimizer.step()
                memory.update(f, tracks)
                self.iteration += 1
                for k, v in {"loss": loss, **parts}.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach())  # type: ignore[union-attr]
                curve.append(round(float(loss.detach()), 5))  # type: ignore[union-attr]
                self.progress.advance(1, loss=f"{float(loss.detach()):.3f}")  # type: ignore[union-attr]
                if stop.is_set():
                    return {"stopped": "interrupted"}
                if deadline is not None and time.monotonic() > deadline:
                    return {"stopped": "time limit"}
        finally:
            loader.close()
            self.progress.finish()
            self.model.eval()
        return {**{k: v / s.iters_per_round for k, v in sums.items()}, "loss_curve": curve}


def _write_log(out: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(out / "adapt_log.json") as tmp:
        tmp.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols and not isinstance(r[k], (dict, list))]
    write_csv(out / "adapt_log.csv", rows, cols)
    _plot(out, rows)


def _plot(out: Path, rows: list[dict[str, Any]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed: no adapt_signals.png (pip install 'trackreid[analysis]')")
        return
    if not rows:
        return
    x = [r["round"] for r in rows]

    def series(key: str) -> list[float]:
        return [float("nan") if r.get(key) is None else float(r[key]) for r in rows]

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    panels = (
        ("loss", ("loss", "loss_intra", "loss_inter", "loss_triplet", "eval_intra_loss")),
        ("track features (cosine)", ("cross_camera_nn_sim", "mutual_sim", "same_camera_nn_sim")),
        ("pseudo labels", ("linked_share", "mutual_share", "label_change")),
    )
    for ax, (title, keys) in zip(axes, panels, strict=True):
        drawn = False
        for k in keys:
            ys = series(k)
            if any(y == y for y in ys):
                ax.plot(x, ys, marker="o", label=k)
                drawn = True
        ax.set_title(title)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
    fig.suptitle("label-free signals per round (round 0: batch-norm statistics re-estimated)")
    fig.tight_layout()
    with atomic_path(out / "adapt_signals.png") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def adapt(
    features_dirs: Sequence[str | Path],
    reid_model: str | Path,
    output_dir: str | Path,
    settings: AdaptSettings | None = None,
    *,
    camera_names: Sequence[str] | None = None,
    time_offsets: Sequence[float] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    association: AssociateConfig | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> AdaptResult:
    """Adapt ``reid_model`` to the cameras of ``features_dirs`` (extract outputs with crops), without labels.

    Pseudo identities obey the constraints ``trackreid associate`` applies with ``association`` (its defaults
    when None: same-camera overlap, revisit gap, motion gate; plus its topology / max gap when given)."""
    from trackreid.models.zoo import resolve_weights
    from trackreid.train.engine import stop_on_sigint

    s = settings or AdaptSettings()
    s.check()
    if threads is not None:
        if threads < 1:
            raise InputError(f"--threads {threads}: expected 1 or more")
        torch.set_num_threads(threads)
    progress = progress or NullProgress()
    data = read_tracks(features_dirs, camera_names, time_offsets)
    warning = small_site_warning(data, s.mode)
    if warning:
        log.warning("%s", warning)
    if s.mode != "bn" and data.num_tracks < 2 * (s.batch_size // s.num_instance):
        log.warning("only %d tracks: batches repeat identities; adaptation may overfit", data.num_tracks)
    out = Path(output_dir)
    base = resolve_weights(str(reid_model))
    _prepare_output(out, resume, overwrite)
    run = _Run(data, base, out, s, progress, association)
    if resume:
        run.restore()  # refuses changed settings before anything in the folder is rewritten
    with atomic_path(out / "adapt_settings.json") as tmp:
        tmp.write_text(json.dumps({"settings": asdict(s), "reid_model": str(base), "features": [str(f) for f in
                                   data.folders], "cameras": data.cameras, "data": data.summary(),
                                   "constraints": run.constraints_used,
                                   "threads": torch.get_num_threads(), "device": str(run.device)}, indent=2),
                       encoding="utf-8")
    t_start = time.monotonic()
    deadline = t_start + 60 * s.max_minutes if s.max_minutes else None
    if not resume:
        t0 = time.monotonic()
        used = min(s.bn_images, len(data))
        if used:
            rng = np.random.default_rng(s.seed)
            pick = np.sort(rng.permutation(len(data))[:used])
            reestimate_bn(run.model, [data.paths[i] for i in pick], run.loaded.preprocess, run.device,
                          s.batch_size, s.workers, s.seed, progress)
        run.model.eval()
        row: dict[str, Any] = {"round": 0, "step": "batch-norm statistics", "bn_images": used,
                               "seconds": round(time.monotonic() - t0, 1)}
        run.log.append(row)
        run.save()
        if on_round:
            on_round(row)
    reason = "finished"
    with stop_on_sigint() as stop:
        while run.round < s.rounds and s.mode != "bn":
            if stop.is_set():
                reason = "interrupted"
                break
            t0 = time.monotonic()
            if deadline is not None and run.log and len(run.log) > 1:
                last = float(run.log[-1].get("seconds") or 0.0)
                if time.monotonic() + last > deadline:
                    reason = "time limit"
                    log.info("stopping before round %d: it would end past --max-minutes", run.round + 1)
                    break
            feats = run.embed()
            embed_seconds = round(time.monotonic() - t0, 1)
            centroids = track_means(feats, data.crop_track, data.num_tracks)
            labels, info = run.pseudo(centroids)
            sizes = np.bincount(labels)
            change = label_change(run.labels, labels)
            row = {"round": run.round + 1, "eval_intra_loss": _objective(feats, centroids, data, s.temperature),
                   **_separation(centroids, data.track_camera),
                   "clusters": int(len(sizes)), "linked_share": float((sizes[labels] > 1).mean()),
                   "largest_cluster": int(sizes.max()), "label_change": change, "embed_seconds": embed_seconds,
                   **info}
            grown = s.mode != "full" or info.get("share", 1.0) >= s.share_end - 1e-9
            if s.mode == "full" and change is not None and change < s.stop_change and grown:
                reason = "converged"
                row["step"] = "stopped: pseudo labels no longer change"
                run.log.append(row)
                _write_log(out, run.log)
                break
            losses = run.train_round(labels, centroids, stop, deadline)
            if "stopped" in losses:
                reason = losses["stopped"]
                log.warning("%s during round %d: keeping round %d in %s", reason, run.round + 1, run.round,
                            out / MODEL_NAME)
                break
            run.round += 1
            run.labels = labels
            row.update(losses)
            row.update({"iteration": run.iteration, "seconds": round(time.monotonic() - t0, 1),
                        "elapsed_minutes": round((time.monotonic() - t_start) / 60, 2)})
            run.log.append(row)
            run.save()
            if on_round:  # the caller reports the round (the CLI prints it); else the log does, once
                on_round(row)
            else:
                log.info("round %d/%d: loss %.3f, %d clusters (%.0f%% of tracks linked, largest %d), %.0f s",
                         run.round, s.rounds, row.get("loss", float("nan")), row["clusters"],
                         100 * row["linked_share"], row["largest_cluster"], row["seconds"])
    return AdaptResult(out, out / MODEL_NAME, run.round, reason, run.log, data.summary())
