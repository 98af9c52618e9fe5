"""How right are adapt's first cross-camera pseudo links? CUHK03 train, with and without the hubness correction.

    python benchmarks/adapt_links.py [--weights W] [--no-bn] [--scale-k 0,10] [--shares 0.3,0.5,0.8,1.0]

Builds (or reuses) the unlabelled two-camera CUHK03-train folders of `adapt_cuhk03.py`,
re-estimates the batch-norm statistics on 3,000 of their crops as adapt's round 0 does (skip
with `--no-bn`, e.g. for an adapted `model_adapted.pth`), embeds every crop (timing batch 64
against 128), and runs `trackreid.adapt.pseudo.pseudo_labels` at each share of the mutual pairs,
once per `scale_k`. The hidden identities score the links afterwards: links, the share that
join one person (precision), the share of the 743 true pairs found (recall).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from adapt_cuhk03 import ROOT, build_cameras, pair_quality, possible_links, track_people  # noqa: E402

from trackreid.adapt.data import read_tracks, track_means  # noqa: E402
from trackreid.adapt.loop import reestimate_bn  # noqa: E402
from trackreid.adapt.pseudo import pseudo_labels  # noqa: E402
from trackreid.datasets import ImageSet  # noqa: E402
from trackreid.models.weights import load_model  # noqa: E402
from trackreid.progress import NullProgress  # noqa: E402
from trackreid.train.evaluation import embed_images  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "adapt_cuhk03")
    ap.add_argument("--weights", type=Path, default=None, help="default: osnet_x0_25_msmt17.pth")
    ap.add_argument("--no-bn", action="store_true", help="keep the weights' batch-norm statistics")
    ap.add_argument("--scale-k", default="0,10")
    ap.add_argument("--shares", default="0.3,0.5,0.8,1.0")
    args = ap.parse_args()
    cams, truth = build_cameras(args.data, args.work)
    d = read_tracks(cams)
    loaded = load_model(args.weights or args.data / "weights" / "osnet_x0_25_msmt17.pth")
    model, device = loaded.model.eval(), torch.device("cpu")
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if not args.no_bn:
        pick = np.sort(np.random.default_rng(0).permutation(len(d))[:3000])
        reestimate_bn(model, [d.paths[i] for i in pick], loaded.preprocess, device, 64, 2, 0, NullProgress())
        model.eval()
    n = len(d)
    images = ImageSet(d.paths, np.zeros(n, np.int64), np.zeros(n, np.int64))
    few = ImageSet(d.paths[:1024], np.zeros(1024, np.int64), np.zeros(1024, np.int64))
    embed_images(model, few, loaded.preprocess, device, 64, workers=2, channels_last=True)  # warm-up
    for batch in (128, 64):
        t0 = time.perf_counter()
        embed_images(model, few, loaded.preprocess, device, batch, workers=2, channels_last=True)
        print(f"embedding batch {batch}: {1000 * (time.perf_counter() - t0) / 1024:.2f} ms per crop", flush=True)
    feats = embed_images(model, images, loaded.preprocess, device, 64, workers=2, channels_last=True)
    centroids = track_means(feats, d.crop_track, d.num_tracks)
    person, possible = track_people(cams, truth), possible_links(cams, truth)
    print(f"\n{d.num_tracks} tracks, {n} crops, {possible} true cross-camera pairs; torch threads "
          f"{torch.get_num_threads()}\n")
    shares = [float(x) for x in args.shares.split(",")]
    print("| scale_k | " + " | ".join(f"share {x}: links (precision / recall)" for x in shares) + " |")
    print("|---|" + "---|" * len(shares))
    for k in (int(x) for x in args.scale_k.split(",")):
        cells = []
        for share in shares:
            q = pair_quality(pseudo_labels(d, centroids, share, 4, scale_k=k).labels, person, possible)
            cells.append(f"{q['links']} ({q['link_precision']:.0f} % / {q['link_recall']:.0f} %)")
        print(f"| {k} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
