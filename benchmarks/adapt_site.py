"""Transductive adaptation: a two-camera clip of CUHK03-val people, before and after `adapt` on its own crops.

    nice -n 5 python benchmarks/adapt_site.py [--identities 40] [--rounds 3] [--iters-per-round 40]

1. `trackreid.synth.make_site` composes the clip (real CUHK03-val crops walking over two
   cameras, view A in cam1, view B in cam2, tracker-like jittered boxes, exact ground truth);
2. extract with osnet_x0_25_msmt17.pth and --save-crops, one output per camera;
3. cross-camera track retrieval (query: cam1 tracks, gallery: cam2 tracks, the extract's
   per-track features, cosine; tracks whose person is not in cam2 are skipped) and the
   association's IDF1 (`trackreid.associate` with its automatic threshold, scored by
   `trackreid.associate.mtmc.evaluate_assignment` against the site's gt.txt files);
4. `trackreid.adapt.adapt` on the two extract outputs (no labels: site.truth is used only in 3/5);
5. extract again with model_adapted.pth and score again.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from trackreid.adapt import AdaptSettings, adapt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def extract_site(site, weights: Path, out: Path) -> list[Path]:  # type: ignore[no-untyped-def]
    from trackreid.embed.factory import build_embedder
    from trackreid.extract import ExtractConfig, extract

    emb = build_embedder(weights, device="cpu", backend="torch", batch_size=32)
    folders = []
    for cam in site.cameras:
        folder = out / cam.name
        extract(cam.video, cam.tracks, emb, folder, ExtractConfig(save_crops=True, overwrite=True))
        folders.append(folder)
    return folders


def score(site, folders: list[Path]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from trackreid.associate import CameraInput, associate
    from trackreid.associate.mtmc import evaluate_assignment
    from trackreid.evaluate import cosine_distance, evaluate_ranking
    from trackreid.io.features import read_features

    feats = [read_features(f) for f in folders]
    names = [c.name for c in site.cameras]
    pids = [np.array([site.truth[n].get(int(t), -1) for t in tf.track_ids]) for n, tf in zip(names, feats, strict=True)]
    m = evaluate_ranking(cosine_distance(feats[0].features, feats[1].features), pids[0], pids[1],
                         np.zeros(len(pids[0])), np.ones(len(pids[1])))
    cams = [CameraInput(c.name, f, fps=c.fps, time_offset=c.time_offset, tracks=c.tracks)
            for c, f in zip(site.cameras, folders, strict=True)]
    assoc = associate(cams)
    mt = evaluate_assignment({c.name: c.gt for c in site.cameras}, {c.name: c.tracks for c in site.cameras},
                             assoc.global_ids)
    return {"track_mAP": m.mAP, "track_rank1": m.rank1, "queries": m.num_valid_query, "idf1": 100 * mt["idf1"],
            "threshold": assoc.threshold}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "adapt_site")
    ap.add_argument("--identities", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters-per-round", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from trackreid.synth import SiteSpec, cuhk03_people, make_site

    t0 = time.perf_counter()
    base = args.data / "weights" / "osnet_x0_25_msmt17.pth"
    site = make_site(args.work / "site", SiteSpec(cameras=2, identities=args.identities, seconds=args.seconds,
                                                  seed=args.seed), cuhk03_people(args.data / "cuhk03" / "val"))
    before_dirs = extract_site(site, base, args.work / "before")
    before = score(site, before_dirs)
    print("before:", json.dumps(before), flush=True)
    s = AdaptSettings(rounds=args.rounds, iters_per_round=args.iters_per_round, batch_size=args.batch_size,
                      seed=args.seed, bn_images=3000)
    t1 = time.perf_counter()
    res = adapt(before_dirs, base, args.work / "adapt", s, overwrite=True)
    adapt_min = (time.perf_counter() - t1) / 60
    after = score(site, extract_site(site, res.model, args.work / "after"))
    print("after:", json.dumps(after), flush=True)
    result = {"before": before, "after": after, "adapt_minutes": adapt_min, "data": res.data,
              "rounds": res.rounds_done, "stop": res.stop_reason, "total_minutes": (time.perf_counter() - t0) / 60,
              "args": {k: str(v) for k, v in vars(args).items()}}
    (args.work / "result.json").write_text(json.dumps(result, indent=2))
    print(f"\n{res.data['tracks']} tracks, {res.data['crops']} crops; adapt {adapt_min:.1f} min "
          f"({res.rounds_done} rounds, {res.stop_reason}); load average now {os.getloadavg()[0]:.1f}\n")
    print("| model | cross-camera track mAP | rank-1 | association IDF1 |")
    print("|---|---|---|---|")
    for name, r in (("osnet_x0_25_msmt17.pth (before)", before), ("adapted on this clip (after)", after)):
        print(f"| {name} | {r['track_mAP']:.1f} | {r['track_rank1']:.1f} | {r['idf1']:.1f} |")


if __name__ == "__main__":
    main()
