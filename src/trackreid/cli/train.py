"""``trackreid train``: FastReID-style training of OSNet on a prepared dataset."""

from __future__ import annotations

import argparse
import json

NAME = "train"
HELP = "train or fine-tune OSNet from a FastReID-style YAML config"
DESCRIPTION = """\
Train OSNet (BNNeck, cross-entropy with label smoothing + hard triplet, PK sampler) on folders
written by `trackreid prepare-data`. The config is FastReID's format: the seed's
configs/my_osnet.yml works as is, as do FastReID v1 keys and _BASE_ inheritance.

  trackreid train --config-file configs/my_osnet.yml --num-gpus 1
  trackreid train --config-file configs/finetune_cuhk03.yml SOLVER.MAX_EPOCH 20 OUTPUT_DIR runs/ft
  trackreid train --config-file configs/my_osnet.yml --resume          # continue after Ctrl-C
  trackreid train --config-file configs/my_osnet.yml --eval-only MODEL.WEIGHTS logs/osnet_my_dataset/model_best.pth

OUTPUT_DIR receives config.yaml (the resolved config), model_final.pth, model_best.pth,
periodic model_NNNN.pth, metrics.csv / metrics.json and curves.png. Ctrl-C saves a checkpoint
first; --resume continues the run exactly. The checkpoints load directly in
`trackreid extract --reid-model`, `evaluate` and `export-onnx`. Keys: docs/training.md.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config-file", required=True, metavar="FILE", help="FastReID-style YAML config")
    p.add_argument("--num-gpus", type=int, default=None, help="0 = CPU, 1 = one CUDA device (default: MODEL.DEVICE)")
    p.add_argument("--resume", action="store_true", help="continue the run in OUTPUT_DIR from its last checkpoint")
    p.add_argument("--eval-only", action="store_true", help="evaluate MODEL.WEIGHTS on DATASETS.TESTS; no training")
    p.add_argument("--overwrite", action="store_true", help="start again in an OUTPUT_DIR that holds a run")
    p.add_argument("--datasets-root", metavar="DIR",
                   help="where dataset names are looked up (default: $TRACKREID_DATASETS, ./dataset, ./datasets)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop (with a checkpoint, resumable) after this much wall time")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice; 1 can be much faster on a busy CPU)")
    p.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE",
                   help="config overrides, e.g. SOLVER.BASE_LR 0.001 OUTPUT_DIR runs/x")


def run(args: argparse.Namespace) -> int:
    from trackreid.cli.progress import make_progress
    from trackreid.errors import InputError
    from trackreid.train.config import load_config
    from trackreid.train.engine import evaluate_weights, train

    flags = [o for o in args.opts if o.startswith("--")]
    if flags:
        raise InputError(f"{flags[0]} comes after the KEY VALUE overrides, which take the rest of the line; "
                         f"put {flags[0]} before them")
    cfg = load_config(args.config_file, args.opts)
    progress = make_progress(args.quiet)
    if args.eval_only:
        for n in cfg.notes:
            print(f"note: {n}")
        results = evaluate_weights(cfg, datasets_root=args.datasets_root, num_gpus=args.num_gpus,
                                   threads=args.threads, progress=progress)
        print(json.dumps({name: m.to_dict() for name, m in results.items()}, indent=2))
        return 0
    result = train(cfg, resume=args.resume, overwrite=args.overwrite, datasets_root=args.datasets_root,
                   num_gpus=args.num_gpus, max_minutes=args.max_minutes, threads=args.threads,
                   progress=progress)
    best = result.best_metrics
    best_text = (f"best mAP {best['mAP']:.1f} / rank-1 {best['rank1']:.1f} at epoch {best['epoch']}"
                 if best else "not evaluated")
    if not result.finished:
        print(f"stopped ({result.stop_reason}) after {result.iterations} iterations; checkpoint "
              f"{result.last_checkpoint}; continue with --resume. {best_text}")
        return 130 if result.stop_reason == "interrupted" else 0
    print(f"done: {result.epochs_done} epochs, {result.iterations} iterations; {best_text}")
    print(f"final model: {result.final}" + (f"; best model: {result.best}" if result.best else ""))
    return 0
