"""CUHK03-val accuracy with and without centralization (baseline measured in the same run).

Image level (the shared data's reference protocol): query = every camera-A crop, gallery =
every camera-B crop, cosine distance; NFC is applied to the query set and to the gallery set
separately, as in Pose2ID. Track level: each (identity, camera) becomes one "track" of its
crops; camera-A tracks are queries, camera-B tracks the gallery; "track" = track centres,
"+NFC per-file" = NFC within each camera, "+NFC joint" = NFC over both cameras' tracks.

    PYTHONPATH=src python benchmarks/centralize_cuhk03.py [--weights W ...] [--write-tracks DIR]

``--write-tracks DIR`` also writes DIR/cam_a and DIR/cam_b track features (the README example).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import cv2
import numpy as np

from trackreid.centralize import CentralizeConfig, centralize, nfc, track_centers
from trackreid.datasets import ImageSet, cuhk03_query_gallery
from trackreid.embed.factory import build_embedder
from trackreid.evaluate import ReidMetrics, cosine_distance, evaluate_ranking
from trackreid.io.features import TrackFeatures, write_features

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def tracks_of(s: ImageSet, feats: np.ndarray, meta: dict) -> TrackFeatures:
    items = []
    for pid in np.unique(s.pids):
        rows = np.flatnonzero(s.pids == pid)
        slots = [int(s.paths[r].stem.split("_")[1]) for r in rows]
        items.append((int(pid), feats[rows].mean(0), feats[rows], np.array(slots)))
    return TrackFeatures.from_tracks(items, meta)


def metrics(fq: np.ndarray, fg: np.ndarray, qp: np.ndarray, gp: np.ndarray) -> ReidMetrics:
    return evaluate_ranking(cosine_distance(fq, fg), qp, gp, np.zeros(len(qp)), np.ones(len(gp)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", nargs="*", help="weights files (default: the shared .pth, and the .onnx when "
                    "trackreid.embed.onnx_backend exists)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--write-tracks", type=Path, help="write cam_a / cam_b track features of the first weights here")
    args = ap.parse_args()
    weights = [Path(w) for w in args.weights] if args.weights else [args.data / "weights/osnet_x0_25_msmt17.pth"]
    if not args.weights and importlib.util.find_spec("trackreid.embed.onnx_backend"):
        weights.append(args.data / "weights/osnet_x0_25_msmt17.onnx")
    q, g = cuhk03_query_gallery(args.data / "cuhk03" / "val")
    rows = []
    for w in weights:
        t = time.perf_counter()
        emb = build_embedder(w, device="cpu", batch_size=64)
        fq = emb.embed([cv2.imread(str(p)) for p in q.paths])
        fg = emb.embed([cv2.imread(str(p)) for p in g.paths])
        t_embed = time.perf_counter() - t
        t = time.perf_counter()
        image = [("images", "none", evaluate_ranking(cosine_distance(fq, fg), q.pids, g.pids, q.camids, g.camids)),
                 ("images", "NFC (query, gallery separately)",
                  evaluate_ranking(cosine_distance(nfc(fq), nfc(fg)), q.pids, g.pids, q.camids, g.camids))]
        meta = {"model": {"name": w.name, "path": str(w.resolve())}}
        ta, tb = tracks_of(q, fq, meta), tracks_of(g, fg, meta)
        qp, gp = ta.track_ids, tb.track_ids
        per = centralize([ta, tb], CentralizeConfig("track+nfc"))
        joint = centralize([ta, tb], CentralizeConfig("track+nfc", scope="joint"))
        track = [("tracks", "track centres", metrics(track_centers(ta), track_centers(tb), qp, gp)),
                 ("tracks", "track + NFC per-file", metrics(per[0].features, per[1].features, qp, gp)),
                 ("tracks", "track + NFC joint", metrics(joint[0].features, joint[1].features, qp, gp))]
        t_post = time.perf_counter() - t
        for level, post, m in image + track:
            rows.append((w.name, level, post, m))
        print(f"{w.name}: embedded {len(q) + len(g)} crops in {t_embed:.1f} s; centralization + evaluation "
              f"{t_post:.2f} s")
        if args.write_tracks and w == weights[0]:
            from trackreid.models.weights import load_model

            full = {"model": {**load_model(w).describe()}} if w.suffix != ".onnx" else meta
            for name, tf in (("cam_a", ta), ("cam_b", tb)):
                written = write_features(TrackFeatures(tf.track_ids, tf.features, tf.all_features, tf.offsets,
                                                       tf.frame_indices, full), args.write_tracks / name)
                print("wrote", ", ".join(map(str, written)))
    print("\n| weights | level | post-processing | queries x gallery | mAP | rank-1 | mINP |")
    print("|---|---|---|---|---|---|---|")
    for name, level, post, m in rows:
        print(f"| {name} | {level} | {post} | {m.num_query} x {m.num_gallery} | {m.mAP:.1f} | {m.rank1:.1f} "
              f"| {m.mINP:.1f} |")


if __name__ == "__main__":
    main()
