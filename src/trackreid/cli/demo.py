"""``trackreid demo``: make the embedded sample scene and run extract on it, end to end."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

NAME = "demo"
HELP = "run extract end to end on a small synthetic sample video (no downloads)"
DESCRIPTION = """\
Draws a 4-second street scene with 6 walking people and its exact MOT tracks, then runs
`trackreid extract` on it and prints the summary.

Weights, in this order: --reid-model; the shared test weights
($TRACKREID_DATA/weights/osnet_x0_25_msmt17.pth or ../shared/data/...); a zoo model you
downloaded with `trackreid models download`. With none of them the demo still runs, with an
untrained network, and says plainly that its features mean nothing.

Example:
  trackreid demo --output-dir runs/demo --overwrite
"""

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", default="runs/demo", help="where to write the sample and the features")
    p.add_argument("--reid-model", help="weights to use (default: see above)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier demo's outputs")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")


def find_weights() -> Path | None:
    """Pretrained weights available offline, if any."""
    from trackreid.models.registry import ZOO
    from trackreid.models.zoo import cached_path

    candidates = []
    if os.environ.get("TRACKREID_DATA"):
        candidates.append(Path(os.environ["TRACKREID_DATA"]) / "weights" / "osnet_x0_25_msmt17.pth")
    candidates.append(Path("..") / "shared" / "data" / "weights" / "osnet_x0_25_msmt17.pth")
    candidates += [cached_path(e) for e in ZOO.values()]
    return next((c for c in candidates if c.is_file()), None)


def run(args: argparse.Namespace) -> int:
    from trackreid.cli.extract import summary
    from trackreid.cli.progress import make_progress
    from trackreid.embed.backend import Embedder, TorchBackend
    from trackreid.embed.device import resolve_device
    from trackreid.embed.factory import build_embedder
    from trackreid.extract import ExtractConfig, extract
    from trackreid.models.registry import Preprocess, create_model
    from trackreid.models.weights import LoadedModel
    from trackreid.sample import make_sample

    out = Path(args.output_dir)
    video, tracks = make_sample(out / "sample")
    print(f"sample video: {video}\nsample tracks: {tracks}")
    weights = Path(args.reid_model) if args.reid_model else find_weights()
    if weights is not None:
        embedder = build_embedder(weights, device=args.device)
        pretrained = True
    else:
        print(
            "NO PRETRAINED WEIGHTS FOUND. Running with an UNTRAINED osnet_x0_25: the pipeline runs end to end,\n"
            "but the features it writes are meaningless for re-identification. To get real weights:\n"
            "  trackreid models download osnet_x0_25_msmt17   (or put the .pth file in ~/.cache/trackreid)\n"
            "  trackreid demo --reid-model path/to/osnet.pth"
        )
        loaded = LoadedModel(create_model("osnet_x0_25").eval(), "osnet_x0_25", Preprocess(), "untrained",
                             None, None)
        embedder = Embedder(TorchBackend(loaded, resolve_device(args.device)))
        pretrained = False
    command = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    command["pretrained"] = pretrained
    result = extract(video, tracks, embedder, out / "features",
                     ExtractConfig(save_crops=True, overwrite=args.overwrite), make_progress(args.quiet), command)
    print(summary(result))
    if pretrained:
        import numpy as np

        tf = result.features
        sim = tf.features @ tf.features.T
        own = [float(np.mean(tf.crops_of(i) @ tf.features[i])) for i in range(len(tf))]
        others = float((sim.sum() - np.trace(sim)) / max(1, len(tf) * (len(tf) - 1)))
        print(f"Mean cosine of crops to their own track: {np.mean(own):.3f}; between different tracks: {others:.3f}")
    else:
        print("Reminder: these features come from an UNTRAINED network and are not meaningful.")
    return 0
