"""Scale of `associate`: time and peak memory for 1k, 10k and 100k tracks over many cameras.

Synthetic clustered features (512-d like OSNet; identities in a 96-d subspace, as real OSNet
features nearly are) with time spans: identities walk through random cameras (5-60 s between
them), about 10 tracks per identity, camera bias added (trackreid.associate.synthetic). Each
measurement runs in its own process, so its peak RSS is its own. The whole association is
timed: k-NN graph (exact up to 20k tracks; above, an exact search in a 64-d PCA projection
whose candidates are re-scored in 512-d), auto threshold, constrained clustering. CPU time
(user + system) is printed beside wall time: on a shared machine it says what an idle one
would take (wall time about CPU time / cores). One row per auto-threshold method (``chance``,
the default, then the earlier ``bayes`` and ``mixture``); all use the same clustering (average
linkage, pairs that are not edges counted at the null median). The baseline
is what PP-Human's MTMCT does: sklearn AgglomerativeClustering on the dense N x N cosine
distance (average linkage, no constraints, at our threshold); it needs O(N^2) memory, so it
runs up to --baseline-max.

    PYTHONPATH=src python benchmarks/associate_scale.py
    PYTHONPATH=src python benchmarks/associate_scale.py --sizes 1000,10000 --cameras 100
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def worker(kind: str, n: int, cameras: int, dim: int, threshold: float | None,
           method: str = "chance") -> dict[str, object]:
    from sklearn.metrics import adjusted_rand_score

    from trackreid.associate.cluster import cluster_graph
    from trackreid.associate.constraints import Constraints
    from trackreid.associate.graph import build_graph
    from trackreid.associate.synthetic import synthetic_tracks
    from trackreid.associate.threshold import auto_threshold

    ts, identity = synthetic_tracks(n, cameras, dim=dim, rank=96, seed=1)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    u0 = resource.getrusage(resource.RUSAGE_SELF)
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    if kind == "ours":
        cons = Constraints(ts)
        graph = build_graph(ts, 20)
        phases["graph"] = time.perf_counter() - t0
        t = time.perf_counter()
        thr, _ = auto_threshold(ts, cons, graph, method=method)
        phases["threshold"] = time.perf_counter() - t
        t = time.perf_counter()
        labels = cluster_graph(ts, graph, thr, cons).labels
        phases["cluster"] = time.perf_counter() - t
    else:
        from sklearn.cluster import AgglomerativeClustering

        thr = float(threshold if threshold is not None else 0.5)
        labels = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                         distance_threshold=1.0 - thr).fit_predict(ts.features)
    seconds = time.perf_counter() - t0
    u1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (u1.ru_utime - u0.ru_utime) + (u1.ru_stime - u0.ru_stime)
    peak = u1.ru_maxrss
    return {"kind": kind, "n": n, "cameras": cameras, "dim": dim, "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1),
            "phases": {k: round(v, 1) for k, v in phases.items()}, "threshold": round(float(thr), 3),
            "peak_rss_gb": round(peak / 2**20, 2), "rss_before_gb": round(rss0 / 2**20, 2),
            "identities_found": int(labels.max()) + 1, "identities_true": int(len(np.unique(identity))),
            "ari": round(float(adjusted_rand_score(identity, labels)), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated numbers of tracks")
    ap.add_argument("--cameras", type=int, default=100)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--baseline-max", type=int, default=10000, help="largest N for the dense baseline")
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--threshold", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--methods", default="chance,bayes,mixture",
                    help="auto-threshold methods to run (each one row; the baseline uses the first's threshold)")
    args = ap.parse_args()
    if args.worker:
        kind, _, method = args.worker[0].partition(":")
        print(json.dumps(worker(kind, int(args.worker[1]), args.cameras, args.dim, args.threshold,
                                method or "chance")))
        return
    import os

    print(f"load average at start {os.getloadavg()[0]:.1f}, {len(os.sched_getaffinity(0))} CPUs", file=sys.stderr)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        runs = []
        for method in args.methods.split(","):
            cmd = [sys.executable, __file__, "--worker", f"ours:{method}", str(n), "--cameras", str(args.cameras),
                   "--dim", str(args.dim)]
            runs.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
            runs[-1]["method"] = method
            print(json.dumps(runs[-1]), file=sys.stderr)
        rows += runs
        ours = runs[0]
        if n <= args.baseline_max:
            cmd = [sys.executable, __file__, "--worker", "sklearn-dense", str(n), "--cameras", str(args.cameras),
                   "--dim", str(args.dim), "--threshold", str(ours["threshold"])]
            base = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            rows.append(base)
            print(json.dumps(base), file=sys.stderr)
    print("| tracks | cameras | method | wall time (s) | CPU time (s) | graph / threshold / cluster (s) | "
          "peak RSS (GB) | threshold | identities found / true | ARI |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ph = r["phases"]
        phases = " / ".join(str(ph[k]) for k in ("graph", "threshold", "cluster")) if ph else "-"
        method = (f"ours (sparse k-NN, constrained; auto {r['method']})" if r["kind"] == "ours"
                  else "sklearn dense average linkage")
        print(f"| {r['n']:,} | {r['cameras']} | {method} | {r['seconds']} | {r['cpu_seconds']} | {phases} | "
              f"{r['peak_rss_gb']} | {r['threshold']} | "
              f"{r['identities_found']:,} / {r['identities_true']:,} | {r['ari']} |")


if __name__ == "__main__":
    main()
