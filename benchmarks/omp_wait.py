"""Eager PyTorch with OpenMP threads that spin or sleep while waiting, with and without a
competing process on the same cores.

    PYTHONPATH=src python benchmarks/omp_wait.py [--burn 1]

Each setting runs in a fresh process (OpenMP reads its variables when torch is imported):
osnet_x0_25 (MSMT17 weights), 2 torch threads, one batch of 16 random images, median of 5
runs after 2 warm-ups. ``--burn N`` starts N busy-loop processes for the duration (the
situation of a machine shared with other work). The ``trackreid`` command sets
OMP_WAIT_POLICY=PASSIVE before torch loads unless the variable is already set
(``trackreid.runtime.apply_env_defaults``; ``import trackreid`` alone sets nothing).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_dir  # noqa: E402

CHILD = """
import statistics, sys, time, torch
torch.set_num_threads(int(sys.argv[2]))
from trackreid.models.weights import load_model
m = load_model(sys.argv[1]).model.eval()
x = torch.randn(16, 3, 256, 128)
ts = []
with torch.inference_mode():
    for i in range(7):
        t = time.perf_counter(); m(x); ts.append(time.perf_counter() - t)
print(f"{statistics.median(ts[2:]):.3f}")
"""

SETTINGS = [
    ("OMP_WAIT_POLICY=PASSIVE (trackreid's default)", {"OMP_WAIT_POLICY": "PASSIVE"}),
    ("GOMP_SPINCOUNT=10000", {"GOMP_SPINCOUNT": "10000"}),
    ("nothing set (libgomp default)", {}),
    ("OMP_WAIT_POLICY=ACTIVE", {"OMP_WAIT_POLICY": "ACTIVE"}),
]


def measure(weights: Path, extra: dict[str, str], threads: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(extra)
    out = subprocess.run([sys.executable, "-c", CHILD, str(weights), str(threads)], env=env,
                         capture_output=True, text=True, check=True).stdout.split()[-1]
    return float(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--burn", type=int, default=0, help="busy-loop processes to run alongside")
    args = ap.parse_args()
    weights = data_dir() / "weights" / "osnet_x0_25_msmt17.pth"
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burn)]
    try:
        print(f"load average at start: {os.getloadavg()[0]:.1f}; busy-loop processes: {args.burn}")
        print("| setting | 1 thread img/s | 2 threads img/s |")
        print("|---|---|---|")
        for label, extra in SETTINGS:
            one, two = (16 / measure(weights, extra, t) for t in (1, 2))
            print(f"| {label} | {one:.0f} | {two:.0f} |", flush=True)
    finally:
        for p in burners:
            p.kill()
            p.wait()
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
