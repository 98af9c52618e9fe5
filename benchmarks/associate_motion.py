"""The motion gate on the synth sites of ``associate_bench.py``, counted with the labels.

Two tables, summed over the sites:

* **Candidate pairs**: every ordered pair of tracks of one camera that the revisit gap allows
  (the later starts 0-3 s after the earlier ends): how many are one person's broken track and
  how many of each kind the gate lets through (``Endpoints.allows``, the library's own test).
* **Joins at the auto threshold**: pairs of tracks put in one identity by ``associate`` with
  default options, with and without the gate: same-camera pairs and cross-camera pairs, right
  (one person) and wrong.

    python benchmarks/associate_motion.py --work /tmp/assoc_bench --seeds 20      # seeds 0-19, both site sizes
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import machine
from associate_bench import SITES, prepare_sites

from trackreid.associate import AssociateConfig, associate
from trackreid.associate.api import REVISIT_GAP, read_tracks_files
from trackreid.associate.tracks import load_cameras

ROOT = Path(__file__).resolve().parents[1]


def pair_counts(labels: np.ndarray, camera: np.ndarray, person: np.ndarray) -> dict[str, int]:
    """Pairs of tracks in one identity: same camera / cross camera, right / wrong."""
    out = dict.fromkeys(("same_right", "same_wrong", "cross_right", "cross_wrong"), 0)
    for g in np.unique(labels):
        m = np.flatnonzero(labels == g)
        for x in range(len(m)):
            for y in range(x + 1, len(m)):
                a, b = m[x], m[y]
                kind = "same" if camera[a] == camera[b] else "cross"
                out[f"{kind}_{'right' if person[a] == person[b] else 'wrong'}"] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "associate_bench")
    ap.add_argument("--seeds", type=int, default=2, help="sites per camera count, from --first-seed")
    ap.add_argument("--first-seed", type=int, default=0)
    args = ap.parse_args()
    print(machine())
    t0 = time.perf_counter()
    cand = {"true": [0, 0], "false": [0, 0]}  # [pairs, let through]
    joins = {gate: dict.fromkeys(("same_right", "same_wrong", "cross_right", "cross_wrong"), 0)
             for gate in (False, True)}
    sites = 0
    for p in prepare_sites(args.work, SITES, args.first_seed, args.seeds):
        tracks, loaded = load_cameras(p.cameras, with_crops=False)
        person = np.array([p.truth[tracks.cameras[c]][int(t)] for c, t in zip(tracks.camera, tracks.track_id,
                                                                                strict=True)])
        ends, _ = read_tracks_files(tracks, loaded)
        for c in range(len(tracks.cameras)):
            rows = np.flatnonzero(tracks.camera == c)
            for a in rows:
                gap = tracks.start[rows] - tracks.end[a]
                for b in rows[(gap > 0) & (gap <= REVISIT_GAP)]:
                    kind = "true" if person[a] == person[b] else "false"
                    cand[kind][0] += 1
                    cand[kind][1] += int(ends.allows(int(a), int(b), float(tracks.start[b] - tracks.end[a])))
        for gate in (False, True):
            r = associate(p.cameras, AssociateConfig(motion_gate=gate))
            for k, v in pair_counts(r.labels, r.tracks.camera, person).items():
                joins[gate][k] += v
        sites += 1
    print(f"\n{sites} sites (seeds {args.first_seed}-{args.first_seed + args.seeds - 1}, 2 and 3 cameras)\n")
    print("| candidate pairs of one camera (later starts 0-3 s after the earlier ends) | pairs | let through |")
    print("|---|---|---|")
    for kind, name in (("true", "one person's broken track"), ("false", "two people")):
        n, ok = cand[kind]
        print(f"| {name} | {n} | {ok} ({100 * ok / max(n, 1):.0f} %) |")
    print("\n| pairs in one identity at the auto threshold | same camera right | same camera wrong | "
          "cross-camera right | cross-camera wrong |")
    print("|---|---|---|---|---|")
    for gate in (False, True):
        j = joins[gate]
        print(f"| {'with' if gate else 'without'} the motion gate | {j['same_right']} | {j['same_wrong']} | "
              f"{j['cross_right']} | {j['cross_wrong']} |")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
