"""End-to-end extraction speed against decode-only and two pipelines written here, in one run.

Generates two 1080p H.264 videos of a synthetic street scene with exact tracks (PyAV, x264
veryfast, crf 23, keyframe every 250 frames; cached in runs/bench/):

* 30 s, 16 people walking across the whole video (160 crops);
* 120 s, 300 people crossing in about 8 s each (300 tracks, 3,000 crops).

and measures on each, every pipeline in a fresh subprocess (so peak memory is its own):

* ``trackreid``: the real ``extract`` call, with its per-stage seconds (decode, convert,
  crop, embed, write; stages overlap: decoding runs in a producer thread);
* ``trackreid, every frame converted``: the same with ``seek=False``, the OpenCV
  grab/retrieve pass that converts each sampled frame whole (the path before crops were
  converted from YUV and unreferenced frames skipped);
* ``decode-only``: OpenCV decoding every frame and nothing else (a ``grab()`` loop);
* ``competent``: one sequential OpenCV pass (grab every frame, retrieve the sampled ones),
  crops batched 64 at a time through eager PyTorch with torchreid-style preprocessing (RGB,
  bilinear resize to 256x128, /255, ImageNet mean/std);
* ``online`` (with ``--online``): an OpenCV ``read()`` loop standing in for the tracker's
  decoding, feeding :class:`trackreid.online.OnlineCollector`;
* ``naive``: seek to each sampled frame with OpenCV (``CAP_PROP_POS_FRAMES``), one crop at a
  time through eager PyTorch; run on the first ``--naive-crops`` crops and extrapolated.

It prints the largest cosine difference between trackreid's crop features and the competent
pipeline's (same crops, different decoder path and backend).

    python benchmarks/extract_bench.py --weights ../shared/data/weights/osnet_x0_25_msmt17.pth
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

import numpy as np

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


def _competent(video: Path, plan, weights: str | None, arch: str) -> tuple[np.ndarray, float]:  # type: ignore[no-untyped-def]
    """One sequential OpenCV pass, 64-crop batches, eager PyTorch, torchreid-style preprocessing."""
    import cv2
    import torch

    if weights:
        from trackreid.models.weights import load_model

        model = load_model(weights).model.eval()
    else:
        from trackreid.models.registry import create_model

        model = create_model(arch).eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    by_frame: dict[int, list[int]] = {}
    for r, k in enumerate(plan.frame.tolist()):
        by_frame.setdefault(k, []).append(r)
    feats = np.zeros((len(plan), 512), dtype=np.float32)
    batch: list[np.ndarray] = []
    rows: list[int] = []

    def run() -> None:
        x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float().div_(255)
        with torch.no_grad():
            f = model((x - mean) / std).numpy()
        nonlocal feats
        if feats.shape[1] != f.shape[1]:
            feats = np.zeros((len(plan), f.shape[1]), dtype=np.float32)
        feats[rows] = f
        batch.clear()
        rows.clear()

    t0 = time.perf_counter()
    cap = cv2.VideoCapture(str(video))
    last = int(plan.frame.max())
    k = 0
    while k < last and cap.grab():
        k += 1
        if k not in by_frame:
            continue
        _, img = cap.retrieve()
        for r in by_frame[k]:
            x0, y0, x1, y1 = (int(v) for v in plan.box[r])
            rgb = cv2.cvtColor(img[y0:y1, x0:x1], cv2.COLOR_BGR2RGB)
            batch.append(cv2.resize(rgb, (128, 256), interpolation=cv2.INTER_LINEAR))
            rows.append(r)
            if len(batch) == 64:
                run()
    if batch:
        run()
    return feats, time.perf_counter() - t0


def worker(args: argparse.Namespace) -> dict[str, object]:
    import cv2

    video, tracks = Path(args.video), Path(args.tracks)
    t0 = time.perf_counter()
    crops_n = 0
    extra: dict[str, object] = {}
    if args.mode in ("trackreid", "trackreid-full"):
        from trackreid.extract import ExtractConfig, extract
        from trackreid.sampling import SamplingConfig

        emb = _embedder(args)
        emb.embed([np.zeros((256, 128, 3), np.uint8)])  # session warm-up, as a long run amortises it
        t0 = time.perf_counter()
        res = extract(video, tracks, emb, Path(args.out),
                      ExtractConfig(SamplingConfig(args.crops), overwrite=True, seek=args.mode == "trackreid"))
        crops_n = int(res.metadata["stats"]["crops_embedded"])
        extra = {"stages": res.metadata["timing"]["stages_seconds"],
                 "decoded": res.metadata["stats"]["frames_decoded"],
                 "skipped": res.metadata["stats"]["frames_skipped_unreferenced"]}
        np.save(Path(args.out) / "crop_features.npy", res.features.all_features)
    elif args.mode == "online":
        from trackreid.io.mot import read_mot
        from trackreid.online import OnlineCollector, OnlineConfig
        from trackreid.sampling import SamplingConfig

        emb = _embedder(args)
        emb.embed([np.zeros((256, 128, 3), np.uint8)])
        trk = read_mot(tracks)
        t0 = time.perf_counter()
        col = OnlineCollector(emb, Path(args.out), OnlineConfig(SamplingConfig(args.crops), overwrite=True))
        cap = cv2.VideoCapture(str(video))
        k = 0
        while True:
            ok, img = cap.read()  # the tracker's decoding (every frame, whole)
            if not ok:
                break
            k += 1
            col.update_mot(k, img, trk)
        res = col.finish()
        st = res.metadata["stats"]
        crops_n = int(st["crops_embedded"])
        extra = {"stages": res.metadata["timing"]["stages_seconds"], "collector_s": res.metadata["timing"]["seconds"],
                 "crops_cut": st["crops_cut"]}
    elif args.mode == "grab":
        cap = cv2.VideoCapture(str(video))
        while cap.grab():
            crops_n += 1
    elif args.mode == "competent":
        _, plan = _plan(video, tracks, args.crops)
        feats, seconds = _competent(video, plan, args.weights, args.arch)
        np.save(Path(args.out) / "competent_features.npy", feats)
        crops_n = len(plan)
        t0 = time.perf_counter() - seconds
    elif args.mode == "naive":
        import torch

        from trackreid.embed.preprocess import normalize, resize_crops

        if args.weights:
            from trackreid.models.weights import load_model

            model = load_model(args.weights).model.eval()
        else:
            from trackreid.models.registry import create_model

            model = create_model(args.arch).eval()
        emb = _embedder(args)
        _, plan = _plan(video, tracks, args.crops)
        sub = np.linspace(0, len(plan) - 1, min(len(plan), args.naive_crops)).astype(int)  # spread over the video
        t0 = time.perf_counter()
        cap = cv2.VideoCapture(str(video))
        with torch.no_grad():
            for r in sub:
                x0, y0, x1, y1 = (int(v) for v in plan.box[r])
                cap.set(cv2.CAP_PROP_POS_FRAMES, int(plan.frame[r]) - 1)
                ok, img = cap.read()
                x = normalize(resize_crops([img[y0:y1, x0:x1]], emb.preprocess), emb.preprocess)
                model(torch.from_numpy(x))
        crops_n = len(plan)
        extra = {"measured_crops": len(sub), "measured_seconds": time.perf_counter() - t0}
        t0 = time.perf_counter() - (time.perf_counter() - t0) * len(plan) / len(sub)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": elapsed, "crops": crops_n, "peak_mb": peak, **extra}


def run_mode(mode: str, video: Path, tracks: Path, args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    cmd = [sys.executable, __file__, "--worker", mode, "--video", str(video), "--tracks", str(tracks),
           "--crops", str(args.crops), "--batch-size", str(args.batch_size), "--backend", args.backend,
           "--out", str(CACHE / "out"), "--arch", args.arch, "--naive-crops", str(args.naive_crops)]
    if args.weights:
        cmd += ["--weights", str(args.weights)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if r.returncode:
        raise SystemExit(f"{mode} failed:\n{r.stderr}")
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def bench_clip(video: Path, tracks: Path, args: argparse.Namespace) -> None:
    n_tracks = len({line.split(",")[1] for line in tracks.read_text().splitlines()})
    info = _plan(video, tracks, args.crops)[0].info
    print(f"\n### {video.name}: {info.width}x{info.height} H.264, {info.frame_count} frames, {n_tracks} tracks, "
          f"max {args.crops} crops/track\n")
    rows = [("trackreid extract (end to end)", run_mode("trackreid", video, tracks, args))]
    ours = np.load(CACHE / "out" / "crop_features.npy")
    rows.append(("trackreid, every sampled frame converted whole (seek=False)",
                 run_mode("trackreid-full", video, tracks, args)))
    rows.append(("decode-only: OpenCV grab() of every frame", run_mode("grab", video, tracks, args)))
    rows.append(("competent: one OpenCV pass, batches of 64, eager torch", run_mode("competent", video, tracks, args)))
    theirs = np.load(CACHE / "out" / "competent_features.npy")
    if args.online:
        rows.append(("online: OpenCV read() of every frame (the tracker's decode) + OnlineCollector",
                     run_mode("online", video, tracks, args)))
    if not args.skip_naive:
        naive = run_mode("naive", video, tracks, args)
        rows.append((f"naive: seek + 1 crop at a time (measured on {naive['measured_crops']} crops, extrapolated)",
                     naive))
    base = rows[0][1]["seconds"]
    print("| pipeline | wall s | crops | crops/s | peak RSS MB | vs trackreid |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['seconds']:.2f} | {r['crops']:.0f} | {r['crops'] / r['seconds']:.1f} | "
              f"{r['peak_mb']:.0f} | {r['seconds'] / base:.2f}x |")
    for name, r in rows[:2]:
        st = r["stages"]
        print(f"{name}: stages s " + ", ".join(f"{k} {v:.2f}" for k, v in st.items())
              + f"; frames decoded {r['decoded']}, not decoded (unreferenced, not sampled) {r['skipped']}")
    for name, r in rows:
        if "collector_s" in r:
            print(f"{name}: {r['collector_s']:.2f} s inside the collector (stages s "
                  + ", ".join(f"{k} {v:.2f}" for k, v in r["stages"].items())
                  + f"); crops cut {r['crops_cut']}, embedded {r['crops']}")
    a = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    b = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    grab, competent = rows[2][1]["seconds"], rows[3][1]["seconds"]
    print(f"end to end / decode-only = {base / grab:.2f}x; competent / end to end = {competent / base:.2f}x; "
          f"max cosine difference vs competent over {len(a)} crops = {float(np.max(1 - np.sum(a * b, 1))):.2e}")
    if not args.skip_naive:
        print(f"naive / end to end = {rows[-1][1]['seconds'] / base:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="weights file (default: an untrained --arch, for speed only)")
    ap.add_argument("--arch", default="osnet_x1_0")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--crops", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--naive-crops", type=int, default=100)
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--online", action="store_true", help="also time online extraction fed by an OpenCV loop")
    ap.add_argument("--only", choices=("short", "long"), help="run one clip only")
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
    from _common import machine

    clips = {"short": make_video(30, 16, CACHE / "street_30s_16p.mp4"),
             "long": make_video(120, 300, CACHE / "street_120s_300p.mp4", track_seconds=8.0)}
    model = args.weights or f"{args.arch} (untrained, speed only)"
    print(f"model {model}; backend {args.backend}; batch {args.batch_size}; {machine()}")
    for name, (video, tracks) in clips.items():
        if args.only in (None, name):
            bench_clip(video, tracks, args)


if __name__ == "__main__":
    main()
