"""Scale of `associate`: time and peak memory from 100k to 1.44M tracks over 100 cameras (a whole day of a site).

Synthetic clustered features (512-d like OSNet; identities in a 96-d subspace, as real OSNet
features nearly are) with time spans: identities walk through random cameras (5-60 s between
them), about 10 tracks per identity, camera bias added (trackreid.associate.synthetic). The
density is fixed (``--rate``, tracks per camera-hour; default 600, docs/scale.md's busy camera,
14,400 a day): more tracks are a longer stretch of time, and 1.44M tracks of 100 cameras are one
day. Each measurement runs in its own process, so its peak RSS is its own (after the synthetic
tracks are made: ``rss_before_gb``). The whole association is timed: k-NN graph, auto threshold,
constrained clustering. CPU time (user + system) is printed beside wall time: on a shared
machine it says what an idle one would take (wall time about CPU time / cores).

Rows: ``sharded`` is ``associate --window`` (each track compared with the tracks within
``--window`` seconds, searched in time shards: trackreid.associate.shards); ``all pairs`` is
the search over every pair (exact up to 20k tracks; above, an exact search in a 64-d PCA
projection whose candidates are re-scored in 512-d), run up to ``--all-pairs-max`` tracks; where
both run, ``agreement`` is the adjusted Rand index between their identities. ARI is against the
generator's identities. The baseline is what PP-Human's MTMCT does: sklearn
AgglomerativeClustering on the dense N x N cosine distance (average linkage, no constraints, at
our threshold); it needs O(N^2) memory, so it runs up to --baseline-max.

    PYTHONPATH=src python benchmarks/associate_scale.py
    PYTHONPATH=src python benchmarks/associate_scale.py --sizes 1000,10000 --baseline-max 10000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def worker(kind: str, n: int, cameras: int, dim: int, threshold: float | None, method: str, rate: float,
           window: float, labels_out: str | None) -> dict[str, object]:
    from sklearn.metrics import adjusted_rand_score

    from trackreid.associate.cluster import cluster_graph
    from trackreid.associate.constraints import Constraints
    from trackreid.associate.graph import build_graph
    from trackreid.associate.synthetic import synthetic_tracks
    from trackreid.associate.threshold import auto_threshold

    ts, identity = synthetic_tracks(n, cameras, dim=dim, rank=96, seed=1, seconds=3600.0 * n / cameras / rate)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    u0 = resource.getrusage(resource.RUSAGE_SELF)
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    if kind in ("sharded", "all-pairs"):
        cons = Constraints(ts)
        graph = build_graph(ts, 20, window=window if kind == "sharded" else None)
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
    if labels_out:
        np.save(labels_out, labels)
    return {"kind": kind, "n": n, "cameras": cameras, "dim": dim, "seconds": round(seconds, 1),
            "cpu_seconds": round(cpu, 1), "hours": round(float(ts.end.max() - ts.start.min()) / 3600, 1),
            "phases": {k: round(v, 1) for k, v in phases.items()}, "threshold": round(float(thr), 3),
            "peak_rss_gb": round(peak / 2**20, 2), "rss_before_gb": round(rss0 / 2**20, 2),
            "identities_found": int(labels.max()) + 1, "identities_true": int(len(np.unique(identity))),
            "ari": round(float(adjusted_rand_score(identity, labels)), 4), "load": round(os.getloadavg()[0], 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,300000,1000000,1440000", help="comma-separated numbers of tracks")
    ap.add_argument("--cameras", type=int, default=100)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--rate", type=float, default=600.0, help="tracks per camera-hour (default 600: 14,400 a day)")
    ap.add_argument("--window", type=float, default=900.0, help="associate --window, seconds (default 900)")
    ap.add_argument("--all-pairs-max", type=int, default=100_000, help="largest N for the all-pairs search")
    ap.add_argument("--baseline-max", type=int, default=0, help="largest N for the dense sklearn baseline")
    ap.add_argument("--worker", nargs=2, metavar=("KIND", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--threshold", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--labels-out", help=argparse.SUPPRESS)
    ap.add_argument("--methods", default="chance",
                    help="auto-threshold methods to run (each one row; the baseline uses the first's threshold)")
    args = ap.parse_args()
    common = ["--cameras", str(args.cameras), "--dim", str(args.dim), "--rate", str(args.rate),
              "--window", str(args.window)]
    if args.worker:
        kind, _, method = args.worker[0].partition(":")
        print(json.dumps(worker(kind, int(args.worker[1]), args.cameras, args.dim, args.threshold,
                                method or "chance", args.rate, args.window, args.labels_out)))
        return
    print(f"load average at start {os.getloadavg()[0]:.1f}, {len(os.sched_getaffinity(0))} CPUs", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            for method in args.methods.split(","):
                runs = {}
                for kind in ("sharded", "all-pairs") if n <= args.all_pairs_max else ("sharded",):
                    cmd = [sys.executable, __file__, "--worker", f"{kind}:{method}", str(n), *common,
                           "--labels-out", f"{tmp}/{kind}.npy"]
                    runs[kind] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                    runs[kind]["method"] = method
                if "all-pairs" in runs:
                    from sklearn.metrics import adjusted_rand_score

                    agree = round(float(adjusted_rand_score(np.load(f"{tmp}/sharded.npy"),
                                                            np.load(f"{tmp}/all-pairs.npy"))), 4)
                    runs["sharded"]["agreement"] = runs["all-pairs"]["agreement"] = agree
                for r in runs.values():
                    print(json.dumps(r), file=sys.stderr)
                rows += runs.values()
            if n <= args.baseline_max:
                cmd = [sys.executable, __file__, "--worker", "sklearn-dense", str(n), *common,
                       "--threshold", str(rows[-1]["threshold"])]
                base = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                rows.append(base)
                print(json.dumps(base), file=sys.stderr)
    print("| tracks | cameras | hours | search | wall time (s) | CPU time (s) | graph / threshold / cluster (s) | "
          "peak RSS (GB) | threshold | identities found / true | ARI | agreement | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ph = r["phases"]
        phases = " / ".join(str(ph[k]) for k in ("graph", "threshold", "cluster")) if ph else "-"
        kind = {"sharded": f"sharded (--window {args.window:g}; auto {r.get('method')})",
                "all-pairs": f"all pairs (auto {r.get('method')})"}.get(r["kind"], "sklearn dense average linkage")
        print(f"| {r['n']:,} | {r['cameras']} | {r['hours']} | {kind} | {r['seconds']} | {r['cpu_seconds']} | "
              f"{phases} | {r['peak_rss_gb']} | {r['threshold']} | "
              f"{r['identities_found']:,} / {r['identities_true']:,} | {r['ari']} | {r.get('agreement', '-')} | "
              f"{r['load']} |")


if __name__ == "__main__":
    main()
