"""Which label-free signal follows the true cross-camera mAP of adapt's rounds, and what choosing on it keeps.

    nice -n 5 python benchmarks/adapt_guard.py [--sizes 10,40,120,300] [--weights msmt17,market1501] \
        [--seeds 0,1] [--rounds 3] [--iters-per-round 50] [--holdout 0.25]

Each run is a two-camera site cut from CUHK03 train (SIZE people seen by both cameras: one
track per person and camera, its 5 crops, track ids shuffled, every track of a camera at the
same moment as in benchmarks/adapt_cuhk03.py). A share of the tracks is held out from training
per camera (:func:`holdout` below); adapt runs on the rest. Before
adapting, after the batch-norm re-estimation (round 0) and after every round, the model is
scored twice:

* with the labels (this script only): cross-camera track retrieval mAP over every track of the
  site (query camera A track means, gallery camera B track means; each query has one match);
* without labels, on the held-out tracks, the candidate signals (:func:`signals` below):
  split retrieval (a track's early crops find its own late crops among every held-out track's:
  mean reciprocal rank, top-1), the known-negative margin (early-late similarity minus the
  highest similarity to a track of the same camera at the same moment, certainly another
  person) and the cross-camera mutual-nearest-neighbour share.

Printed: one row per run and round; then, per signal, the Spearman rank correlation with the
true mAP within each run (mean over runs) and of the changes from the start over all runs,
and what choosing the best round by that signal would keep (the start model when no round
beats it, ties to the earlier): how many runs would end below their start by more than 0.5
mAP, the mean kept change, and the mean change of adapt's last round (what adapt writes).
Results and what they mean for adapt: docs/adapt.md, "When adapt helps: measured on site size".
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from trackreid.adapt import AdaptSettings, adapt  # noqa: E402
from trackreid.adapt.data import TrackCrops, read_tracks, track_means  # noqa: E402
from trackreid.datasets import ImageSet, read_image_set  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIGNALS = ("split_mrr", "split_top1", "negative_margin", "mutual_share")

# ----------------------------------------------------------------------------- the candidate signals

#: A held-out track needs this many crops (an early and a late half of at least 2 each).
MIN_CROPS = 4
#: Fewer held-out tracks than this give no signal (too noisy to choose a model on).
MIN_TRACKS = 8


def subset(data: TrackCrops, keep: np.ndarray) -> TrackCrops:
    """The tracks where ``keep`` (bool per track) is True, with their crops, re-indexed."""
    new_index = np.full(data.num_tracks, -1, np.int64)
    new_index[keep] = np.arange(int(keep.sum()))
    crop_keep = keep[data.crop_track]
    return replace(data, paths=[p for p, k in zip(data.paths, crop_keep.tolist(), strict=True) if k],
                   crop_track=new_index[data.crop_track[crop_keep]], track_camera=data.track_camera[keep],
                   track_id=data.track_id[keep], start=data.start[keep], end=data.end[keep])


def holdout(data: TrackCrops, share: float, seed: int) -> tuple[TrackCrops, TrackCrops | None]:
    """(tracks to train on, held-out tracks or None): per camera, ``share`` of its tracks with :data:`MIN_CROPS`
    crops or more (at least :data:`MIN_TRACKS` over all cameras, at most half of each camera's), drawn with
    ``seed``; None when that holds out fewer than :data:`MIN_TRACKS` or ``share`` is 0."""
    counts = np.bincount(data.crop_track, minlength=data.num_tracks)
    rng = np.random.default_rng(seed)
    held = np.zeros(data.num_tracks, bool)
    floor = -(-MIN_TRACKS // max(1, len(data.cameras)))
    for c in range(len(data.cameras)):
        eligible = np.flatnonzero((data.track_camera == c) & (counts >= MIN_CROPS))
        take = min(max(int(round(share * len(eligible))), floor), len(eligible) // 2)
        held[rng.permutation(eligible)[:take]] = True
    if share <= 0 or held.sum() < MIN_TRACKS or (~held).sum() < 2:
        return data, None
    return subset(data, ~held), subset(data, held)


def halves(data: TrackCrops) -> tuple[np.ndarray, np.ndarray]:
    """Per crop: 0 for the early half of its track, 1 for the late half (crops are in track order)."""
    half = np.zeros(len(data.crop_track), np.int64)
    for t in range(data.num_tracks):
        rows = np.flatnonzero(data.crop_track == t)
        half[rows[len(rows) // 2:]] = 1
    return half, np.bincount(data.crop_track, minlength=data.num_tracks)


def signals(features: np.ndarray, data: TrackCrops) -> dict[str, float]:
    """The candidate label-free signals from the held-out crops' features
    (rows as ``data.paths``)."""
    half, _ = halves(data)
    n = data.num_tracks
    early = track_means(features[half == 0], data.crop_track[half == 0], n).astype(np.float64)
    late = track_means(features[half == 1], data.crop_track[half == 1], n).astype(np.float64)
    sim = early @ late.T
    own = np.diag(sim)
    rank = 1 + (sim > own[:, None]).sum(axis=1)
    out = {"split_mrr": float(100 * np.mean(1.0 / rank)), "split_top1": float(100 * np.mean(rank == 1))}
    cam, start, end = data.track_camera, data.start, data.end
    negative = (cam[:, None] == cam[None, :]) & (start[:, None] <= end[None, :]) & (start[None, :] <= end[:, None])
    np.fill_diagonal(negative, False)
    has = negative.any(axis=1)
    if has.any():
        hardest = np.where(negative, sim, -np.inf).max(axis=1)
        out["negative_margin"] = float(np.mean(own[has] - hardest[has]))
    whole = track_means(features, data.crop_track, n).astype(np.float64)
    other = cam[:, None] != cam[None, :]
    if other.any(axis=1).all():
        s = np.where(other, whole @ whole.T, -np.inf)
        nn = s.argmax(axis=1)
        out["mutual_share"] = float(100 * np.mean(nn[nn] == np.arange(n)))
    return out


# ----------------------------------------------------------------------------- the runs


def write_site(data: Path, folder: Path, people: int, seed: int) -> dict[str, dict[int, int]]:
    """camA/camB extract-like folders of ``people`` CUHK03-train people; returns camera -> track id -> person."""
    s = read_image_set(data / "cuhk03" / "train", "cuhk03")
    groups: dict[tuple[int, int], list[Path]] = {}
    for p, pid, cam in zip(s.paths, s.pids, s.camids, strict=True):
        groups.setdefault((int(cam), int(pid)), []).append(p)
    cams = sorted({k[0] for k in groups})
    both = sorted(set.intersection(*({k[1] for k in groups if k[0] == c} for c in cams)))
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.permutation(both)[:people].tolist())
    truth: dict[str, dict[int, int]] = {}
    if folder.exists():
        shutil.rmtree(folder)
    for c, name in zip(cams, ("camA", "camB"), strict=True):
        out = folder / name
        ids = rng.permutation(len(chosen)) + 1
        tracks = {}
        truth[name] = {}
        for person, tid in zip(chosen, ids, strict=True):
            rels = []
            for n, src in enumerate(sorted(groups[(c, person)])):
                rel = f"crops/track_{tid:04d}/frame_000000_{n:03d}.jpg"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                os.link(src, out / rel) if _same_device(src, out) else shutil.copyfile(src, out / rel)
                rels.append(rel)
            tracks[str(int(tid))] = {"num_frames": 1, "first_frame": 0, "last_frame": 0, "num_crops": len(rels),
                                     "crops": rels}
            truth[name][int(tid)] = person
        (out / "track_metadata.json").write_text(json.dumps({"video": {"fps": 1.0}, "tracks": tracks}))
    return truth


def _same_device(a: Path, b: Path) -> bool:
    b.mkdir(parents=True, exist_ok=True)
    return os.stat(a).st_dev == os.stat(b).st_dev


def write_subset(data: TrackCrops, folder: Path) -> list[Path]:
    """The tracks of ``data`` as extract-like folders (one per camera), crops linked from their files."""
    if folder.exists():
        shutil.rmtree(folder)
    dirs = []
    for c, name in enumerate(data.cameras):
        out = folder / name
        out.mkdir(parents=True)
        tracks = {}
        for t in np.flatnonzero(data.track_camera == c):
            rels = []
            for n, i in enumerate(np.flatnonzero(data.crop_track == t)):
                rel = f"crops/track_{data.track_id[t]:04d}/frame_000000_{n:03d}.jpg"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(data.paths[i], out / rel)
                rels.append(rel)
            tracks[str(int(data.track_id[t]))] = {"num_frames": 1, "first_frame": 0, "last_frame": 0,
                                                  "num_crops": len(rels), "crops": rels}
        (out / "track_metadata.json").write_text(json.dumps({"video": {"fps": 1.0}, "tracks": tracks}))
        dirs.append(out)
    return dirs


def embed(weights: Path, paths: list[Path]) -> np.ndarray:
    import torch

    from trackreid.models.weights import load_model
    from trackreid.train.evaluation import embed_images

    loaded = load_model(weights)
    n = len(paths)
    return embed_images(loaded.model, ImageSet(paths, np.zeros(n, np.int64), np.zeros(n, np.int64)),
                        loaded.preprocess, torch.device("cpu"), 64, workers=1)


def cross_camera_map(features: np.ndarray, site: TrackCrops, person: np.ndarray) -> float:
    """Track retrieval with the labels: camera-0 track means as queries, camera-1 track means as the gallery."""
    means = track_means(features, site.crop_track, site.num_tracks).astype(np.float64)
    q, g = np.flatnonzero(site.track_camera == 0), np.flatnonzero(site.track_camera == 1)
    sim = means[q] @ means[g].T
    aps = []
    for i, row in enumerate(sim):
        match = person[g] == person[q[i]]
        if not match.any():
            continue
        order = np.argsort(-row, kind="stable")
        hits = match[order]
        ranks = np.flatnonzero(hits) + 1
        aps.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
    return float(100 * np.mean(aps))


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "adapt_guard")
    ap.add_argument("--sizes", default="10,40,120,300", help="people per site (each seen by both cameras)")
    ap.add_argument("--weights", default="msmt17,market1501")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters-per-round", type=int, default=50)
    ap.add_argument("--holdout", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--summarise", type=Path, metavar="ROWS_JSON", help="only print the summary of a saved rows.json")
    args = ap.parse_args()
    if args.summarise:
        summarise(json.loads(args.summarise.read_text()))
        return
    logging.basicConfig(level=logging.WARNING)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    t_all = time.perf_counter()
    rows: list[dict] = []
    print("| weights | people | seed | round | true mAP | " + " | ".join(SIGNALS) + " |", flush=True)
    print("|---" * (5 + len(SIGNALS)) + "|", flush=True)
    for wname in args.weights.split(","):
        weights = args.data / "weights" / f"osnet_x0_25_{wname}.pth"
        for size in (int(x) for x in args.sizes.split(",")):
            for seed in (int(x) for x in args.seeds.split(",")):
                run = args.work / f"{wname}_{size}_{seed}"
                truth = write_site(args.data, run / "site", size, seed)
                site = read_tracks([run / "site" / "camA", run / "site" / "camB"])
                person = np.array([truth[site.cameras[c]][int(t)]
                                   for c, t in zip(site.track_camera, site.track_id, strict=True)])
                train, held = holdout(site, args.holdout, seed)
                if held is None:
                    print(f"{wname} {size} {seed}: too few tracks to hold out; skipped", flush=True)
                    continue
                dirs = write_subset(train, run / "train")

                def score(model: Path, rnd: int, wname: str = wname, size: int = size, seed: int = seed,
                          held: TrackCrops = held, site: TrackCrops = site, person: np.ndarray = person) -> None:
                    row = {"weights": wname, "people": size, "seed": seed, "round": rnd,
                           "true_map": cross_camera_map(embed(model, site.paths), site, person),
                           **signals(embed(model, held.paths), held)}
                    rows.append(row)
                    print(f"| {wname} | {size} | {seed} | {'start' if rnd < 0 else rnd} | {row['true_map']:.1f} | "
                          + " | ".join(f"{row.get(k, float('nan')):.3f}" for k in SIGNALS) + " |", flush=True)

                score(weights, -1)
                s = AdaptSettings(mode="full", rounds=args.rounds, iters_per_round=args.iters_per_round, seed=seed)
                out = run / "adapt"
                adapt(dirs, weights, out, s, overwrite=True,
                      on_round=lambda r, out=out, score=score: score(out / "model_adapted.pth", int(r["round"])))
    (args.work).mkdir(parents=True, exist_ok=True)
    (args.work / "rows.json").write_text(json.dumps(rows, indent=1))
    summarise(rows)
    print(f"\n{len(rows)} scored models in {(time.perf_counter() - t_all) / 60:.1f} min; load average at start "
          f"{load0:.1f}, end {os.getloadavg()[0]:.1f}; torch threads {torch.get_num_threads()}")


def summarise(rows: list[dict]) -> None:
    runs: dict[tuple, list[dict]] = {}
    for r in rows:
        runs.setdefault((r["weights"], r["people"], r["seed"]), []).append(r)
    print("\n| signal | within-run Spearman (mean) | Spearman of changes from start | runs kept below start - 0.5 "
          "| mean kept change | mean last-round change |")
    print("|---|---|---|---|---|---|")
    for sig in SIGNALS:
        within, d_sig, d_map, kept, last, worse = [], [], [], [], [], 0
        for rs in runs.values():
            rs = sorted(rs, key=lambda r: r["round"])
            vals = [r.get(sig, float("nan")) for r in rs]
            if any(v != v for v in vals):
                continue
            within.append(spearman(vals, [r["true_map"] for r in rs]))
            start = rs[0]
            d_sig += [v - vals[0] for v in vals[1:]]
            d_map += [r["true_map"] - start["true_map"] for r in rs[1:]]
            best = max(range(len(rs)), key=lambda i: (vals[i], -i))
            change = rs[best]["true_map"] - start["true_map"]
            kept.append(change)
            last.append(rs[-1]["true_map"] - start["true_map"])
            worse += change < -0.5
        if not kept:
            continue
        w = [x for x in within if x == x]
        print(f"| {sig} | {np.mean(w) if w else float('nan'):.2f} | {spearman(d_sig, d_map):.2f} | "
              f"{worse} of {len(kept)} | {np.mean(kept):+.1f} | {np.mean(last):+.1f} |")


if __name__ == "__main__":
    main()
