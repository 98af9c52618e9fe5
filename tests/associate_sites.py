"""Extract-like camera folders built from REAL CUHK03 val features, for the associate tests.

Camera A sees identities' camera-A crops, camera B their camera-B crops (real OSNet features
of real crops). Part of the identities is seen by both cameras; people overlap in time within
a camera; each person reaches camera B some seconds after leaving camera A. Each folder holds
what `trackreid extract` writes (track_features.npz, track_metadata.json) plus a MOT tracks file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trackreid.embed.preprocess import l2_normalize
from trackreid.io.features import TrackFeatures, write_features

FPS = 10.0


def build_two_cameras(root: Path, q, g, qf: np.ndarray, gf: np.ndarray, shared: float = 0.7,  # type: ignore[no-untyped-def]
                      seed: int = 0, model_sha: str = "6f57607f") -> tuple[list[Path], dict[str, dict[int, int]]]:
    """(camera folders [camA, camB], truth camera -> track id -> person id)."""
    rng = np.random.default_rng(seed)
    people = np.unique(q.pids)
    rng.shuffle(people)
    n_shared = int(round(shared * len(people)))
    rest = people[n_shared:]
    only_a, only_b = rest[: len(rest) // 2], rest[len(rest) // 2:]
    in_a = np.concatenate([people[:n_shared], only_a])
    in_b = np.concatenate([people[:n_shared], only_b])
    enter_a = {int(p): int(rng.integers(1, 600)) for p in people}
    folders, truth = [], {}
    for name, members, pids, feats, delay in (("camA", in_a, q.pids, qf, 0), ("camB", in_b, g.pids, gf, 1)):
        folder = root / name
        folder.mkdir(parents=True)
        order = rng.permutation(len(members))
        items, table, rows, cam_truth = [], {}, [], {}
        for tid, m in enumerate(members[order].tolist(), 1):
            crops = l2_normalize(feats[pids == m])
            start = enter_a[m] + (int(rng.integers(80, 300)) if delay else 0)  # 8-30 s of transit
            length = int(rng.integers(30, 90))
            frames = np.linspace(start, start + length - 1, len(crops)).round().astype(np.int64)
            items.append((tid, l2_normalize(crops.mean(axis=0)), crops, frames))
            table[str(tid)] = {"num_frames": length, "first_frame": start, "last_frame": start + length - 1,
                               "frame_indices": frames.tolist(), "num_crops": len(crops)}
            x = 20 + 60 * (tid % 8)
            rows += [f"{f},{tid},{x},40,50,120,1,-1,-1,-1" for f in range(start, start + length)]
            cam_truth[tid] = m
        model = {"name": "osnet_x0_25_msmt17.pth", "weights_sha256": model_sha}
        tf = TrackFeatures.from_tracks(items, {"model": model, "source": name})
        write_features(tf, folder, pkl=False)
        (folder / "tracks.txt").write_text("\n".join(rows) + "\n")
        meta = {"video": {"fps": FPS}, "tracks_file": str(folder / "tracks.txt"), "model": model,
                "num_tracks": len(tf), "tracks": table}
        (folder / "track_metadata.json").write_text(json.dumps(meta))
        folders.append(folder)
        truth[name] = cam_truth
    return folders, truth


def pairwise_scores(global_ids: dict[str, dict[int, int]], truth: dict[str, dict[int, int]]) -> dict[str, float]:
    """Precision, recall and F1 over pairs of tracks (same person vs same global id)."""
    keys = [(c, t) for c in truth for t in truth[c]]
    person = np.array([truth[c][t] for c, t in keys])
    pred = np.array([global_ids[c][t] for c, t in keys])
    same_p = person[:, None] == person[None, :]
    same_g = pred[:, None] == pred[None, :]
    off = ~np.eye(len(keys), dtype=bool)
    tp = int((same_p & same_g & off).sum())
    fp = int((~same_p & same_g & off).sum())
    fn = int((same_p & ~same_g & off).sum())
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0}
