"""`trackreid run` on a generated site: local engine (1 and 2 workers) vs Ray, and resume.

A site of 8 cameras x 1 minute of 1080p H.264 at 25 fps (drawn people, trackreid.synth,
encoded with ffmpeg/libx264; two cameras drawn, six copies of them; generated once into
--work-dir and reused). Prints one table:
wall time, crops, crops/s per configuration, Ray's overhead over the local engine with as
many workers, and the time a finished site takes to "rerun" (resume = skip). Also measures
the two unit costs of the scale cost model (docs/scale.md): decoding one 1080p frame and
embedding one crop.

Ray may talk only over loopback here, so run the whole script in a network namespace:
  unshare -n -- bash -c 'ip link set lo up; RAY_AUTH_MODE=disabled exec nice -n 5 \\
      .venv/bin/python benchmarks/run_bench.py'
(`--quick`: 2 cameras x 20 s; `--no-ray` skips Ray, e.g. outside a namespace.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.runtime import apply_env_defaults


def make_bench_site(work: Path, cameras: int, seconds: float) -> Path:
    """Two distinct drawn cameras (trackreid.synth); cameras 3.. are copies of them (rendering 1080p
    people costs minutes per camera here; decoding and embedding a copy costs the same as an original)."""
    import yaml

    from trackreid.synth import SiteSpec, drawn_people, make_site

    site_dir = work / f"site_{cameras}x{int(seconds)}s"
    site_yml = site_dir / f"site_{cameras}.yml"
    if site_yml.is_file():
        return site_yml
    t0 = time.perf_counter()
    site = make_site(site_dir, SiteSpec(cameras=2, identities=12, shared_fraction=0.6, seconds=seconds, fps=25,
                                        width=1920, height=1080, codec="h264", seed=0), drawn_people(12))
    doc = yaml.safe_load(site.site_yml.read_text())
    for k in range(3, cameras + 1):
        src = site_dir / f"cam{(k - 1) % 2 + 1}"
        shutil.copytree(src, site_dir / f"cam{k}", dirs_exist_ok=True)
        doc["cameras"].append({**doc["cameras"][(k - 1) % 2], "name": f"cam{k}", "video": f"cam{k}/video.mp4",
                               "tracks": f"cam{k}/tracks.txt"})
    site_yml.write_text(yaml.safe_dump(doc, sort_keys=False))
    print(f"generated {site_dir} in {time.perf_counter() - t0:.0f} s")
    return site_yml


def timed_run(site_yml: Path, weights: Path, out: Path, **kw: Any) -> dict[str, Any]:
    from trackreid.run import read_site, run_site

    t0 = time.perf_counter()
    res = run_site(read_site(site_yml, reid_model=str(weights)), out, associate=False, **kw)
    wall = time.perf_counter() - t0
    assert not res.failures, res.failures
    crops = sum(r.metadata["stats"]["crops_embedded"] for r in res.cameras.values())
    frames = sum(r.metadata["stats"]["frames_decoded"] for r in res.cameras.values())
    return {"wall_s": wall, "crops": crops, "frames_decoded": frames, "jobs": res.report["jobs"]["run"]}


def unit_costs(site_yml: Path, weights: Path) -> dict[str, float]:
    """Per decoded 1080p frame (OpenCV, the decoder's own threads) and per embedded crop (onnxruntime,
    batch 32, 1 and 2 threads): wall seconds and CPU seconds (all threads of this process)."""
    import cv2

    from trackreid.embed.factory import build_embedder
    from trackreid.run import read_site

    video = read_site(site_yml, reid_model=str(weights)).cameras[0].video
    cap = cv2.VideoCapture(str(video))
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while n < 750 and cap.grab():
        cap.retrieve()
        n += 1
    out = {"decode_wall_s_per_frame": (time.perf_counter() - t0) / n,
           "decode_cpu_s_per_frame": (time.process_time() - c0) / n}
    cap.release()
    rng = np.random.default_rng(0)
    for threads in (1, 2):
        os.environ["TRACKREID_THREADS"] = str(threads)
        emb = build_embedder(weights, device="cpu", batch_size=32)
        batch = rng.integers(0, 255, (32, 256, 128, 3), dtype=np.uint8)
        emb.run_prepared(batch)
        reps = 8
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            emb.run_prepared(batch)
        out[f"embed_wall_s_per_crop_{threads}t"] = (time.perf_counter() - t0) / (reps * 32)
        out[f"embed_cpu_s_per_crop_{threads}t"] = (time.process_time() - c0) / (reps * 32)
    os.environ.pop("TRACKREID_THREADS", None)
    return out


def ray_cluster() -> Any:
    import ray
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    ray.init(address=c.address, log_to_driver=False)
    return c


def main() -> None:
    apply_env_defaults()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=Path("../shared/data/weights/osnet_x0_25_msmt17.pth"))
    p.add_argument("--work-dir", type=Path, default=Path("runs/run_bench"))
    p.add_argument("--quick", action="store_true", help="2 cameras x 20 s instead of 8 x 60 s")
    p.add_argument("--no-ray", action="store_true")
    p.add_argument("--costs-only", action="store_true", help="only the unit costs of the scale model")
    args = p.parse_args()
    cams, secs = (2, 20.0) if args.quick else (8, 60.0)
    site_yml = make_bench_site(args.work_dir, cams, secs)
    if args.costs_only:
        costs = unit_costs(site_yml, args.weights)
        print("unit costs: " + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in costs.items()))
        return
    outs = args.work_dir / "outs"
    shutil.rmtree(outs, ignore_errors=True)
    rows: dict[str, dict[str, Any]] = {}
    rows["local, 1 worker x 2 threads"] = timed_run(site_yml, args.weights, outs / "l1", workers=1)
    rows["local, 2 workers x 1 thread"] = timed_run(site_yml, args.weights, outs / "l2", workers=2)
    rows["resume (finished site, local)"] = timed_run(site_yml, args.weights, outs / "l2", workers=2)
    if not args.no_ray:
        if [n for _, n in socket.if_nameindex()] != ["lo"]:
            raise SystemExit("Ray only inside a network namespace: unshare -n -- bash -c 'ip link set lo up; exec ...'")
        t0 = time.perf_counter()
        cluster = ray_cluster()
        up = time.perf_counter() - t0
        try:
            rows["ray, head + 1 node (1 CPU each)"] = timed_run(site_yml, args.weights, outs / "ray", engine="ray")
            rows["ray, head + 1 node (1 CPU each)"]["cluster_start_s"] = up
        finally:
            import ray

            ray.shutdown()
            cluster.shutdown()
    costs = unit_costs(site_yml, args.weights)
    print(f"\nsite: {cams} cameras x {secs:.0f} s of 1080p H.264 at 25 fps ({site_yml})")
    print(f"{'configuration':34s} {'wall s':>8s} {'jobs':>5s} {'crops':>6s} {'crops/s':>8s} {'frames':>7s}")
    for name, r in rows.items():
        print(f"{name:34s} {r['wall_s']:8.1f} {r['jobs']:5d} {r['crops']:6d} {r['crops'] / r['wall_s']:8.1f} "
              f"{r['frames_decoded']:7d}")
    base = rows["local, 2 workers x 1 thread"]["wall_s"]
    if "ray, head + 1 node (1 CPU each)" in rows:
        r = rows["ray, head + 1 node (1 CPU each)"]
        print(f"Ray overhead over local (2 workers): {r['wall_s'] - base:+.1f} s ({r['wall_s'] / base - 1:+.0%}); "
              f"cluster start {r['cluster_start_s']:.1f} s (not included)")
    print("unit costs: " + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in costs.items()))
    (args.work_dir / "run_bench.json").write_text(json.dumps({"rows": rows, "unit_costs": costs}, indent=1))


if __name__ == "__main__":
    main()
