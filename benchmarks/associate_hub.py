"""Hubness correction (CSLS) in ``trackreid associate``: IDF1 at the auto and at the oracle threshold.

Uses the sites and features of ``associate_bench.py`` (same ``--work`` folder: composed and
extracted there once, reused here; missing ones are made with the real msmt17 OSNet). For each
site: no correction (the baseline, same run), then each ``--hub-k`` (per camera, as
``associate --hub-k``; ``pooled K``: the graph-edge version ``adapt`` uses), each at the auto
threshold (the default ``chance`` rule on the corrected null) and at the best threshold chosen
with the labels (every distinct threshold tried), all with the default constraints (revisit gap,
motion gate). Hungarian at its oracle threshold for reference.

    python benchmarks/associate_hub.py --work /tmp/assoc_bench --seeds 4                # seeds 0-3
    python benchmarks/associate_hub.py --work /tmp/assoc_bench --seeds 4 --first-seed 4
    python benchmarks/associate_hub.py --work /tmp/assoc_bench --seeds 4 --first-seed 8 --ks 10

Every row uses the default ``--same-camera-margin``; ``--same-camera-margin X`` adds a row with
no hub correction and margin ``X`` instead (``associate --same-camera-margin``: every similarity
of two tracks of ONE camera lowered by ``X``; the null is cross-camera and unchanged, so the
auto cut is the same). ``--same-camera-margin 0`` is the row without it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine
from associate_bench import SITES, Scorer, best_over, ids_from_labels, prepare_sites, run_hungarian

from trackreid.associate.api import SAME_CAMERA_MARGIN, AssociateConfig, build_constraints
from trackreid.associate.cluster import cluster_graph
from trackreid.associate.constraints import Constraints
from trackreid.associate.graph import build_graph
from trackreid.associate.threshold import auto_threshold
from trackreid.associate.tracks import load_cameras

ROOT = Path(__file__).resolve().parents[1]


def measure(tracks: Any, cons: Constraints, score: Scorer, k: int, per_camera: bool,
            margin: float) -> dict[str, float]:
    g = build_graph(tracks, 20, scale_k=k, hub_per_camera=per_camera, same_camera_margin=margin)
    thr, _ = auto_threshold(tracks, cons, g)

    def at(t: float) -> float:
        return float(score(ids_from_labels(tracks, cluster_graph(tracks, g, t, cons, "average").labels))["idf1"])

    sims = np.concatenate([g.sim, [thr, float(g.sim.max()) + 1e-3]])
    cands = np.unique(np.round(sims[sims >= np.quantile(g.sim, 0.5)], 4))
    o_thr, oracle = best_over(cands, at, coarse=len(cands))
    assert g.null is not None
    return {"auto_threshold": thr, "auto": at(thr), "oracle_threshold": o_thr, "oracle": oracle,
            "null_median": g.null[0], "null_sd": g.null[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "associate_bench")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--ks", default="5,10,20", help="per-camera K values (default 5,10,20)")
    ap.add_argument("--pooled", default="10", help="pooled (graph-edge) K values; '' for none (default 10)")
    ap.add_argument("--same-camera-margin", type=float,
                    help="also a row with this --same-camera-margin (no hub correction; default: no row)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print(machine())
    t0 = time.perf_counter()
    prepared = prepare_sites(args.work, SITES, args.first_seed, args.seeds)
    m = SAME_CAMERA_MARGIN
    variants: list[tuple[str, int, bool, float]] = [("no correction (default)", 0, False, m)]
    variants += [(f"--hub-k {k} (per camera)", int(k), True, m) for k in args.ks.split(",") if k]
    variants += [(f"pooled over edges, K {k}", int(k), False, m) for k in args.pooled.split(",") if k]
    if args.same_camera_margin is not None:
        variants.append((f"--same-camera-margin {args.same_camera_margin:g}", 0, False, args.same_camera_margin))
    rows: dict[str, list[dict[str, float]]] = {name: [] for name, _, _, _ in variants}
    hung: list[float] = []
    labels: list[str] = []
    for p in prepared:
        score = Scorer(p)
        tracks, loaded = load_cameras(p.cameras, with_crops=False)
        cons = build_constraints(tracks, loaded, AssociateConfig())  # the default constraints
        hung.append(100 * run_hungarian(tracks, score)[1])
        labels.append(p.label)
        for name, k, per_camera, margin in variants:
            rows[name].append(measure(tracks, cons, score, k, per_camera, margin))
        print(f"  done {p.label} ({time.perf_counter() - t0:.0f} s so far)", flush=True)
    groups = {"all": list(range(len(labels))),
              **{g: [i for i, lab in enumerate(labels) if lab.startswith(g)] for g in SITES}}
    print("\nIDF1 (%) at the auto threshold / at the oracle threshold (gap), means; Hungarian oracle for reference\n")
    print("| variant | " + " | ".join(groups) + " | auto per site |")
    print("|---|" + "---|" * len(groups) + "---|")
    print("| Hungarian, oracle threshold | " + " | ".join(f"{np.mean([hung[i] for i in ix]):.1f}"
                                                         for ix in groups.values()) + " | |")
    for name, vals in rows.items():
        a = np.array([100 * v["auto"] for v in vals])
        o = np.array([100 * v["oracle"] for v in vals])
        cells = [f"{a[ix].mean():.1f} / {o[ix].mean():.1f} ({(o[ix] - a[ix]).mean():.2f})" for ix in groups.values()]
        print(f"| {name} | " + " | ".join(cells) + " | " + ", ".join(f"{x:.1f}" for x in a) + " |")
    print("\nper site: auto threshold (null median, sd) / oracle threshold")
    for name, vals in rows.items():
        print(f"  {name}: " + "; ".join(f"{v['auto_threshold']:.3f} ({v['null_median']:.3f}, {v['null_sd']:.3f}) / "
                                        f"{v['oracle_threshold']:.3f}" for v in vals))
    print(f"\nsites: {', '.join(labels)}\ntotal {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"sites": labels, "hungarian": hung, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
