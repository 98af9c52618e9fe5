"""Search index at scale: exact flat (the baseline) against IVF-PQ, on realistic track vectors.

Vectors: real OSNet x0.25 (MSMT17) features of the CUHK03 val and train crops (8,177 images
of 843 people) as "people", and every indexed track one of them plus Gaussian noise (norm
``--noise`` relative to the unit feature, then L2-normalised): a person seen in many tracks,
as a site is. Queries are fresh noisy copies. For each size and kind, in the same run:
build time, size on disk (FAISS file), memory (resident set growth while building),
single-query latency p50/p99 (one query per call, as ``trackreid search`` makes them), and
recall@10 against the exact flat index's top 10.

    PYTHONPATH=src python benchmarks/search_bench.py --sizes 100000,1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cuhk03_train, cuhk03_val, machine  # noqa: E402

from trackreid.search import vectors as vec  # noqa: E402


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


def real_features(cache: Path) -> np.ndarray:
    if cache.is_file():
        return np.load(cache)
    from trackreid.embed.factory import build_embedder

    emb = build_embedder(_data() / "weights" / "osnet_x0_25_msmt17.pth", device="cpu", batch_size=64)
    _, _, qi, gi = cuhk03_val()
    _, ti = cuhk03_train()
    f = np.concatenate([emb.embed(qi), emb.embed(gi), emb.embed(ti)]).astype(np.float32)
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    np.save(cache, f)
    return f


def _data() -> Path:
    from _common import data_dir

    return data_dir()


def noisy(base: np.ndarray, n: int, noise: float, rng: np.random.Generator, chunk: int = 100_000) -> np.ndarray:
    out = np.empty((n, base.shape[1]), np.float32)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        x = base[rng.integers(0, len(base), e - s)] + rng.normal(0, noise / np.sqrt(base.shape[1]),
                                                                  (e - s, base.shape[1])).astype(np.float32)
        out[s:e] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def measure(x: np.ndarray, queries: np.ndarray, kind: str, truth: np.ndarray | None,
            nprobes: list[int]) -> tuple[list[dict], np.ndarray]:
    r0 = rss_bytes()
    t = time.perf_counter()
    index, settings = vec.build(x, kind)
    build = time.perf_counter() - t
    mem = rss_bytes() - r0
    with tempfile.TemporaryDirectory(prefix="search_bench_") as d:
        path = Path(d) / "v.faiss"
        vec.write(index, path)
        disk = path.stat().st_size
    rows = []
    for nprobe in nprobes if kind == "ivfpq" else [None]:
        if nprobe is not None:
            vec.apply_settings(index, {**settings, "nprobe": nprobe})
        lat = []
        ids = np.empty((len(queries), 10), np.int64)
        for i, q in enumerate(queries):
            t = time.perf_counter()
            _, got = vec.search(index, q[None], 10)
            lat.append(time.perf_counter() - t)
            ids[i] = got[0]
        recall = 1.0 if truth is None else float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth,
                                                                                                strict=True)]))
        rows.append({"kind": kind, "factory": settings["factory"] + (f" nprobe {nprobe}" if nprobe else ""),
                     "n": len(x), "build_s": round(build, 2), "disk_mb": round(disk / 1e6, 1),
                     "memory_mb": round(mem / 1e6, 1), "p50_ms": round(1000 * float(np.percentile(lat, 50)), 2),
                     "p99_ms": round(1000 * float(np.percentile(lat, 99)), 2), "recall_at_10": round(recall, 3),
                     "queries": len(queries)})
    del index
    return rows, ids


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--kinds", default="flat,ivfpq", help="flat first: it is the baseline and the recall truth")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--noise", type=float, default=0.6)
    ap.add_argument("--nprobes", default=str(vec.NPROBE), help="IVF lists searched, e.g. 32,128 (one row each)")
    ap.add_argument("--cache", default="/tmp/search_bench_features.npy")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    print(machine())
    print(f"load before: {load()}")
    base = real_features(Path(args.cache))
    print(f"{len(base)} real CUHK03 features (OSNet x0.25 MSMT17), noise {args.noise}")
    rows = []
    print("| tracks | index | build s | disk MB | memory MB | p50 ms | p99 ms | recall@10 |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        rng = np.random.default_rng(n)
        x = noisy(base, n, args.noise, rng)
        queries = noisy(base, args.queries, args.noise, rng)
        truth = None
        for kind in args.kinds.split(","):
            measured, ids = measure(x, queries, kind, truth, [int(v) for v in args.nprobes.split(",")])
            if kind == "flat":
                truth = ids
            for row in measured:
                row["load"] = load().split("load average:")[-1].strip()
                rows.append(row)
                print(f"| {n:,} | {row['factory']} | {row['build_s']} | {row['disk_mb']} | {row['memory_mb']} | "
                      f"{row['p50_ms']} | {row['p99_ms']} | {row['recall_at_10']} |", flush=True)
        del x
    print(f"load after: {load()}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
