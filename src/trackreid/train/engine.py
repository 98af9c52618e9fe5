"""The training loop: epochs of PK batches, evaluation, checkpoints, exact resume, Ctrl-C.

:func:`train` runs a :class:`~trackreid.train.config.TrainConfig` to completion (or until
stopped) and returns a :class:`TrainResult`; :func:`evaluate_weights` is ``--eval-only``.

Everything random (initialisation, sampling, augmentation) comes from generators seeded with
``SEED`` and saved in each checkpoint, so ``--resume`` continues a run exactly: an
interrupted-and-resumed run ends with the same weights as an uninterrupted one (on the CPU).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trackreid import __version__
from trackreid.errors import InputError, OutputError
from trackreid.evaluate import ReidMetrics
from trackreid.io.atomic import atomic_path
from trackreid.progress import NullProgress, Progress
from trackreid.train import checkpoint as ckpt
from trackreid.train.config import TrainConfig
from trackreid.train.data import ImageLoader, ReidDataset, augment, combine_train, read_dataset, resolve_dataset
from trackreid.train.evaluation import evaluate_model
from trackreid.train.history import plot_curves, write_metrics
from trackreid.train.losses import cross_entropy_ls, triplet_loss
from trackreid.train.model import (
    build_model,
    build_optimizer,
    frozen_names,
    init_from,
    lr_factor,
    preprocess_of,
    set_lr,
)
from trackreid.train.sampler import build_sampler

log = logging.getLogger(__name__)

OUR_FILES = ("config.yaml", "metrics.csv", "metrics.json", "curves.png", "model_final.safetensors", ckpt.LAST)
# Keys that may change between a run and its --resume (they do not change what is learned).
RESUME_MAY_CHANGE = ("SOLVER.MAX_EPOCH", "TEST.EVAL_PERIOD", "SOLVER.CHECKPOINT_PERIOD", "DATALOADER.NUM_WORKERS",
                     "TEST.IMS_PER_BATCH", "OUTPUT_DIR", "MODEL.DEVICE", "MODEL.WEIGHTS",
                     "MODEL.BACKBONE.PRETRAIN", "MODEL.BACKBONE.PRETRAIN_PATH")


@dataclass
class TrainResult:
    output_dir: Path
    epochs_done: int
    iterations: int
    stop_reason: str  # finished | interrupted | iteration limit | time limit
    last_checkpoint: Path | None
    final: Path | None = None
    best: Path | None = None
    best_metrics: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.stop_reason == "finished"


@contextlib.contextmanager
def stop_on_sigint() -> Iterator[threading.Event]:
    """First Ctrl-C asks the loop to stop at the next safe point (and save); a second one aborts."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        log.warning("Ctrl-C: saving a checkpoint after this iteration (press Ctrl-C again to abort without saving)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise InputError(f"--threads {threads}: expected 1 or more")
        torch.set_num_threads(threads)


def _device(cfg: TrainConfig, num_gpus: int | None) -> torch.device:
    from trackreid.embed.device import resolve_device

    if num_gpus is not None:
        if num_gpus > 1:
            raise InputError(f"--num-gpus {num_gpus}: multi-GPU training is not implemented; use --num-gpus 1")
        if num_gpus == 0:
            return torch.device("cpu")
        if not torch.cuda.is_available():
            log.warning("--num-gpus 1 but no CUDA device is available: training on the CPU")
            return torch.device("cpu")
        return torch.device("cuda")
    return resolve_device(cfg.model.device)


def _load_sets(names: tuple[str, ...], root: str | Path | None,
               cache: dict[str, ReidDataset]) -> list[ReidDataset]:
    out = []
    for name in names:
        if name not in cache:
            cache[name] = read_dataset(resolve_dataset(name, root), name=Path(name).name)
        out.append(cache[name])
    return out


def _test_sets(cfg: TrainConfig, root: str | Path | None, cache: dict[str, ReidDataset]) -> list[ReidDataset]:
    sets = _load_sets(cfg.tests, root, cache)
    for ds in sets:
        if ds.query is None or ds.gallery is None:
            raise InputError(f"{ds.root}: DATASETS.TESTS names it, but it has no images under query/<pid>/ and "
                             "gallery/<pid>/; prepare it with --test-ratio > 0 or leave it out of DATASETS.TESTS")
    return sets


def _header(cfg: TrainConfig, model: nn.Module, arch: str, num_classes: int, epoch: int) -> dict[str, Any]:
    return {
        "format": "trackreid",
        "arch": arch,
        "feature_dim": int(model.feature_dim),  # type: ignore[arg-type]
        "neck": getattr(model, "neck", None) is not None,
        "preprocess": preprocess_of(cfg).to_dict(),
        "num_classes": num_classes,
        "datasets": list(cfg.datasets),
        "epoch": epoch,
        "trackreid_version": __version__,
        "config": cfg.to_nested(),
    }


def prepare_run_dir(out: Path, existing: list[str], *, resume: bool, overwrite: bool, flag: str, kind: str,
                    elsewhere: str) -> None:
    """Check and create a run's output folder (training, adaptation); ``existing``: our files already there.

    Refuses a file in the way, and an earlier run unless ``resume`` (keep it) or ``overwrite``
    (delete our files of it). ``flag`` names the setting, ``kind`` the run, ``elsewhere`` the
    other way out, in the messages.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: {flag} exists and is a file")
    if resume:
        return
    if existing and not overwrite:
        raise OutputError(f"{out}: {flag} already holds {kind} ({', '.join(existing[:4])}); pass --resume to "
                          f"continue it, --overwrite to start again, or {elsewhere}")
    for name in existing:
        (out / name).unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out}: cannot create {flag} ({e.strerror})") from None


def _prepare_output(cfg: TrainConfig, resume: bool, overwrite: bool) -> Path:
    out = cfg.output_dir
    existing = (sorted(p.name for p in out.glob("model_*.pth")) + [n for n in OUR_FILES if (out / n).exists()]
                if out.is_dir() else [])
    prepare_run_dir(out, existing, resume=resume, overwrite=overwrite, flag="OUTPUT_DIR", kind="a training run",
                    elsewhere="set OUTPUT_DIR")
    return out


def _check_resume_config(cfg: TrainConfig, saved: dict[str, Any], path: Path) -> None:
    from trackreid.train.config import unflatten

    now = unflatten(cfg.values)

    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    a, b = flat(saved), flat(now)
    changed = [k for k in b if k in a and a[k] != b[k]]
    allowed = [k for k in changed if k in RESUME_MAY_CHANGE]
    blocking = [k for k in changed if k not in RESUME_MAY_CHANGE]
    if blocking:
        shown = "; ".join(f"{k}: {a[k]!r} -> {b[k]!r}" for k in blocking[:5])
        raise InputError(f"{path}: --resume needs the configuration the run started with; changed: {shown}. "
                         "Start a new run (another OUTPUT_DIR) to change these")
    for k in allowed:
        log.info("resume: %s changed from %r to %r", k, a[k], b[k])


class _Run:
    """State of one training run; :meth:`loop` is the training loop."""

    def __init__(self, cfg: TrainConfig, device: torch.device, datasets_root: str | Path | None,
                 progress: Progress) -> None:
        self.cfg = cfg
        self.device = device
        self.progress = progress
        self.cache: dict[str, ReidDataset] = {}
        self.train_set, self.train_names = combine_train(_load_sets(cfg.datasets, datasets_root, self.cache))
        if len(self.train_set) == 0:
            raise InputError(f"DATASETS.NAMES {list(cfg.datasets)}: no training images under train/<pid>/")
        self.tests = _test_sets(cfg, datasets_root, self.cache)
        self.num_classes = len(self.train_names)
        self.iters_per_epoch = max(1, len(self.train_set) // cfg.solver.ims_per_batch)
        self.channels_last = True
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg, self.num_classes)
        self.arch = cfg.model.backbone.arch
        self.aug_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.sampler = build_sampler(cfg.sampler, self.train_set.pids, cfg.solver.ims_per_batch,
                                     cfg.num_instance, cfg.seed + 2)
        self.epoch = 0
        self.iter_in_epoch = 0
        self.iteration = 0
        self.running: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.neck_out: list[torch.Tensor] = []
        self.notes: list[str] = []

    # ---------------------------------------------------------------- set-up

    def initialise(self) -> None:
        from trackreid.models.weights import zero_denormals
        from trackreid.models.zoo import resolve_weights

        m, b = self.cfg.model, self.cfg.model.backbone
        report = None
        if m.weights:
            report = init_from(self.model, resolve_weights(m.weights), self.arch)
        elif b.pretrain and b.pretrain_path:
            report = init_from(self.model, resolve_weights(b.pretrain_path), self.arch, backbone_only=True)
        elif b.pretrain:
            self.notes.append("MODEL.BACKBONE.PRETRAIN is true but PRETRAIN_PATH is empty: FastReID would fetch "
                              "ImageNet weights, trackreid downloads nothing unasked, so training starts from "
                              "random weights. Set MODEL.BACKBONE.PRETRAIN_PATH (a file or a zoo name) to fine-tune")
        if report is not None:
            self.notes.append(report.describe())
        zeroed = zero_denormals(self.model)
        if zeroed:
            self.notes.append(f"set {zeroed} subnormal pretrained weights to zero (they slow CPU training)")

    def to_device(self) -> None:
        self.model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if self.model.neck is not None:
            self.model.neck.register_forward_hook(self._keep_neck_output)
        self.optimizer = build_optimizer(self.model, self.cfg.solver)
        self.amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.use_amp = self.cfg.solver.amp and self.device.type in ("cuda", "cpu")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.device.type == "cuda")
        self.frozen = frozen_names(self.model, self.cfg.model.freeze_layers)

    def _keep_neck_output(self, module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        if module.training:  # the BNNeck output of the training forward, for NECK_FEAT "after"
            self.neck_out = [output]

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "trackreid": _header(self.cfg, self.model, self.arch, self.num_classes, self.epoch),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"name": self.cfg.solver.sched, "epoch": self.epoch, "iteration": self.iteration},
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "iteration_in_epoch": self.iter_in_epoch,
            "iteration": self.iteration,
            "iters_per_epoch": self.iters_per_epoch,
            "num_train_images": len(self.train_set),
            "sampler": self.sampler.state_dict(),
            "rng": ckpt.rng_state(self.aug_gen),
            "running": dict(self.running),
            "history": list(self.history),
            "best": self.best,
        }

    def restore(self, path: Path) -> None:
        ck = ckpt.load(path)
        saved_cfg = ck.get("trackreid", {}).get("config", {})
        _check_resume_config(self.cfg, saved_cfg, path)
        if ck.get("num_train_images") != len(self.train_set) or ck["trackreid"].get("num_classes") != self.num_classes:
            raise InputError(f"{path}: the run trained on {ck.get('num_train_images')} images of "
                             f"{ck['trackreid'].get('num_classes')} identities; the training data now has "
                             f"{len(self.train_set)} of {self.num_classes}. Resume needs the same data")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scaler.load_state_dict(ck["scaler"])
        self.sampler.load_state_dict(ck["sampler"])
        ckpt.restore_rng(ck["rng"], self.aug_gen)
        self.epoch, self.iter_in_epoch, self.iteration = int(ck["epoch"]), int(ck["iteration_in_epoch"]), int(
            ck["iteration"])
        self.running = dict(ck["running"])
        self.history = list(ck["history"])
        self.best = ck["best"]
        log.info("resumed %s at epoch %d, iteration %d", path, self.epoch + 1, self.iteration)

    # ---------------------------------------------------------------- steps

    def step(self) -> dict[str, float]:
        cfg, s = self.cfg, self.cfg.solver
        lr = set_lr(self.optimizer, lr_factor(s, self.iteration, self.epoch))
        freezing = bool(self.frozen) and self.iteration < s.freeze_iters
        self.model.train()
        for name in self.frozen if freezing else ():
            getattr(self.model, name).eval()
        idx = self.sampler.next_batch()
        paths = [self.train_set.paths[i] for i in idx]
        pre = preprocess_of(cfg, test=False)
        x = augment(self.loader.load(paths), cfg.input, pre.mean, pre.std, self.aug_gen).to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(self.train_set.pids[idx]).to(self.device)
        self.neck_out = []
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            logits, before = self.model(x)
        logits, before = logits.float(), before.float()
        after = self.neck_out[-1].float() if self.neck_out else before
        out: dict[str, float] = {"lr": lr}
        total = logits.new_zeros(())
        if "CrossEntropyLoss" in cfg.model.losses:
            ce = cross_entropy_ls(logits, y, cfg.model.ce_epsilon) * cfg.model.ce_scale
            total = total + ce
            out["loss_ce"] = float(ce.detach())
        if "TripletLoss" in cfg.model.losses:
            feats = after if cfg.model.neck_feat == "after" else before
            tri = triplet_loss(feats, y, cfg.model.tri_margin, cfg.model.tri_norm_feat,
                               cfg.model.tri_hard_mining) * cfg.model.tri_scale
            total = total + tri
            out["loss_triplet"] = float(tri.detach())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if freezing:
            for name in self.frozen:
                for p in getattr(self.model, name).parameters():
                    p.grad = None
        if s.clip_gradients:
            self.scaler.unscale_(self.optimizer)
            params = [p for p in self.model.parameters() if p.grad is not None]
            if s.clip_type == "value":
                torch.nn.utils.clip_grad_value_(params, s.clip_value)
            else:
                torch.nn.utils.clip_grad_norm_(params, s.clip_value, s.norm_type)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        out["loss"] = float(total.detach())
        out["train_acc"] = float((logits.argmax(1) == y).float().mean())
        return out

    def evaluate(self) -> dict[str, ReidMetrics]:
        cfg = self.cfg
        results = {}
        for ds in self.tests:
            assert ds.query is not None and ds.gallery is not None  # checked in _test_sets
            results[ds.name] = evaluate_model(
                self.model, ds.query, ds.gallery, preprocess_of(cfg), self.device, cfg.test_batch, cfg.test_metric,
                cfg.test_flip, cfg.num_workers, self.progress, self.channels_last)
        return results

    def save(self, name: str) -> Path:
        return ckpt.save(self.state(), self.cfg.output_dir / name)

    def end_epoch(self) -> None:
        cfg = self.cfg
        n = max(1.0, self.running.get("n", 0.0))
        row: dict[str, Any] = {
            "epoch": self.epoch + 1, "iteration": self.iteration, "lr": self.running.get("lr"),
            "loss": self.running.get("loss", 0.0) / n, "train_acc": self.running.get("train_acc", 0.0) / n,
            "loss_ce": self.running["loss_ce"] / n if "loss_ce" in self.running else None,
            "loss_triplet": self.running["loss_triplet"] / n if "loss_triplet" in self.running else None,
            "epoch_seconds": round(self.running.get("seconds", 0.0), 2),
            "mAP": None, "rank1": None, "rank5": None, "mINP": None,
        }
        last = self.epoch + 1 == cfg.solver.max_epoch
        if self.tests and (last or (cfg.eval_period and (self.epoch + 1) % cfg.eval_period == 0)):
            metrics = self.evaluate()
            first = next(iter(metrics.values()))
            row.update(mAP=first.mAP, rank1=first.rank1, rank5=first.rank5, mINP=first.mINP)
            if len(metrics) > 1:
                row["tests"] = {k: v.to_dict() for k, v in metrics.items()}
            if self.best is None or first.mAP > self.best["mAP"]:
                self.best = {"epoch": self.epoch + 1, "mAP": first.mAP, "rank1": first.rank1, "test": cfg.tests[0]}
                best_state = {"model": self.model.state_dict(),
                              "trackreid": _header(cfg, self.model, self.arch, self.num_classes, self.epoch + 1),
                              "metrics": {k: v.to_dict() for k, v in metrics.items()}}
                ckpt.save(best_state, cfg.output_dir / "model_best.pth", mark_last=False)
        self.history.append(row)
        parts = "".join(f" {k[5:]} {row[k]:.3f}" for k in ("loss_ce", "loss_triplet") if row[k] is not None)
        evald = f"; mAP {row['mAP']:.1f} rank-1 {row['rank1']:.1f}" if row["mAP"] is not None else ""
        log.info("epoch %d/%d: loss %.3f%s acc %.2f lr %.2e %.0f s%s", row["epoch"], cfg.solver.max_epoch,
                 row["loss"], parts, row["train_acc"], row["lr"] or 0.0, row["epoch_seconds"], evald)
        write_metrics(cfg.output_dir, self.history, self.best)
        if row["mAP"] is not None or last:
            plot_curves(cfg.output_dir, self.history)
        self.epoch += 1
        self.iter_in_epoch = 0
        self.running = {}
        if self.epoch % cfg.solver.checkpoint_period == 0 and self.epoch < cfg.solver.max_epoch:
            self.save(f"model_{self.epoch:04d}.pth")

    def loop(self, stop: threading.Event, stop_after: int | None, deadline: float | None) -> str:
        cfg = self.cfg
        self.loader = ImageLoader(preprocess_of(cfg, test=False), cfg.num_workers)
        try:
            while self.epoch < cfg.solver.max_epoch:
                self.progress.start(f"epoch {self.epoch + 1}/{cfg.solver.max_epoch}", self.iters_per_epoch, "iters")
                self.progress.advance(self.iter_in_epoch)
                while self.iter_in_epoch < self.iters_per_epoch:
                    t0 = time.perf_counter()
                    out = self.step()
                    self.iteration += 1
                    self.iter_in_epoch += 1
                    for k, v in out.items():
                        self.running[k] = v if k == "lr" else self.running.get(k, 0.0) + v
                    self.running["n"] = self.running.get("n", 0.0) + 1
                    self.running["seconds"] = self.running.get("seconds", 0.0) + time.perf_counter() - t0
                    self.progress.advance(1, loss=f"{out['loss']:.3f}")
                    reason = self._should_stop(stop, stop_after, deadline)
                    if reason:
                        self.progress.finish()
                        return reason
                self.progress.finish()
                self.end_epoch()
                reason = self._should_stop(stop, stop_after, deadline)
                if reason and self.epoch < cfg.solver.max_epoch:
                    return reason
        finally:
            self.loader.close()
        return "finished"

    def _should_stop(self, stop: threading.Event, stop_after: int | None, deadline: float | None) -> str:
        if stop.is_set():
            return "interrupted"
        if stop_after is not None and self.iteration >= stop_after:
            return "iteration limit"
        if deadline is not None and time.monotonic() > deadline:
            return "time limit"
        return ""


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    overwrite: bool = False,
    datasets_root: str | Path | None = None,
    num_gpus: int | None = None,
    stop_after: int | None = None,
    max_minutes: float | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train (or continue with ``resume``) the run described by ``cfg``; outputs go to ``cfg.output_dir``.

    ``stop_after`` (iterations in total) and ``max_minutes`` end the run early, like Ctrl-C:
    a checkpoint is saved and ``resume=True`` continues from it exactly. ``threads`` sets
    torch's CPU thread count for the process (on a CPU shared with other jobs, fewer threads
    than cores avoids OpenMP spin-waiting that can slow small batches many-fold).
    """
    _set_threads(threads)
    device = _device(cfg, num_gpus)
    if cfg.cudnn_benchmark and device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    run = _Run(cfg, device, datasets_root, progress or NullProgress())  # reads and checks the data first
    out = _prepare_output(cfg, resume, overwrite)
    resume_from = ckpt.last_checkpoint(out) if resume else None
    if resume_from is None:
        run.initialise()
    run.to_device()
    if resume_from is not None:
        run.restore(resume_from)
    notes = list(cfg.notes) + run.notes
    for n in notes:
        log.info("%s", n)
    with atomic_path(out / "config.yaml") as tmp:
        tmp.write_text(cfg.to_yaml(), encoding="utf-8")
    log.info("training %s (%d identities, %d images, %d iterations/epoch) on %s -> %s", run.arch, run.num_classes,
             len(run.train_set), run.iters_per_epoch, device, out)
    deadline = time.monotonic() + 60 * max_minutes if max_minutes else None
    with stop_on_sigint() as stop:
        reason = run.loop(stop, stop_after, deadline)
    result = TrainResult(out, run.epoch, run.iteration, reason, None, history=run.history, notes=notes,
                         best_metrics=run.best)
    if reason != "finished":
        result.last_checkpoint = run.save("model_stopped.pth")
        log.warning("stopped (%s) at epoch %d, iteration %d: saved %s; continue with --resume", reason,
                    run.epoch + 1, run.iteration, result.last_checkpoint)
    else:
        result.final = result.last_checkpoint = run.save("model_final.pth")
        _save_safetensors(run, out / "model_final.safetensors")
    if (out / "model_best.pth").is_file() and run.best is not None:
        result.best = out / "model_best.pth"
    return result


def _save_safetensors(run: _Run, path: Path) -> None:
    from trackreid.models.weights import save_checkpoint

    model = run.model
    save_checkpoint(model, run.arch, path, preprocess_of(run.cfg),  # type: ignore[arg-type]
                    extra={"num_classes": run.num_classes, "datasets": list(run.cfg.datasets)})


def evaluate_weights(
    cfg: TrainConfig, weights: str | Path | None = None, *, datasets_root: str | Path | None = None,
    num_gpus: int | None = None, threads: int | None = None, progress: Progress | None = None,
) -> dict[str, ReidMetrics]:
    """``--eval-only``: evaluate ``weights`` (default ``MODEL.WEIGHTS``) on every ``DATASETS.TESTS`` set."""
    from trackreid.models.weights import load_model
    from trackreid.models.zoo import resolve_weights

    _set_threads(threads)

    spec = weights or cfg.model.weights
    if not spec:
        raise InputError("--eval-only needs weights: set MODEL.WEIGHTS (a file or a zoo name)")
    loaded = load_model(resolve_weights(spec))
    device = _device(cfg, num_gpus)
    model = loaded.model.to(device)
    results = {}
    for ds in _test_sets(cfg, datasets_root, {}):
        assert ds.query is not None and ds.gallery is not None
        results[ds.name] = evaluate_model(model, ds.query, ds.gallery, loaded.preprocess, device, cfg.test_batch,
                                          cfg.test_metric, cfg.test_flip, cfg.num_workers, progress)
    return results

