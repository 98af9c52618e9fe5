"""``trackreid adapt``: fit a ReID model to your own cameras from their tracks, without labels."""

from __future__ import annotations

import argparse

NAME = "adapt"
HELP = "adapt a ReID model to your cameras from their tracks (no identity labels)"
DESCRIPTION = """\
Unsupervised adaptation: every crop of a track is one person and two tracks of one camera at
the same moment are two people; adapt turns that into training signal. Batch-norm statistics
are re-estimated on your crops, then each round re-embeds the crops, links tracks across
cameras with the association's constrained clustering (confident links first, more each
round) and trains a per-camera track-centroid memory loss + a cross-camera pseudo-identity
loss + a hard triplet. Inputs are extract outputs made with --save-crops, one per camera.

  trackreid extract --source cam1.mp4 --tracks cam1.txt --reid-model osnet_x0_25_msmt17 \\
      --save-crops --output-dir runs/cam1          # and the same for cam2
  trackreid adapt --features runs/cam1 --features runs/cam2 \\
      --reid-model ../shared/data/weights/osnet_x0_25_msmt17.pth --output-dir runs/adapt \\
      --rounds 6 --max-minutes 30
  trackreid extract ... --reid-model runs/adapt/model_adapted.pth   # re-extract with the adapted model

Cross-camera pseudo identities obey the constraints `trackreid associate` applies, with the
same flags and defaults (--topology FILE, --max-gap, --revisit-gap, --no-motion-gate): a link
the association would refuse is never trained on.

--output-dir receives model_adapted.pth (loads in extract, evaluate, export-onnx and
associate), adapt_log.json / adapt_log.csv and adapt_signals.png (label-free signals per
round) and adapt_settings.json. Ctrl-C or --max-minutes keep the last finished round;
--resume continues; the same --seed gives the same weights. Details: docs/adapt.md.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", action="append", required=True, metavar="DIR",
                   help="an extract output folder made with --save-crops (one per camera; repeat)")
    p.add_argument("--reid-model", required=True, help="weights to start from (file or zoo name)")
    p.add_argument("--output-dir", required=True, metavar="DIR", help="where model_adapted.pth and the logs go")
    p.add_argument("--rounds", type=int, default=6, help="pseudo-label / train rounds (default 6)")
    p.add_argument("--iters-per-round", type=int, default=150, help="training iterations per round (default 150)")
    p.add_argument("--mode", default="full", choices=("full", "within", "bn"),
                   help="full: within-camera + cross-camera pseudo links (default); within: track classes per "
                        "camera only; bn: re-estimate batch-norm statistics only (seconds)")
    from trackreid.cli.associate import add_constraint_arguments

    add_constraint_arguments(p, topology_auto=False)
    p.add_argument("--max-minutes", type=float, default=None, help="stop at the last round that ends within this")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same weights; default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 (default auto)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output-dir after its last round")
    p.add_argument("--overwrite", action="store_true", help="start again in an --output-dir that holds a run")


def run(args: argparse.Namespace) -> int:
    from trackreid.adapt import AdaptSettings, adapt
    from trackreid.associate.config import AssociateConfig
    from trackreid.cli.progress import make_progress

    settings = AdaptSettings(mode=args.mode, rounds=args.rounds, iters_per_round=args.iters_per_round,
                             seed=args.seed, device=args.device, max_minutes=args.max_minutes)

    def report(row: dict) -> None:
        if row["round"] == 0:
            print(f"round 0: batch-norm statistics re-estimated on {row['bn_images']} crops ({row['seconds']} s)")
        else:
            print(f"round {row['round']}/{args.rounds}: loss {row.get('loss', float('nan')):.3f}, "
                  f"{100 * row['linked_share']:.0f}% of tracks linked across cameras "
                  f"(largest pseudo identity {row['largest_cluster']} tracks), {row['seconds']} s")

    association = AssociateConfig(topology=args.topology, max_gap=args.max_gap, revisit_gap=args.revisit_gap,
                                  motion_gate=args.motion_gate)
    result = adapt(args.features, args.reid_model, args.output_dir, settings, resume=args.resume,
                   overwrite=args.overwrite, association=association, threads=args.threads,
                   progress=make_progress(args.quiet),
                   on_round=None if args.quiet else report)
    print(f"{result.stop_reason} after round {result.rounds_done}: {result.model} "
          f"({result.data['tracks']} tracks, {result.data['crops']} crops, {result.data['cameras']} cameras)")
    if result.stop_reason == "interrupted":
        print(f"continue with: trackreid adapt ... --output-dir {result.output_dir} --resume")
        return 130
    return 0
