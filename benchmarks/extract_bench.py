"""End-to-end extraction speed against decode-only and a competent pipeline, paired, on a clip matrix.

The matrix (benchmarks/_clips.py): one scene of real people (CUHK03 crops walking over a
panning MOT17 frame, exact tracks) encoded as others encode it: x264 medium (others'
default: 3 B-frames with b-pyramid, keyframe every 250), veryfast, ultrafast (no B-frames),
keyframe every 30, HEVC, MPEG-4 Part 2 with B-frames, VP9; 720p and 1080p; dense (tracks
crossing in 8 s, 2.5 new a second: 300 tracks in 2 minutes) and sparse (20 tracks the whole
clip). The default matrix (9 cells of 24 s) runs in a few minutes once its clips are cached
(``--cache``); ``--full`` runs every cell (``--seconds 120`` for issue 23's 2-minute clips).

On each cell, every pipeline in a fresh subprocess (so peak memory is its own), back to back:

* ``trackreid``: the real ``extract`` call, with its per-stage seconds (plan, decode,
  convert, crop, embed, write; stages overlap: decoding runs in a producer thread) and its
  startup (imports, model and session) reported apart;
* ``decode-only``: OpenCV decoding every frame and nothing else (a ``grab()`` loop);
* ``competent``: one sequential OpenCV pass (grab every frame, retrieve the sampled ones),
  crops batched 64 at a time through eager PyTorch with torchreid-style preprocessing (RGB,
  bilinear resize to 256x128, /255, ImageNet mean/std), on trackreid's crops;
* ``trackreid, every frame converted`` (``--every-frame``): ``seek=False``, the OpenCV pass;
* ``online`` (``--online``): an OpenCV ``read()`` loop standing in for the tracker's
  decoding, feeding :class:`trackreid.online.OnlineCollector`;
* ``naive`` (``--naive``): seek to each sampled frame with OpenCV (``CAP_PROP_POS_FRAMES``),
  one crop at a time through eager PyTorch; run on ``--naive-crops`` crops, extrapolated.

One table: frames decoded, crops moved by codec-aware sampling, stage seconds, e2e /
decode-only, competent / e2e, and the largest cosine difference between trackreid's crop
features and the competent pipeline's (same crops, other decoder path and backend). The
noise check (``--noise``; by default on the first cell and the first HEVC one) compares the
track features of the codec-aware plan with the plain even plan's, against the noise of
moving every crop of the plain plan one frame.

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
from _clips import Cell, full_cells, make_clips, quick_cells

STARTED = time.perf_counter()
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


def _plan(video: Path, tracks: Path, n: int, max_shift: int = 2):  # type: ignore[no-untyped-def]
    """The source and the plan ``extract`` makes (codec-aware unless ``max_shift`` is 0)."""
    from trackreid.extract import ExtractConfig, open_inputs
    from trackreid.sampling import SamplingConfig

    inputs = open_inputs(video, tracks, ExtractConfig(SamplingConfig(n, max_shift=max_shift)))
    return inputs.source, inputs.plan


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

        imported = time.perf_counter()
        emb = _embedder(args)
        built = time.perf_counter()
        emb.embed([np.zeros((256, 128, 3), np.uint8)])  # session warm-up, as a long run amortises it
        t0 = time.perf_counter()
        res = extract(video, tracks, emb, Path(args.out),
                      ExtractConfig(SamplingConfig(args.crops), overwrite=True, seek=args.mode == "trackreid"))
        st = res.metadata["stats"]
        crops_n = int(st["crops_embedded"])
        extra = {"stages": res.metadata["timing"]["stages_seconds"], "decoded": st["frames_decoded"],
                 "skipped": st["frames_skipped_unreferenced"], "moved": st.get("crops_moved_to_decoded_frames", 0),
                 "startup": {"imports": imported - STARTED, "model": built - imported, "warm_up": t0 - built}}
        np.save(Path(args.out) / "crop_features.npy", res.features.all_features)
    elif args.mode == "noise":
        extra = noise_check(video, tracks, args)
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


def noise_check(video: Path, tracks: Path, args: argparse.Namespace) -> dict[str, object]:
    """Per-track cosine of the codec-aware plan's features with the plain even plan's, and of the
    plain plan moved one frame (every crop to the track's box on the next frame, else the one before)."""
    from trackreid.extract import ExtractConfig, aggregate, embed_plan
    from trackreid.io.mot import read_mot
    from trackreid.progress import NullProgress
    from trackreid.sampling import SamplePlan, SamplingConfig, assess_boxes, mot_to_xyxy

    emb = _embedder(args)
    src, plain = _plan(video, tracks, args.crops, max_shift=0)
    snapped = _plan(video, tracks, args.crops)[1]
    trk = read_mot(tracks)
    q = assess_boxes(trk.frame, mot_to_xyxy(trk.xywh), src.info.width, src.info.height, SamplingConfig())
    box = {(int(t), int(k)): q.clipped[i] for i, (t, k) in enumerate(zip(trk.track_id, trk.frame, strict=True))}
    frames: list[int] = []
    used: dict[int, set[int]] = {}  # per track: frames of its plain crops and of the moved ones so far
    for t, k in zip(plain.track_id.tolist(), plain.frame.tolist(), strict=True):
        taken = used.setdefault(t, set(plain.frame[plain.track_id == t].tolist()))
        frames.append(next((j for j in (k + 1, k - 1) if (t, j) in box and j not in taken), k))
        taken.add(frames[-1])
    fr = np.asarray(frames)
    moved = SamplePlan(plain.track_id, fr, plain.ordinal, np.stack([box[(t, k)] for t, k in
                                                                     zip(plain.track_id.tolist(), frames,
                                                                         strict=True)]), plain.track_rows)
    feats = {}
    for name, plan in (("plain", plain), ("snapped", snapped), ("moved", moved)):
        order = np.lexsort((plan.frame, plan.track_id))
        f, ok = embed_plan(src, plan, emb, None, ExtractConfig(), NullProgress())
        feats[name] = aggregate(plan.track_id[order][ok[order]], plan.frame[order][ok[order]], f[order][ok[order]],
                                {}, f.shape[1]).features
    cos_snap = np.sum(feats["plain"] * feats["snapped"], axis=1)
    cos_move = np.sum(feats["plain"] * feats["moved"], axis=1)
    return {"moved_crops": int(np.count_nonzero(plain.frame != snapped.frame)), "crops": len(plain),
            "snapped_min": float(cos_snap.min()), "snapped_mean": float(cos_snap.mean()),
            "one_frame_min": float(cos_move.min()), "one_frame_mean": float(cos_move.mean())}


def bench_cell(cell: Cell, cache: Path, args: argparse.Namespace) -> dict[str, object]:
    video, tracks = cell.paths(cache)
    ours = run_mode("trackreid", video, tracks, args)
    feats = np.load(CACHE / "out" / "crop_features.npy")
    grab = run_mode("grab", video, tracks, args)
    competent = run_mode("competent", video, tracks, args)
    theirs = np.load(CACHE / "out" / "competent_features.npy")
    row: dict[str, object] = {"cell": cell.name, "ours": ours, "grab": grab, "competent": competent}
    if args.every_frame:
        row["every_frame"] = run_mode("trackreid-full", video, tracks, args)
    if args.online:
        row["online"] = run_mode("online", video, tracks, args)
    if args.naive:
        row["naive"] = run_mode("naive", video, tracks, args)
    a = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    b = theirs / np.linalg.norm(theirs, axis=1, keepdims=True)
    row["max_cos_diff"] = float(np.max(1 - np.sum(a * b, 1)))
    row["frames"] = grab["crops"]
    return row


def print_table(rows: list[dict]) -> None:  # type: ignore[type-arg]
    print("\n| clip | frames | decoded | crops moved | stage s: plan / decode / convert / embed | e2e s | "
          "decode-only s | competent s | e2e / decode-only | competent / e2e | max 1-cos vs competent | "
          "meets <= 1.3x, >= 3x |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        o, g, c = r["ours"], r["grab"], r["competent"]
        st = o["stages"]
        stages = " / ".join(f"{st.get(k, 0):.2f}" for k in ("plan", "decode", "convert", "embed"))
        ratio, speedup = o["seconds"] / g["seconds"], c["seconds"] / o["seconds"]
        meets = "yes" if ratio <= 1.3 and speedup >= 3 else "**no**"
        print(f"| {r['cell']} | {r['frames']} | {o['decoded']} | {o['moved']} of {o['crops']} | {stages} | "
              f"{o['seconds']:.2f} | {g['seconds']:.2f} | {c['seconds']:.2f} | {ratio:.2f}x | {speedup:.2f}x | "
              f"{r['max_cos_diff']:.1e} | {meets} |")
    for r in rows:
        for key, label in (("every_frame", "every frame converted (seek=False)"), ("online", "online"),
                           ("naive", "naive (extrapolated)")):
            if key in r:
                sec = r[key]["seconds"]
                print(f"{r['cell']}: {label} {sec:.2f} s = {sec / r['ours']['seconds']:.2f}x trackreid")
    su = rows[0]["ours"]["startup"]
    print("startup of the trackreid process (first cell): " + ", ".join(f"{k} {v:.2f} s" for k, v in su.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="weights file (default: an untrained --arch, for speed only)")
    ap.add_argument("--arch", default="osnet_x1_0")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--crops", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--full", action="store_true", help="every cell of the matrix (default: 9 cells)")
    ap.add_argument("--seconds", type=float, default=24.0, help="clip length (default 24; issue 23: 120)")
    ap.add_argument("--cells", nargs="*", help="run only cells whose name contains one of these")
    ap.add_argument("--cache", type=Path, default=CACHE / "matrix", help="where clips are made and kept")
    ap.add_argument("--noise", nargs="*", default=None,
                    help="cells to run the sampling-noise check on (default: the first and the first HEVC one; "
                         "none with a bare --noise)")
    ap.add_argument("--every-frame", action="store_true", help="also time trackreid with seek=False")
    ap.add_argument("--online", action="store_true", help="also time online extraction fed by an OpenCV loop")
    ap.add_argument("--naive", action="store_true", help="also time the naive seek-per-crop pipeline")
    ap.add_argument("--naive-crops", type=int, default=100)
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
    from _common import data_dir, machine

    cells = (full_cells if args.full else quick_cells)(args.seconds)
    if args.cells:
        cells = [c for c in cells if any(s in c.name for s in args.cells)]
    make_clips(cells, args.cache, data_dir())
    model = args.weights or f"{args.arch} (untrained, speed only)"
    print(f"model {model}; backend {args.backend}; batch {args.batch_size}; {machine()}", flush=True)
    rows = []
    for cell in cells:
        rows.append(bench_cell(cell, args.cache, args))
        print(f"{cell.name}: done, load {os.getloadavg()[0]:.1f}", flush=True)
    print_table(rows)
    if args.noise is None:  # default: the first cell and the one with most unreferenced frames (HEVC)
        noise = cells[:1] + [c for c in cells[1:] if c.encoder == "hevc-fast"][:1]
    else:
        noise = [c for c in cells if any(s in c.name for s in args.noise)]
    for cell in noise:
        video, tracks = cell.paths(args.cache)
        r = run_mode("noise", video, tracks, args)
        print(f"{cell.name}: codec-aware plan moved {r['moved_crops']} of {r['crops']} crops; per-track cosine with "
              f"the plain plan min {r['snapped_min']:.4f} mean {r['snapped_mean']:.4f}; plain plan moved one frame: "
              f"min {r['one_frame_min']:.4f} mean {r['one_frame_mean']:.4f}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
