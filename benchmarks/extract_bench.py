"""End-to-end extraction speed and memory against a naive pipeline, measured in one run.

Generates a 1080p H.264 video (synthetic street scene, >= 15 walking people, exact tracks)
with PyAV, then measures, each in a fresh subprocess (so peak memory is its own):

* ``trackreid``: the real ``extract`` call (one forward pass, producer thread, batches);
* ``decode-only``: the same forward pass over the video, converting the sampled frames;
* ``inference-only``: the same crops, already cut and in memory, through the same embedder;
* ``naive``: seek to each sampled frame with OpenCV, crop, one crop at a time through eager
  PyTorch (the usual first script);
* ``trackreid`` again on a video twice as long, to show that peak memory does not grow with it.

    python benchmarks/extract_bench.py [--weights PATH | --arch osnet_x1_0] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "runs" / "bench"


def make_video(seconds: float, people: int, path: Path, track_seconds: float | None = None) -> tuple[Path, Path]:
    import av

    from trackreid.sample import scene_frames

    tracks = path.with_suffix(".txt")
    if path.is_file() and tracks.is_file():
        return path, tracks
    path.parent.mkdir(parents=True, exist_ok=True)
    rows: list[str] = []
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"g": "250", "preset": "veryfast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        for _, img, frame_rows in scene_frames(seconds, 25, 1920, 1080, people, seed=1, track_seconds=track_seconds):
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
            rows += frame_rows
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    tracks.write_text("\n".join(rows) + "\n")
    return path, tracks


def _embedder(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from trackreid.embed.backend import Embedder, TorchBackend
    from trackreid.embed.device import resolve_device
    from trackreid.embed.factory import build_embedder
    from trackreid.models.registry import Preprocess, create_model
    from trackreid.models.weights import LoadedModel

    if args.weights:
        return build_embedder(args.weights, device="cpu", backend=args.backend, batch_size=args.batch_size)
    loaded = LoadedModel(create_model(args.arch).eval(), args.arch, Preprocess(), "untrained", None, None)
    return Embedder(TorchBackend(loaded, resolve_device("cpu")), args.batch_size)


def _plan(video: Path, tracks: Path, n: int):  # type: ignore[no-untyped-def]
    from trackreid.io.mot import read_mot
    from trackreid.io.video import FrameSource
    from trackreid.sampling import SamplingConfig, plan_samples

    src = FrameSource.open(video)
    return src, plan_samples(read_mot(tracks), src.info.width, src.info.height, SamplingConfig(n))


def worker(args: argparse.Namespace) -> dict[str, float]:
    import numpy as np
    import torch

    video, tracks = Path(args.video), Path(args.tracks)
    t0 = time.perf_counter()
    crops_n = 0
    if args.mode == "trackreid":
        from trackreid.extract import ExtractConfig, extract
        from trackreid.sampling import SamplingConfig

        emb = _embedder(args)
        t0 = time.perf_counter()
        res = extract(video, tracks, emb, Path(args.out), ExtractConfig(SamplingConfig(args.crops), overwrite=True))
        crops_n = int(res.metadata["stats"]["crops_embedded"])
    elif args.mode == "decode":
        src, plan = _plan(video, tracks, args.crops)
        for _ in src.frames(plan.frames_needed()):
            pass
        crops_n = len(plan)
    elif args.mode == "inference":
        src, plan = _plan(video, tracks, args.crops)
        crops = []
        for k, img in src.frames(plan.frames_needed()):
            for x0, y0, x1, y1 in plan.box[plan.frame == k]:
                crops.append(img[y0:y1, x0:x1].copy())
        emb = _embedder(args)
        emb.embed(crops[:8])  # warm-up, as extract's first batch also pays it
        t0 = time.perf_counter()
        emb.embed(crops)
        crops_n = len(crops)
    elif args.mode == "naive":
        import cv2

        from trackreid.embed.preprocess import normalize, resize_crops
        from trackreid.models.weights import load_model

        if args.weights:
            model = load_model(args.weights).model.eval()
        else:
            from trackreid.models.registry import create_model

            model = create_model(args.arch).eval()
        emb = _embedder(args)
        src, plan = _plan(video, tracks, args.crops)
        t0 = time.perf_counter()
        cap = cv2.VideoCapture(str(video))
        feats = []
        with torch.no_grad():
            for k, (x0, y0, x1, y1) in zip(plan.frame, plan.box, strict=True):
                cap.set(cv2.CAP_PROP_POS_FRAMES, int(k) - 1)
                ok, img = cap.read()
                x = normalize(resize_crops([img[y0:y1, x0:x1]], emb.preprocess), emb.preprocess)
                feats.append(model(torch.from_numpy(x)).numpy())
        crops_n = len(feats)
        np.concatenate(feats)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": elapsed, "crops": crops_n, "peak_mb": peak}


def run_mode(mode: str, video: Path, tracks: Path, args: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", mode, "--video", str(video), "--tracks", str(tracks),
           "--crops", str(args.crops), "--batch-size", str(args.batch_size), "--backend", args.backend,
           "--out", str(CACHE / "out"), "--arch", args.arch]
    if args.weights:
        cmd += ["--weights", str(args.weights)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if r.returncode:
        raise SystemExit(f"{mode} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="weights file (default: an untrained --arch, for speed only)")
    ap.add_argument("--arch", default="osnet_x1_0")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--people", type=int, default=16)
    ap.add_argument("--crops", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--video", help=argparse.SUPPRESS)
    ap.add_argument("--tracks", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.mode = args.worker
        print(json.dumps(worker(args)))
        return
    sys.path.insert(0, str(ROOT / "src"))
    video, tracks = make_video(args.seconds, args.people, CACHE / f"street_{int(args.seconds)}s_{args.people}p.mp4")
    long_video, long_tracks = make_video(2 * args.seconds, args.people,
                                         CACHE / f"street_{int(2 * args.seconds)}s_{args.people}p.mp4")
    n_tracks = len({line.split(",")[1] for line in tracks.read_text().splitlines()})
    model = args.weights or f"{args.arch} (untrained, speed only)"
    print(f"video: {video.name} 1920x1080 H.264, {args.seconds:.0f} s, {n_tracks} tracks, "
          f"max {args.crops} crops/track; model {model}; backend {args.backend}; batch {args.batch_size}; "
          f"{os.cpu_count()} CPUs")
    rows = [("trackreid extract (end to end)", run_mode("trackreid", video, tracks, args)),
            ("decode-only (same pass)", run_mode("decode", video, tracks, args)),
            ("inference-only (same crops)", run_mode("inference", video, tracks, args))]
    if not args.skip_naive:
        rows.append(("naive: seek + 1 crop at a time, eager torch", run_mode("naive", video, tracks, args)))
    rows.append((f"trackreid extract, {2 * args.seconds:.0f} s video", run_mode("trackreid", long_video,
                                                                              long_tracks, args)))
    base = rows[0][1]["seconds"]
    print("| pipeline | wall s | crops | crops/s | peak RSS MB | vs trackreid |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['seconds']:.2f} | {r['crops']:.0f} | {r['crops'] / r['seconds']:.1f} | "
              f"{r['peak_mb']:.0f} | {r['seconds'] / base:.2f}x |")
    dec, inf = rows[1][1]["seconds"], rows[2][1]["seconds"]
    print(f"decode-only + inference-only = {dec + inf:.2f} s; end to end = {base:.2f} s")
    if not args.skip_naive:
        print(f"speed-up over naive: {rows[3][1]['seconds'] / base:.1f}x")


if __name__ == "__main__":
    main()
