"""``trackreid demo``: draw a small two-camera site and run ``trackreid run`` on it, end to end."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from pathlib import Path

NAME = "demo"
HELP = "draw a two-camera synthetic site and run `trackreid run` on it (extract + associate, no downloads)"
DESCRIPTION = """\
Draws two synthetic cameras (18 s each) that share some of 8 walking people, with their
tracker-like tracks and exact ground truth, then runs `trackreid run` on the site: every
camera extracted, then associated into global identities. Prints each camera's extraction
summary, the association summary and how many people it found against the truth.

Weights, in this order: --reid-model; the shared test weights
($TRACKREID_DATA/weights/osnet_x0_25_msmt17.pth or ../shared/data/...); a zoo model you
downloaded with `trackreid models download`. With none of them the demo still runs, with an
untrained network, and says plainly that its features mean nothing.

Example:
  trackreid demo --output-dir runs/demo --overwrite
"""

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-dir", default="runs/demo", help="where to write the site and the outputs")
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


def _untrained(path: Path) -> Path:
    """An untrained osnet_x0_25 saved as our safetensors checkpoint (so workers load it like any weights)."""
    import torch

    from trackreid.models.registry import create_model
    from trackreid.models.weights import save_checkpoint

    torch.manual_seed(0)
    save_checkpoint(create_model("osnet_x0_25").eval(), "osnet_x0_25", path)
    return path


def _truth_score(truth: dict[str, dict[int, int]], global_ids: dict[str, dict[int, int]]) -> str:
    """Pairs of tracks (any cameras) put together rightly / wrongly, against the drawn truth."""
    rows = [(truth[c][t], g) for c, ids in global_ids.items() for t, g in ids.items() if t in truth.get(c, {})]
    same_p = same_g = both = 0
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            p, g = rows[i][0] == rows[j][0], rows[i][1] == rows[j][1]
            same_p += p
            same_g += g
            both += p and g
    precision = both / same_g if same_g else 1.0
    recall = both / same_p if same_p else 1.0
    people = len({p for p, _ in rows})
    found = len({g for _, g in rows})
    return (f"people drawn: {people}; global identities found: {found}; pairs of tracks linked rightly: "
            f"precision {precision:.2f}, recall {recall:.2f}")


def run(args: argparse.Namespace) -> int:
    from trackreid.cli.extract import summary
    from trackreid.cli.progress import make_progress
    from trackreid.cli.run import SiteProgress
    from trackreid.run import read_site, run_site
    from trackreid.synth import SiteSpec, drawn_people, make_site

    out = Path(args.output_dir)
    if args.overwrite and out.exists():
        for sub in ("site", "run", "untrained_osnet_x0_25.safetensors"):
            p = out / sub
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    synth = make_site(out / "site", SiteSpec(cameras=2, identities=8, shared_fraction=0.6, seconds=18.0, fps=10,
                                             width=640, height=360, seed=0), drawn_people(8))
    print(f"site: {synth.site_yml} ({', '.join(f'{c.name}: {c.video.name}' for c in synth.cameras)})")
    weights = Path(args.reid_model) if args.reid_model else find_weights()
    pretrained = weights is not None
    if weights is None:
        print(
            "NO PRETRAINED WEIGHTS FOUND. Running with an UNTRAINED osnet_x0_25: the pipeline runs end to end,\n"
            "but the features it writes are meaningless for re-identification. To get real weights:\n"
            "  trackreid models download osnet_x0_25_msmt17   (or put the .pth file in ~/.cache/trackreid)\n"
            "  trackreid demo --reid-model path/to/osnet.pth"
        )
        out.mkdir(parents=True, exist_ok=True)
        weights = _untrained(out / "untrained_osnet_x0_25.safetensors")
    # an untrained network runs on eager torch: exporting it to ONNX would cost more than the demo
    # crops saved: the first report.html a newcomer opens shows each identity's pictures
    site = read_site(synth.site_yml, reid_model=str(weights), device=args.device,
                     backend=None if pretrained else "torch", save_crops=True)
    progress = make_progress(args.quiet)
    command = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    command["pretrained"] = pretrained
    try:
        result = run_site(site, out / "run", workers=2, on_event=SiteProgress(progress), command=command)
    finally:
        progress.finish()
    for name, cam in result.cameras.items():
        print(f"\ncamera {name}")
        print(summary(cam))
    assoc = result.report["associate"]
    print(f"\nASSOCIATION ({assoc.get('status')}): {out / 'run' / 'associate'} (open report.html in a browser)")
    for k in ("tracks", "identities", "identities_multi_camera", "cross_camera_links"):
        if k in assoc:
            print(f"  {k.replace('_', ' ')}: {assoc[k]}")
    if result.association is not None:
        info = result.association.threshold_info
        print(f"  threshold: {result.association.threshold:.3f} ({info.get('method', info.get('chosen', ''))})")
    if result.association is not None:
        print("  " + _truth_score(synth.truth, result.association.global_ids))
    for f in result.report["failures"]:
        print(f"FAILED {f['camera']}: {f['error']}")
    if not pretrained:
        print("Reminder: these features come from an UNTRAINED network and are not meaningful.")
    return 0 if result.ok else 1
