"""Throughput of each inference backend at batch 1 / 8 / 32, and its CUHK03-val accuracy.

    PYTHONPATH=src python benchmarks/backends_bench.py [--quick] [--compile]

Rows: osnet_x0_25 with the real MSMT17 weights (speed, cosine to eager, CUHK03-val mAP),
osnet_x1_0 randomly initialised (speed and cosine only) and the third-party
osnet_x0_25_msmt17.onnx as shipped vs with its subnormal weights zeroed. Every backend gets
the same real crops, already resized (uint8 RGB): the numbers are model time plus
normalisation. The baseline (eager float32 PyTorch, contiguous layout) runs in the same process.
"""

from __future__ import annotations

import os

from trackreid.runtime import env_defaults

os.environ.update(env_defaults())  # as the trackreid command does: before torch is imported

import argparse  # noqa: E402
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cuhk03_val, data_dir, machine, metrics  # noqa: E402

from trackreid.embed.backend import Embedder, TorchBackend  # noqa: E402
from trackreid.embed.onnx_backend import OnnxBackend  # noqa: E402
from trackreid.embed.onnx_export import cached_onnx, export_loaded  # noqa: E402
from trackreid.embed.preprocess import resize_crops  # noqa: E402
from trackreid.models.registry import Preprocess, create_model  # noqa: E402
from trackreid.models.weights import LoadedModel, load_model  # noqa: E402

BATCHES = (1, 8, 32)
BACKENDS = ("torch eager fp32 (baseline)", "torch channels_last fp32", "torch channels_last bf16 autocast",
            "onnxruntime fp32, float input (export-onnx)", "onnxruntime fp32, uint8 input (auto)")


class Bf16Backend(TorchBackend):
    """Eager (or compiled) channels-last PyTorch under bfloat16 autocast (AMX on this CPU)."""

    def __init__(self, loaded: LoadedModel, compile_model: bool = False) -> None:
        super().__init__(loaded, torch.device("cpu"), channels_last=True)
        self.name = "torch-bf16" + ("-compile" if compile_model else "")
        if compile_model:
            self.model = torch.compile(self.model)  # type: ignore[assignment]

    def run(self, batch: np.ndarray) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return super().run(batch)


def img_per_s(run: Callable[[np.ndarray], Any], batch: np.ndarray, budget_s: float) -> float:
    run(batch)  # warm-up (new shape)
    run(batch)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget_s and len(times) < 50):
        t = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - t)
    return len(batch) / statistics.median(times)


def row_cosine(a: np.ndarray, b: np.ndarray) -> float:
    c = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(c.min())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter timing budget, no accuracy column")
    ap.add_argument("--compile", action="store_true", help="add torch.compile + bf16 rows (20-40 s compile per shape)")
    args = ap.parse_args()
    budget = 0.7 if args.quick else 2.0
    print(f"machine: {machine()}", flush=True)
    q, g, qi, gi = cuhk03_val()
    pre = Preprocess()
    pool = resize_crops((qi + gi)[:: max(1, len(qi + gi) // 64)][:64], pre)
    weights = data_dir() / "weights"
    cache = Path(tempfile.mkdtemp(prefix="trackreid-bench-"))

    def x1_0() -> LoadedModel:
        torch.manual_seed(0)
        m = create_model("osnet_x1_0").eval()
        # Random init gives BN statistics of a fresh net; a pretend sha256 keys the ONNX cache.
        return LoadedModel(m, "osnet_x1_0", pre, "random", None, "0" * 64)

    def x0_25() -> LoadedModel:
        return load_model(weights / "osnet_x0_25_msmt17.pth")

    models: list[tuple[str, Callable[[], LoadedModel], bool]] = [
        ("osnet_x0_25 (msmt17.pth)", x0_25, not args.quick),
        ("osnet_x1_0 (random init)", x1_0, False),
    ]
    rows = []
    for label, make, with_map in models:
        names = list(BACKENDS) + (["torch.compile bf16 channels_last"] if args.compile else [])
        ref = None
        for name in names:
            t = time.perf_counter()
            backend = make_backend(name, make(), cache)
            setup = time.perf_counter() - t
            speeds = [img_per_s(backend.run, pool[:b] if b <= len(pool) else pool, budget) for b in BATCHES]
            out = backend.run(pool[:32])
            if ref is None:
                ref = out
            cos = row_cosine(out, ref)
            acc = "-"
            if with_map:
                emb = Embedder(backend, 32)
                m = metrics(emb.embed(qi), emb.embed(gi), q, g)
                acc = f"{m.mAP:.2f} / {m.rank1:.2f}"
            rows.append((label, name, *speeds, cos, acc, setup))
            print(f"  {label} | {name}: {' / '.join(f'{s:.0f}' for s in speeds)} img/s, cos {cos:.6f}, "
                  f"mAP/r1 {acc}, setup {setup:.1f}s", flush=True)

    onnx_path = weights / "osnet_x0_25_msmt17.onnx"
    # The third-party file's own baseline is the file as shipped (not eager PyTorch: other weights).
    for name, zero in (("onnxruntime fp32, as shipped (baseline)", False),
                       ("onnxruntime fp32, subnormals zeroed", True)):
        backend = OnnxBackend.from_path(onnx_path, device="cpu", zero_denormals=zero)
        speeds = [img_per_s(backend.run, pool[:b], budget) for b in BATCHES]
        out = backend.run(pool[:32])
        if not zero:
            ref = out
        acc = "-"
        if not args.quick:
            emb = Embedder(backend, 32)
            m = metrics(emb.embed(qi), emb.embed(gi), q, g)
            acc = f"{m.mAP:.2f} / {m.rank1:.2f}"
        rows.append(("third-party osnet_x0_25_msmt17.onnx", name, *speeds, row_cosine(out, ref), acc, 0.0))
        print(f"  onnx | {name}: {' / '.join(f'{s:.0f}' for s in speeds)} img/s, mAP/r1 {acc}", flush=True)

    print()
    print("| model | backend | img/s b=1 | b=8 | b=32 | min cosine vs baseline | CUHK03-val mAP / rank-1 | setup s |")
    print("|---|---|---|---|---|---|---|---|")
    for label, name, s1, s8, s32, cos, acc, setup in rows:
        shown = "(baseline)" if "(baseline)" in name else f"{cos:.6f}"  # a baseline compared with itself says nothing
        print(f"| {label} | {name} | {s1:.0f} | {s8:.0f} | {s32:.0f} | {shown} | {acc} | {setup:.1f} |")


def make_backend(name: str, loaded: LoadedModel, cache: Path) -> Any:
    cpu = torch.device("cpu")
    if name == "torch eager fp32 (baseline)":
        return TorchBackend(loaded, cpu, channels_last=False)
    if name == "torch channels_last fp32":
        return TorchBackend(loaded, cpu, channels_last=True)
    if name == "torch channels_last bf16 autocast":
        return Bf16Backend(loaded)
    if name == "torch.compile bf16 channels_last":
        return Bf16Backend(loaded, compile_model=True)
    if name == "onnxruntime fp32, float input (export-onnx)":
        path = cache / f"{loaded.arch}-float.onnx"
        if not path.exists():
            export_loaded(loaded, path)
        return OnnxBackend.from_path(path, device="cpu")
    if name == "onnxruntime fp32, uint8 input (auto)":
        return OnnxBackend.from_path(cached_onnx(loaded, cache), device="cpu")
    raise ValueError(name)


if __name__ == "__main__":
    main()
