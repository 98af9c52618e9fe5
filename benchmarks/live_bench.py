"""Live association: how good the live answer is, and how fast it comes.

1. **IDF1** on the synthetic sites of ``associate_bench.py`` (real CUHK03 people pasted on per-camera
   backgrounds, every camera extracted with the real ``osnet_x0_25_msmt17.pth``, scored by
   ``evaluate-mtmc``'s code): offline ``associate`` against the live associator fed the same
   features, spans and motion endpoints one track at a time in the order the tracks end, with a
   revision after every ``R`` tracks (``R = 1``: revisions keep up; larger ``R``: they lag).
   ``live, final`` is the answer after the last track (and its last revision); ``live, first
   assigned`` scores each track's identity as it was first given, before any revision touched it.
2. **Latency** from a track's end to its identity at ``--cameras`` cameras x ``--rate`` tracks per
   camera-minute (synthetic 512-d features of :func:`trackreid.associate.synthetic.synthetic_tracks`)
   replayed at ``--speed`` x real time: a thread releases the tracks in the order they end, as
   Poisson arrivals at cameras x rate per minute x speed, the associator's thread adds each;
   revisions run in their own process (``revise="background"``).
   p50/p99/max over all tracks, with the state file on disk.

    python benchmarks/live_bench.py                  # both parts (about 3 min on 2 busy cores)
    python benchmarks/live_bench.py --no-idf1 --minutes 10
"""

from __future__ import annotations

import argparse
import json
import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine
from associate_bench import SITES, Scorer, prepare_sites

from trackreid.associate import AssociateConfig, associate
from trackreid.associate.api import read_tracks_files
from trackreid.associate.live import LiveAssociator, LiveTrack, _motion_row
from trackreid.associate.synthetic import synthetic_tracks
from trackreid.associate.tracks import load_cameras

ROOT = Path(__file__).resolve().parents[1]


def idf1_part(work: Path, seeds: int, every: list[int]) -> dict[str, Any]:
    config = AssociateConfig()
    rows: dict[str, list[float]] = {"offline associate": []}
    for r in every:
        rows[f"live R={r}, final"] = []
        rows[f"live R={r}, first assigned"] = []
    rows["live R=1, after the revision that includes it"] = []
    labels = []
    for p in prepare_sites(work, SITES, 0, seeds):
        labels.append(p.label)
        score = Scorer(p)
        rows["offline associate"].append(100 * score(associate(p.cameras, config).global_ids)["idf1"])
        tracks, loaded = load_cameras(p.cameras, config.fps, need_seconds=config.time_constraints(),
                                      with_crops=False)
        ep, _ = read_tracks_files(tracks, loaded, config.motion_gate)
        order = np.lexsort((tracks.track_id, tracks.camera, tracks.end))
        for r in every:
            after: dict[str, dict[int, int]] = {c: {} for c in tracks.cameras}
            with LiveAssociator(tracks.cameras, config, revise="every", revise_every=r) as live:
                for i in order.tolist():
                    cam = tracks.cameras[int(tracks.camera[i])]
                    live.add(cam, LiveTrack(int(tracks.track_id[i]), float(tracks.start[i]), float(tracks.end[i]),
                                            tracks.features[i], _motion_row(ep, i) if ep.known[i] else None))
                    after[cam][int(tracks.track_id[i])] = int(live.identity[live.n - 1])
                if r == 1:  # each track's identity once a revision over the tracks so far, itself included, ran
                    rows["live R=1, after the revision that includes it"].append(100 * score(after)["idf1"])
                live.finish()
                rows[f"live R={r}, final"].append(100 * score(live.global_ids())["idf1"])
                rows[f"live R={r}, first assigned"].append(100 * score(live.first_ids())["idf1"])
    print(f"\nIDF1 (%) on the synthetic sites of associate_bench.py ({len(labels)} sites)")
    print(f"{'':48s}" + "".join(f"{lab:>22s}" for lab in labels) + f"{'mean':>8s}")
    for name, vals in rows.items():
        print(f"{name:48s}" + "".join(f"{v:22.1f}" for v in vals) + f"{np.mean(vals):8.1f}")
    return {"sites": labels, "idf1": rows}


def latency_part(cameras: int, rate: float, minutes: float, speed: float, seed: int) -> dict[str, Any]:
    n = int(round(cameras * rate * minutes))
    tracks, _ = synthetic_tracks(n, cameras, dim=512, rank=128, seconds=60.0 * minutes, seed=seed)
    order = np.lexsort((tracks.track_id, tracks.camera, tracks.end))
    # the tracks end in this order at the site's rate: Poisson arrivals of cameras x rate per minute, at `speed`
    per_second = cameras * rate / 60.0 * speed
    arrival = np.cumsum(np.random.default_rng(seed).exponential(1.0 / per_second, n))
    inbox: queue.Queue[tuple[float, int] | None] = queue.Queue()

    def release(t0: float) -> None:
        for k, i in enumerate(order.tolist()):
            due = t0 + float(arrival[k])
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            inbox.put((due, i))
        inbox.put(None)

    lat: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, \
            LiveAssociator(tracks.cameras, AssociateConfig(revisit_gap=None), state=Path(tmp) / "live.sqlite",
                           revise="background") as live:
            t0 = time.perf_counter() + 0.2
            th = threading.Thread(target=release, args=(t0,), daemon=True)
            th.start()
            wall = time.perf_counter()
            while (item := inbox.get()) is not None:
                due, i = item
                live.add(tracks.cameras[int(tracks.camera[i])],
                         LiveTrack(int(tracks.track_id[i]), float(tracks.start[i]), float(tracks.end[i]),
                                   tracks.features[i]))
                lat.append(time.perf_counter() - due)
            wall = time.perf_counter() - wall
            stats = dict(live.stats)
            ids = len(set(live.identity.tolist()))
    a = np.asarray(lat)
    out = {"cameras": cameras, "tracks_per_camera_minute": rate, "site_minutes": minutes, "speed": speed,
           "tracks": n, "arrivals_per_second": round(n / (60.0 * minutes / speed), 1), "wall_seconds": round(wall, 1),
           "latency_ms": {"p50": round(1000 * float(np.percentile(a, 50)), 2),
                          "p99": round(1000 * float(np.percentile(a, 99)), 2), "max": round(1000 * float(a.max()), 2)},
           "identities": ids, "associator": stats}
    print(f"\nLatency from a track's end to its identity: {cameras} cameras x {rate:g} tracks/camera-minute, "
          f"{minutes:g} site minutes ({n} tracks) at {speed:g}x ({out['arrivals_per_second']} tracks/s)")
    print(f"  p50 {out['latency_ms']['p50']:.1f} ms, p99 {out['latency_ms']['p99']:.1f} ms, "
          f"max {out['latency_ms']['max']:.1f} ms; {stats['revisions']} background revisions "
          f"({stats['revision_seconds']:.1f} s of revision work), wall {wall:.1f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "associate_bench",
                    help="where the synthetic sites are composed and extracted (shared with associate_bench.py)")
    ap.add_argument("--seeds", type=int, default=2, help="sites per camera count (default 2)")
    ap.add_argument("--every", default="1,10", help="revision after every R tracks, comma-separated (default 1,10)")
    ap.add_argument("--cameras", type=int, default=100)
    ap.add_argument("--rate", type=float, default=10.0, help="tracks per camera-minute (default 10)")
    ap.add_argument("--minutes", type=float, default=5.0, help="site minutes replayed (default 5)")
    ap.add_argument("--speed", type=float, default=10.0, help="x real time (default 10)")
    ap.add_argument("--no-idf1", action="store_true")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--json", type=Path, help="also write every number to this file")
    args = ap.parse_args()
    print(machine())
    result: dict[str, Any] = {"machine": machine()}
    if not args.no_idf1:
        result["idf1"] = idf1_part(args.work, args.seeds, [int(x) for x in args.every.split(",")])
    if not args.no_latency:
        result["latency"] = latency_part(args.cameras, args.rate, args.minutes, args.speed, 0)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
