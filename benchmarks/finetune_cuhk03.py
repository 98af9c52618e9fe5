"""Fine-tune osnet_x0_25_msmt17.pth on CUHK03 train; CUHK03-val mAP / rank-1 before and after.

    python benchmarks/finetune_cuhk03.py [--data ../shared/data] [--max-minutes 25] [--threads 2]

Builds the prepared dataset (hard links, outside the repository: --work, default
runs/finetune_cuhk03) from ../shared/data/cuhk03: train/ = every train crop (743 identities),
query/ = val camera A, gallery/ = val camera B (the shared reference protocol), then
1. evaluates the pretrained weights (the baseline, in the same run),
2. trains with configs/finetune_cuhk03.yml for at most --max-minutes (a checkpoint is saved
   if the budget ends first),
3. evaluates the last weights, and prints a markdown table.

OMP_WAIT_POLICY=PASSIVE is set unless given: on a CPU shared with other jobs, OpenMP threads
that spin-wait make training several times slower.
"""

from __future__ import annotations

import os

from trackreid.runtime import env_defaults

os.environ.update(env_defaults())  # as the trackreid command does: before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from trackreid.datasets import cuhk03_query_gallery, read_image_set  # noqa: E402
from trackreid.prepare_data import layout_items, write_layout  # noqa: E402
from trackreid.train.config import load_config  # noqa: E402
from trackreid.train.engine import evaluate_weights, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def build_dataset(data: Path, out: Path) -> Path:
    if (out / "train").is_dir():
        return out
    tr = read_image_set(data / "cuhk03" / "train", "cuhk03")
    q, g = cuhk03_query_gallery(data / "cuhk03" / "val")
    # val identities restart at 0000: keep them apart from the training identities
    test = [replace(i, pid=f"{int(i.pid) + 10000:05d}") for i in layout_items(q, "query") + layout_items(g, "gallery")]
    write_layout(out, layout_items(tr, "train") + test)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "finetune_cuhk03")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "finetune_cuhk03.yml")
    ap.add_argument("--max-minutes", type=float, default=25.0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--resume", action="store_true", help="continue the run in --work")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    pretrained = args.data / "weights" / "osnet_x0_25_msmt17.pth"
    ds = build_dataset(args.data, args.work / "dataset")
    cfg = load_config(args.config, ["MODEL.BACKBONE.PRETRAIN_PATH", str(pretrained), "DATASETS.NAMES", f"('{ds}',)",
                                    "DATASETS.TESTS", f"('{ds}',)", "OUTPUT_DIR", str(args.work / "run"),
                                    *args.opts])
    t0 = time.perf_counter()
    before = evaluate_weights(cfg, pretrained)["dataset"]
    eval_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    result = train(cfg, resume=args.resume, overwrite=not args.resume, max_minutes=args.max_minutes)
    train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    last = result.last_checkpoint
    assert last is not None
    after = evaluate_weights(cfg, last)["dataset"]
    secs = [r["epoch_seconds"] for r in result.history]
    row = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}",
        "before": before.to_dict(), "after": after.to_dict(), "best": result.best_metrics,
        "epochs_done": result.epochs_done, "iterations": result.iterations, "stop_reason": result.stop_reason,
        "train_seconds_per_epoch": sum(secs) / len(secs) if secs else None, "wall_seconds": train_s,
        "cpu_seconds": train_cpu_s,
        "baseline_eval_seconds": eval_s, "history": result.history,
    }
    (args.work / "result.json").write_text(json.dumps(row, indent=2))
    print(f"\n{row['machine']}; {result.epochs_done} epochs ({result.iterations} iterations, {result.stop_reason}) "
          f"in {train_s / 60:.1f} min wall, {train_cpu_s / 60:.1f} min CPU\n")
    print("| weights | CUHK03-val mAP | rank-1 | rank-5 | mINP |")
    print("|---|---|---|---|---|")
    print(f"| osnet_x0_25_msmt17.pth (before) | {before.mAP:.1f} | {before.rank1:.1f} | {before.rank5:.1f} | "
          f"{before.mINP:.1f} |")
    print(f"| fine-tuned, {last.name} (after) | {after.mAP:.1f} | {after.rank1:.1f} | {after.rank5:.1f} | "
          f"{after.mINP:.1f} |")
    print(f"\ngain: {after.mAP - before.mAP:+.1f} mAP, {after.rank1 - before.rank1:+.1f} rank-1; "
          f"training {row['train_seconds_per_epoch'] or 0:.0f} s/epoch (+ evaluation every "
          f"{cfg.eval_period} epochs)")
    print("\n| epoch | loss | train acc | s | mAP | rank-1 |\n|---|---|---|---|---|---|")
    for r in result.history:
        m = f"{r['mAP']:.1f} | {r['rank1']:.1f}" if r["mAP"] is not None else "- | -"
        print(f"| {r['epoch']} | {r['loss']:.3f} | {100 * r['train_acc']:.1f} | {r['epoch_seconds']:.0f} | {m} |")


if __name__ == "__main__":
    main()
