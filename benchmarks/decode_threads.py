"""Decoder threads and embedding threads for extract: how the cores are split, measured in one run.

    python benchmarks/decode_threads.py --weights ../shared/data/weights/osnet_x0_25_msmt17.pth [--clip long]
    python benchmarks/decode_threads.py --weights ... --video CLIP --tracks TRACKS --embed-threads 1,2

Each setting runs in a fresh process (``TRACKREID_DECODE_THREADS=n``, and with
``--embed-threads`` ``TRACKREID_THREADS=m``, onnxruntime's intra-op threads), in rounds so that
load changes on a shared machine spread over all settings; the table gives the best of the
rounds. ``decode`` walks every frame through PyAV with the same threading and converts nothing.
``--video``/``--tracks`` take any clip, e.g. one of extract_bench.py's matrix.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from extract_bench import CACHE, ROOT, make_video


def decode_all(video: Path) -> float:
    import av

    from trackreid.io.video import configure_threads

    t = time.perf_counter()
    with av.open(str(video)) as c:
        stream = c.streams.video[0]
        configure_threads(stream)
        for _ in c.decode(stream):
            pass
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--clip", choices=("short", "long"), default="short")
    ap.add_argument("--video", type=Path, help="another clip (with --tracks) instead of --clip")
    ap.add_argument("--tracks", type=Path)
    ap.add_argument("--threads", default="1,2,3,4")
    ap.add_argument("--embed-threads", default="", help="onnxruntime threads to try, e.g. 1,2 (default: its own)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--decode", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.decode:
        print(json.dumps({"seconds": decode_all(Path(args.decode))}))
        return
    sys.path.insert(0, str(ROOT / "src"))
    from _common import machine

    if args.video:
        video, tracks = args.video, args.tracks
    else:
        video, tracks = (make_video(30, 16, CACHE / "street_30s_16p.mp4") if args.clip == "short" else
                         make_video(120, 300, CACHE / "street_120s_300p.mp4", track_seconds=8.0))
    print(f"{video.name}; {machine()}")
    embed = [int(x) for x in args.embed_threads.split(",") if x] or [0]
    decoders = [int(x) for x in args.threads.split(",")]
    best: dict[tuple[str, int, int], float] = {}
    bench = str(Path(__file__).with_name("extract_bench.py"))
    for _ in range(args.rounds):
        for n in decoders:
            for m in embed:
                env = {**os.environ, "TRACKREID_DECODE_THREADS": str(n), "PYTHONWARNINGS": "ignore"}
                if m:
                    env["TRACKREID_THREADS"] = str(m)
                runs = {"end to end": [sys.executable, bench, "--worker", "trackreid", "--video", str(video),
                                       "--tracks", str(tracks), "--crops", "10", "--batch-size", "32", "--backend",
                                       "auto", "--out", str(CACHE / "out"), "--arch", "osnet_x1_0", "--naive-crops",
                                       "1", "--weights", args.weights]}
                if m == embed[0]:
                    runs["decode"] = [sys.executable, __file__, "--weights", args.weights, "--decode", str(video)]
                for what, cmd in runs.items():
                    r = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
                    sec = json.loads(r.stdout.strip().splitlines()[-1])["seconds"]
                    key = (what, n, m if what != "decode" else 0)
                    best[key] = min(best.get(key, float("inf")), sec)
    heads = [f"extract end to end s, {m} embed threads" if m else "extract end to end s" for m in embed]
    print("| decoder threads | decode every frame s | " + " | ".join(heads) + " |")
    print("|---|---|" + "---|" * len(embed))
    for n in decoders:
        e2e = " | ".join(f"{best[('end to end', n, m)]:.2f}" for m in embed)
        print(f"| {n} | {best[('decode', n, 0)]:.2f} | {e2e} |")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
