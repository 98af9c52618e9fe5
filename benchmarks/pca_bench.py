"""CUHK03-val accuracy after PCA to 256 / 128 / 64 dims, fitted on CUHK03-train features only.

    PYTHONPATH=src python benchmarks/pca_bench.py [--save-features DIR]

For each set of weights: embed CUHK03 train (7,239 crops, 743 ids) and val (938 crops, 100
other ids) with the default backend, fit the PCA on the train embeddings (never on val),
project val (L2-normalise, project, optionally whiten, L2-normalise: `trackreid reduce`) and
score query = camera A against gallery = camera B. The 512-d row is the baseline, same run.

``--save-features DIR`` also writes the .pth model's embeddings as track-features files
(``cuhk03_train.npz/.pkl``, ``cuhk03_val.npz/.pkl``; one "track" per identity and camera,
``frame_indices`` = the image slot) to try `trackreid reduce` on real features.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cuhk03_train, cuhk03_val, data_dir, machine, metrics  # noqa: E402

from trackreid.datasets import ImageSet  # noqa: E402
from trackreid.embed.factory import build_embedder  # noqa: E402
from trackreid.embed.preprocess import l2_normalize  # noqa: E402
from trackreid.io.features import TrackFeatures, write_features  # noqa: E402
from trackreid.reduce import fit_pca  # noqa: E402

DIMS = (256, 128, 64)


def as_tracks(s: ImageSet, feats: np.ndarray, model: dict) -> TrackFeatures:
    """One track per (identity, camera): its crops' features, their normalised mean, the slots."""
    items = []
    for pid, cam in sorted(set(zip(s.pids.tolist(), s.camids.tolist(), strict=True))):
        idx = np.flatnonzero((s.pids == pid) & (s.camids == cam))
        allf = feats[idx]
        mean = l2_normalize(l2_normalize(allf).mean(0, keepdims=True))[0]
        slots = [int(s.paths[i].stem.split("_")[1]) for i in idx]
        items.append((pid * 10 + cam, mean, allf, np.array(slots)))
    return TrackFeatures.from_tracks(items, {"model": model, "source": "CUHK03 crops, track = identity x camera"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--save-features", type=Path, metavar="DIR", help="write the .pth embeddings as track features")
    args = ap.parse_args()
    print(f"machine: {machine()}", flush=True)
    t0 = time.perf_counter()
    q, g, qi, gi = cuhk03_val()
    ts, ti = cuhk03_train()
    print(f"read {len(ti)} train + {len(qi) + len(gi)} val crops in {time.perf_counter() - t0:.1f}s", flush=True)
    weights = data_dir() / "weights"
    rows = []
    for name in ("osnet_x0_25_msmt17.pth", "osnet_x0_25_msmt17.onnx"):
        emb = build_embedder(weights / name, device="cpu", batch_size=32)
        t = time.perf_counter()
        ft, fq, fg = emb.embed(ti), emb.embed(qi), emb.embed(gi)
        secs = time.perf_counter() - t
        print(f"{name}: embedded {len(ti) + len(qi) + len(gi)} crops in {secs:.1f}s "
              f"({emb.backend.describe()['backend']})", flush=True)
        if args.save_features and name.endswith(".pth"):
            model = {k: emb.backend.model_info.get(k) for k in ("name", "arch", "weights_sha256")}
            write_features(as_tracks(ts, ft, model), args.save_features, "cuhk03_train")
            both = ImageSet(q.paths + g.paths, np.concatenate([q.pids, g.pids]), np.concatenate([q.camids, g.camids]))
            write_features(as_tracks(both, np.concatenate([fq, fg]), model), args.save_features, "cuhk03_val")
        base = metrics(fq, fg, q, g)
        rows.append((name, "512 (none)", "-", "-", base.mAP, base.rank1))
        centred = fit_pca(ft, 511)  # every component but the last: centring and a rotation, nothing dropped
        m = metrics(centred.transform(fq), centred.transform(fg), q, g)
        rows.append((name, "511 (centred only)", "no", f"{100 * centred.variance_kept:.1f}", m.mAP, m.rank1))
        for dim in DIMS:
            fitted = fit_pca(ft, dim)
            for whiten in (False, True):
                pca = replace(fitted, whiten=whiten)
                m = metrics(pca.transform(fq), pca.transform(fg), q, g)
                rows.append((name, str(dim), "yes" if whiten else "no", f"{100 * pca.variance_kept:.1f}",
                             m.mAP, m.rank1))
                print(f"  {dim} whiten={whiten}: mAP {m.mAP:.2f} rank-1 {m.rank1:.2f}", flush=True)
    print()
    print("| weights | dims | whiten | train variance kept % | CUHK03-val mAP | rank-1 |")
    print("|---|---|---|---|---|---|")
    for name, dim, wh, var, m_ap, r1 in rows:
        print(f"| {name} | {dim} | {wh} | {var} | {m_ap:.1f} | {r1:.1f} |")


if __name__ == "__main__":
    main()
