"""Time and peak memory of NFC on large random feature sets (chunked vs the full N x N matrix).

Each measurement runs in its own process so that its peak RSS is its own. The baseline is
NFC written as Pose2ID's code does it: the full N x N distance matrix, then top-k (only
feasible for small N: 100,000 features would need a 40 GB matrix).

    PYTHONPATH=src python benchmarks/nfc_scale.py                 # 20k both ways, 100k chunked
    PYTHONPATH=src python benchmarks/nfc_scale.py --sizes 20000 --dim 512 --chunk 1024
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def full_matrix_nfc(x: np.ndarray, k1: int = 2, k2: int = 2) -> np.ndarray:
    """Baseline: the whole N x N matrix at once (what upstream does), vectorised mutual check."""
    import torch

    from trackreid.embed.preprocess import l2_normalize

    f = torch.from_numpy(l2_normalize(x))
    sim = f @ f.T
    sim.fill_diagonal_(-torch.inf)
    nbr = torch.topk(sim, max(k1, k2), dim=1).indices.numpy()
    del sim
    cand = nbr[:, :k1]
    keep = (nbr[cand][:, :, :k2] == np.arange(len(x))[:, None, None]).any(2)
    out = f.numpy().copy()
    for c in range(k1):
        rows = np.flatnonzero(keep[:, c])
        out[rows] += f.numpy()[cand[rows, c]]
    return l2_normalize(out)


def worker(kind: str, n: int, dim: int, chunk: int, save: str | None) -> dict[str, float | int | str]:
    from trackreid.centralize import nfc

    x = np.random.default_rng(0).random((n, dim), dtype=np.float32)  # non-negative, like OSNet's ReLU output
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    y = nfc(x, chunk=chunk) if kind == "chunked" else full_matrix_nfc(x)
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if save:
        np.save(save, y)
    return {"kind": kind, "n": n, "dim": dim, "chunk": chunk if kind == "chunked" else n, "seconds": round(dt, 1),
            "peak_rss_gb": round(peak / 2**20, 2), "rss_before_gb": round(rss0 / 2**20, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,100000", help="comma-separated N")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--baseline-max", type=int, default=20000, help="largest N for the full-matrix baseline")
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.dim, args.chunk, args.save)))
        return
    rows = []
    tmp = tempfile.mkdtemp(prefix="nfc_scale_")
    for n in (int(s) for s in args.sizes.split(",")):
        kinds = ["full-matrix", "chunked"] if n <= args.baseline_max else ["chunked"]
        for kind in kinds:
            cmd = [sys.executable, __file__, "--worker", kind, str(n), "--dim", str(args.dim),
                   "--chunk", str(args.chunk)]
            if n <= args.baseline_max:
                cmd += ["--save", f"{tmp}/{kind}_{n}.npy"]
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            rows.append(res)
            print(json.dumps(res), file=sys.stderr)
    print("| N x D | implementation | chunk | time (s) | peak RSS (GB) | RSS before NFC (GB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']:,} x {r['dim']} | {r['kind']} | {r['chunk']} | {r['seconds']} | {r['peak_rss_gb']} "
              f"| {r['rss_before_gb']} |")
    for r in rows:
        if r["kind"] == "full-matrix":
            a, b = np.load(f"{tmp}/full-matrix_{r['n']}.npy"), np.load(f"{tmp}/chunked_{r['n']}.npy")
            print(f"\nN={r['n']:,}: max |chunked - full-matrix| = {np.abs(a - b).max():.2e}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
