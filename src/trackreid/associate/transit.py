"""``--topology auto``: learn each camera pair's transit window from a first association.

People walk between two cameras in a typical time (a corridor takes 5-10 s, a car park a
minute), and a link between two strangers implies a transit drawn at random from the whole
recording. So a first association, at the same threshold and with every other constraint,
gives for each pair of cameras the transits of its cross-camera steps (within each identity,
tracks ordered by start time; a step between cameras ``a`` and ``b`` is next start minus
previous end, as in :mod:`trackreid.associate.constraints`). Most of them are right, and the
wrong ones are spread out; their robust centre and spread set the window:

    ``[median - SPREAD x sd, median + SPREAD x sd]``, ``sd = max(1.4826 x MAD, MIN_SD)``

(:data:`SPREAD` 3: a Gaussian's 99.7 %; :data:`MIN_SD` 1 s, so a few nearly equal transits do
not make a window narrower than the clock's and the tracker's own jitter). A camera pair with
fewer than :data:`MIN_STEPS` steps gets no window (any transit, as a listed pair without
``transit``): too little evidence. The association then runs again with these windows as a
topology. Time offsets between the cameras' clocks are learned with the transit (a camera
whose clock runs 30 s late shows transits 30 s off, consistently).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trackreid.associate.tracks import TrackSet

#: Half-width of a learned window, in robust standard deviations of its pair's transits.
SPREAD = 3.0
#: Smallest robust standard deviation of a learned window, seconds.
MIN_SD = 1.0
#: Cross-camera steps a camera pair needs for a learned window.
MIN_STEPS = 4


def camera_steps(tracks: TrackSet, labels: np.ndarray) -> dict[tuple[int, int], list[float]]:
    """``{(camera a, camera b) with a < b: [transit seconds of each step between them]}`` within identities."""
    out: dict[tuple[int, int], list[float]] = {}
    order = np.lexsort((np.arange(len(labels)), tracks.start, labels))
    lab = labels[order]
    for p, q, same in zip(order[:-1].tolist(), order[1:].tolist(), (lab[:-1] == lab[1:]).tolist(), strict=True):
        cp, cq = int(tracks.camera[p]), int(tracks.camera[q])
        if same and cp != cq:
            out.setdefault((min(cp, cq), max(cp, cq)), []).append(float(tracks.start[q] - tracks.end[p]))
    return out


def learn_topology(tracks: TrackSet, labels: np.ndarray, spread: float = SPREAD, min_sd: float = MIN_SD,
                   min_steps: int = MIN_STEPS) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(a topology dict for :class:`~trackreid.associate.constraints.Constraints`, what was learned per pair).

    Every camera pair is listed (a pair without enough steps with no ``transit``: any time), so the
    topology only bounds transits, it never forbids a pair. See the module docstring.
    """
    steps = camera_steps(tracks, labels)
    cams = tracks.cameras
    links: list[dict[str, Any]] = []
    learned: list[dict[str, Any]] = []
    for a in range(len(cams)):
        for b in range(a + 1, len(cams)):
            t = np.asarray(steps.get((a, b), []), np.float64)
            entry: dict[str, Any] = {"cameras": [cams[a], cams[b]], "steps": len(t)}
            if len(t) >= min_steps:
                med = float(np.median(t))
                sd = max(1.4826 * float(np.median(np.abs(t - med))), min_sd)
                window = [round(med - spread * sd, 3), round(med + spread * sd, 3)]
                entry.update(median=round(med, 3), sd=round(sd, 3), transit=window)
                links.append({"cameras": [cams[a], cams[b]], "transit": window})
            else:
                entry["transit"] = None
                links.append({"cameras": [cams[a], cams[b]]})
            learned.append(entry)
    return {"links": links, "_source": "--topology auto"}, learned


def describe_windows(learned: list[dict[str, Any]]) -> str:
    """One line of the windows :func:`learn_topology` learned, e.g. ``cam1-cam2 2.9..8.9 s (13 links)``."""
    return ", ".join(f"{e['cameras'][0]}-{e['cameras'][1]} "
                     + (f"{e['transit'][0]:.1f}..{e['transit'][1]:.1f} s" if e.get("transit") else "any time")
                     + f" ({e['steps']} links)" for e in learned)
