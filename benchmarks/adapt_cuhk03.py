"""Label-free adaptation on CUHK03: adapt osnet_x0_25_msmt17.pth to CUHK03 train, score CUHK03 val.

    nice -n 5 python benchmarks/adapt_cuhk03.py [--modes bn,within,full] [--max-minutes 30] \
        [--rounds 6] [--iters-per-round 150] [--threads 2]

CUHK03 train (7,239 crops, 743 people, cameras A and B) is turned into two unlabelled extract
outputs (--work/cameras/camA, camB): each (person, camera) group becomes one track of its
camera, under a track id drawn at random per camera, its crops copied to
crops/track_NNNN/frame_000000_00K.jpg, and track_metadata.json lists the tracks. Nothing in
these folders carries the identity (names and ids are shuffled); the identity of each track
is kept apart in --work/truth.json, which this script uses only to report how good the pseudo
links were after the fact. Every track of a camera is given the same time span: CUHK03 shows
each person once per camera, which a deployment would express as time overlap (two
tracks of one camera at the same time are two people), so same-camera links are forbidden.

Then `trackreid.adapt.adapt` runs once per mode (bn: batch-norm statistics only; within:
per-camera track classes; full: + cross-camera pseudo links), and each adapted model is
scored on CUHK03 val (100 other people, query camera A, gallery camera B) with
`trackreid.evaluate.evaluate_model`, the code behind `trackreid evaluate`. The pretrained
weights are scored in the same run as the baseline.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from trackreid.adapt import AdaptSettings, adapt  # noqa: E402
from trackreid.datasets import cuhk03_query_gallery, read_image_set  # noqa: E402
from trackreid.evaluate import evaluate_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def build_cameras(data: Path, work: Path, seed: int = 0) -> tuple[list[Path], dict[str, dict[int, int]]]:
    """Two extract-like folders (camA, camB) of shuffled, unlabelled tracks; returns them and the truth."""
    cams = [work / "cameras" / "camA", work / "cameras" / "camB"]
    truth_path = work / "truth.json"
    if truth_path.is_file() and all((c / "track_metadata.json").is_file() for c in cams):
        truth = json.loads(truth_path.read_text())
        return cams, {c: {int(k): v for k, v in t.items()} for c, t in truth.items()}
    s = read_image_set(data / "cuhk03" / "train", "cuhk03")
    groups: dict[tuple[int, int], list[Path]] = {}
    for p, pid, cam in zip(s.paths, s.pids, s.camids, strict=True):
        groups.setdefault((int(cam), int(pid)), []).append(p)
    rng = np.random.default_rng(seed)
    truth: dict[str, dict[int, int]] = {}
    for c, folder in enumerate(cams):
        if folder.exists():
            shutil.rmtree(folder)
        keys = sorted(k for k in groups if k[0] == sorted({k[0] for k in groups})[c])
        ids = rng.permutation(len(keys)) + 1
        tracks = {}
        truth[folder.name] = {}
        for key, tid in zip(keys, ids, strict=True):
            tdir = folder / "crops" / f"track_{tid:04d}"
            tdir.mkdir(parents=True)
            rels = []
            for n, src in enumerate(sorted(groups[key])):
                rel = f"crops/track_{tid:04d}/frame_000000_{n:03d}.jpg"
                shutil.copyfile(src, folder / rel)
                rels.append(rel)
            tracks[str(int(tid))] = {"num_frames": 1, "first_frame": 0, "last_frame": 0, "frame_indices": [0],
                                     "num_crops": len(rels), "crops": rels}
            truth[folder.name][int(tid)] = key[1]
        meta = {"tool": {"name": "benchmarks/adapt_cuhk03.py"}, "video": {"fps": 1.0},
                "num_tracks": len(tracks), "tracks": dict(sorted(tracks.items(), key=lambda kv: int(kv[0])))}
        (folder / "track_metadata.json").write_text(json.dumps(meta))
    truth_path.write_text(json.dumps(truth))
    return cams, truth


def track_people(cams: list[Path], truth: dict[str, dict[int, int]]) -> np.ndarray:
    """The hidden person of every track, in adapt's track order (for scoring only)."""
    from trackreid.adapt.data import read_tracks

    d = read_tracks(cams)
    return np.array([truth[d.cameras[c]][int(t)] for c, t in zip(d.track_camera, d.track_id, strict=True)])


def pair_quality(labels: np.ndarray, person: np.ndarray, possible: int) -> dict[str, float]:
    """Linked track pairs of ``labels``: how many, the share that are one person, the share of ``possible`` found."""
    tp = fp = 0
    for lab in np.unique(labels):
        m = np.flatnonzero(labels == lab)
        same = person[m][:, None] == person[m][None, :]
        pairs = len(m) * (len(m) - 1) // 2
        right = int(np.triu(same, 1).sum())
        tp, fp = tp + right, fp + pairs - right
    return {"links": tp + fp, "link_precision": 100 * tp / max(1, tp + fp), "link_recall": 100 * tp / max(1, possible)}


def possible_links(cams: list[Path], truth: dict[str, dict[int, int]]) -> int:
    return len(set(truth[cams[0].name].values()) & set(truth[cams[1].name].values()))


def link_quality(run_dir: Path, cams: list[Path], truth: dict[str, dict[int, int]]) -> dict[str, float]:
    """Precision / recall of the last round's cross-camera links (labels used here only, for the report)."""
    import torch

    ck = torch.load(run_dir / "model_adapted.pth", weights_only=True)
    labels = ck.get("labels")
    if labels is None:
        return {}
    return pair_quality(labels.numpy(), track_people(cams, truth), possible_links(cams, truth))


def use_true_links(cams: list[Path], truth: dict[str, dict[int, int]]) -> None:
    """Diagnostic only: every round's pseudo identities become the true people (a ceiling, not adaptation)."""
    from trackreid.adapt import loop

    labels = np.unique(track_people(cams, truth), return_inverse=True)[1].astype(np.int64)

    def pseudo(self: loop._Run, centroids: np.ndarray) -> tuple[np.ndarray, dict[str, object]]:
        return labels.copy(), {"share": 1.0, "oracle": True}

    loop._Run.pseudo = pseudo  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "adapt_cuhk03")
    ap.add_argument("--modes", default="bn,within,full")
    ap.add_argument("--max-minutes", type=float, default=30.0, help="budget per adapt run")
    ap.add_argument("--rounds", type=int, default=AdaptSettings.rounds)
    ap.add_argument("--iters-per-round", type=int, default=AdaptSettings.iters_per_round)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--oracle-links", action="store_true",
                    help="diagnostic ceiling: replace the pseudo links by the TRUE cross-camera links (uses labels)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="other AdaptSettings fields")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    pretrained = args.data / "weights" / "osnet_x0_25_msmt17.pth"
    cams, truth = build_cameras(args.data, args.work)
    q, g = cuhk03_query_gallery(args.data / "cuhk03" / "val")

    def score(weights: Path) -> dict[str, float]:
        r = evaluate_model(weights, q, g, device="cpu", backend="torch")
        return {"mAP": r.metrics.mAP, "rank1": r.metrics.rank1}

    load0 = os.getloadavg()[0]
    rows = [{"run": "pretrained osnet_x0_25_msmt17.pth", **score(pretrained), "minutes": 0.0}]
    print(f"pretrained: mAP {rows[0]['mAP']:.1f} rank-1 {rows[0]['rank1']:.1f}", flush=True)
    extra = {}
    for kv in args.set:
        k, v = kv.split("=", 1)
        extra[k] = type(getattr(AdaptSettings(), k))(v) if getattr(AdaptSettings(), k) is not None else float(v)
    if args.oracle_links:
        use_true_links(cams, truth)
    for mode in args.modes.split(","):
        s = AdaptSettings(mode=mode, rounds=args.rounds, iters_per_round=args.iters_per_round,
                          max_minutes=args.max_minutes, seed=args.seed, **extra)
        out = args.work / f"run_{mode}"
        t0 = time.perf_counter()
        res = adapt(cams, pretrained, out, s, overwrite=True)
        minutes = (time.perf_counter() - t0) / 60
        row = {"run": f"adapt --mode {mode}", **score(res.model), "minutes": minutes, "rounds": res.rounds_done,
               "stop": res.stop_reason, **link_quality(out, cams, truth)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (args.work / "result.json").write_text(json.dumps({"rows": rows, "settings": vars(args) | {
        "data": str(args.data), "work": str(args.work)}, "load_average_start": load0,
        "threads": torch.get_num_threads()}, indent=2, default=str))
    print(f"\nload average at start {load0:.1f}, end {os.getloadavg()[0]:.1f}; torch threads "
          f"{torch.get_num_threads()}\n")
    print("| run | CUHK03-val mAP | rank-1 | wall minutes | rounds | stop | links (precision / recall) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        links = (f"{r['links']} ({r['link_precision']:.0f}% / {r['link_recall']:.0f}%)" if r.get("links") else "-")
        print(f"| {r['run']} | {r['mAP']:.1f} | {r['rank1']:.1f} | {r['minutes']:.1f} | {r.get('rounds', '-')} | "
              f"{r.get('stop', '-')} | {links} |")


if __name__ == "__main__":
    main()
