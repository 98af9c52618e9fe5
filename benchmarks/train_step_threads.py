"""Seconds per training step of the trainer under different CPU thread settings.

    python benchmarks/train_step_threads.py [--size 256 128] [--batch 64] [--steps 8]

Each setting runs in a fresh process (OMP_WAIT_POLICY is read when torch loads) on real
CUHK03 crops with the trainer's own step (PK batch, augmentation, OSNet x0_25 from the
MSMT17 weights, CE + triplet, Adam). Prints every step's time: on a CPU shared with other
jobs the spread matters as much as the median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time, torch
from pathlib import Path
from trackreid.progress import NullProgress
from trackreid.train.config import load_config
from trackreid.train.data import ImageLoader
from trackreid.train.engine import _Run
from trackreid.train.model import preprocess_of
threads, ds, weights, h, w, batch, steps = sys.argv[1:]
torch.set_num_threads(int(threads))
cfg = load_config(None, ["MODEL.BACKBONE.DEPTH", "x0_25", "MODEL.BACKBONE.PRETRAIN_PATH", weights,
                         "DATASETS.NAMES", f"('{ds}',)", "DATASETS.TESTS", "()", "INPUT.SIZE_TRAIN", f"[{h}, {w}]",
                         "SOLVER.IMS_PER_BATCH", batch, "DATALOADER.NUM_WORKERS", "1"])
run = _Run(cfg, torch.device("cpu"), None, NullProgress())
run.initialise()
run.to_device()
run.loader = ImageLoader(preprocess_of(cfg, test=False), 1)
times = []
for _ in range(int(steps)):
    t = time.perf_counter()
    run.step()
    times.append(time.perf_counter() - t)
print(json.dumps(times))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--size", type=int, nargs=2, default=(256, 128))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from finetune_cuhk03 import build_dataset

    with tempfile.TemporaryDirectory() as tmp:
        ds = build_dataset(args.data, Path(tmp) / "cuhk03")
        weights = args.data / "weights" / "osnet_x0_25_msmt17.pth"
        settings = [("1", "(default)"), ("2", "(default)"), ("2", "PASSIVE")]
        print(f"| threads | OMP_WAIT_POLICY | s/step, median | every step (s) |  # {args.size[0]}x{args.size[1]}, "
              f"batch {args.batch}")
        print("|---|---|---|---|")
        for threads, policy in settings:
            env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
            env.pop("OMP_WAIT_POLICY", None)
            if policy != "(default)":
                env["OMP_WAIT_POLICY"] = policy
            out = subprocess.run([sys.executable, "-c", WORKER, threads, str(ds), str(weights), str(args.size[0]),
                                  str(args.size[1]), str(args.batch), str(args.steps)],
                                 env=env, capture_output=True, text=True, check=True)
            times = json.loads(out.stdout.strip().splitlines()[-1])
            shown = " ".join(f"{t:.2f}" for t in times)
            print(f"| {threads} | {policy} | {statistics.median(times):.2f} | {shown} |")


if __name__ == "__main__":
    main()
