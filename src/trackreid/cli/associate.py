"""``trackreid associate``: one global identity per person across cameras."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from trackreid.associate.config import LINKAGES, METHODS, AssociateConfig

NAME = "associate"
DEFAULTS = AssociateConfig()
HELP = "link the tracks of several cameras: one global id per person (step 4)"
DESCRIPTION = """\
Associate tracks across cameras from the features `trackreid extract` wrote for each camera.

  trackreid associate --features runs/camA --camera camA --features runs/camB --camera camB \\
      --output-dir runs/step4

  --features   an extract output folder (or its track_features.npz / .pkl); repeat per camera
  --camera     the name of the camera just given (default: its folder name)
  --cameras    a YAML file listing every camera instead (name, features, fps, time_offset,
               tracks; optional `links:` topology), for sites with many cameras:
                 cameras:
                   - {name: cam1, features: runs/cam1, fps: 10, time_offset: 0}
                   - {name: cam2, features: runs/cam2, fps: 10, time_offset: 3.5}

Two tracks of one camera that share a moment are never one person. --topology FILE lists
the camera pairs a person can walk between and their transit time in seconds:
  links:
    - {cameras: [cam1, cam2], transit: [2, 30]}
Only listed pairs link directly; --max-gap S bounds the time between a person's tracks.
--topology auto learns the windows instead: a first association gives, for each camera pair,
the transits of its links; the association then runs again with each pair's window set to
their median +- 3 robust sd (at least 1 s; a pair with fewer than 4 links stays unbounded).
--revisit-gap S (default 3): a person's tracks in ONE camera are at most S seconds apart
(pieces of one visit the tracker broke): someone who comes back to a camera later gets a
second identity. Where people do come back (shops, offices), pass --revisit-gap none.
When a camera's tracks file is known (from the extract metadata or the cameras file), two of
its tracks join only if they continue each other's motion across the gap between them: the
end of one, carried on at its last velocity, lands within 0.5 + 1 x gap(s) body heights of the
start of the other (--no-motion-gate turns this off).

--threshold auto (default) picks the similarity cut without labels: random cross-camera pairs
of tracks show how similar two different people look; the cut is set so that each track
expects only 0.4 chance matches above it among all tracks of the other cameras. It prints the
value and why, and saves threshold_histogram.png.

--corrections FILE: a reviewer's decisions from report.html (corrections.json: must_link,
cannot_link and confirmed pairs of camera:track) become exact constraints; a decision that no
longer applies (a track gone, features of another model) is reported in one line and left out.

Writes to --output-dir: global_ids.json, global_tracks/<camera>.txt, mtmc.txt (AI City
layout), summary.json, threshold_histogram.png and report.html. Score against ground truth
with `trackreid evaluate-mtmc --gt GT --pred OUT`. Details: docs/associate.md.
"""


class _FeaturesAction(argparse.Action):
    """``--features`` opens a camera entry; ``--camera`` names the last one opened."""

    def __call__(self, parser: argparse.ArgumentParser, ns: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        entries = list(getattr(ns, "inputs", None) or [])
        if self.dest == "features":
            entries.append({"features": values, "name": None})
        else:
            if not entries or entries[-1]["name"] is not None:
                parser.error(f"--camera {values}: give it right after the --features it names")
            entries[-1]["name"] = values
        ns.inputs = entries


def _threshold(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 'auto' or a number such as 0.6") from None


def _gap(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds such as 3, or 'none'") from None


def add_constraint_arguments(p: argparse.ArgumentParser, topology_auto: bool) -> None:
    """The flags of what can never be one person (topology, max gap, revisit gap, motion gate): one set for
    ``associate`` and ``adapt`` (whose pseudo identities obey the association's constraints)."""
    p.add_argument("--topology", metavar="FILE|auto" if topology_auto else "FILE",
                   help="YAML `links:` of camera pairs and transit [min, max] seconds" + (
                       "; auto: learn each camera pair's transit window from a first association (see above)"
                       if topology_auto else ""))
    p.add_argument("--max-gap", type=float, metavar="SECONDS", help="longest time between a person's tracks")
    p.add_argument("--revisit-gap", type=_gap, default=DEFAULTS.revisit_gap, metavar="SECONDS|none",
                   help="longest time between a person's tracks in ONE camera (default "
                        f"{'none' if DEFAULTS.revisit_gap is None else f'{DEFAULTS.revisit_gap:g} s'}; none: people "
                        "may come back)")
    p.add_argument("--no-motion-gate", dest="motion_gate", action="store_false",
                   help="let two tracks of one camera join without continuing each other's motion (default: "
                        "they must, when the camera's tracks file is known)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_camera_arguments(p)
    p.add_argument("--output-dir", required=True, metavar="DIR", help="folder for the outputs")
    p.add_argument("--threshold", type=_threshold, default=DEFAULTS.threshold, metavar="auto|FLOAT",
                   help="similarity at or above which clusters merge (default auto: chosen without labels)")
    p.add_argument("--threshold-method", choices=METHODS, default=DEFAULTS.threshold_method,
                   help="how --threshold auto cuts (default chance: above each track's expected best chance "
                        "match; bayes and mixture are the earlier rules, kept for comparison: docs/associate.md)")
    add_constraint_arguments(p, topology_auto=True)
    p.add_argument("--fps", type=float, help="frames per second for cameras whose metadata and cameras file give none")
    p.add_argument("--same-camera-margin", type=float, default=DEFAULTS.same_camera_margin, metavar="M",
                   help="lower the similarity of two tracks of ONE camera by M before clustering: joining a "
                        "camera's broken tracks needs more evidence than a cross-camera link (default "
                        f"{DEFAULTS.same_camera_margin:g}: off; e.g. 0.1, measured in docs/associate.md)")
    p.add_argument("--window", type=float, metavar="SECONDS",
                   help="compare a track only with the tracks within SECONDS of it (a person's tracks all lie "
                        "within it, e.g. 900), searched in time shards: linear in a day's tracks; default: all "
                        "pairs (docs/scale.md, 'Associating a large site')")
    p.add_argument("--k", type=int, default=DEFAULTS.k,
                   help=f"neighbours per track in the similarity graph (default {DEFAULTS.k})")
    p.add_argument("--linkage", choices=LINKAGES, default=DEFAULTS.linkage,
                   help="cluster similarity from the edges between two clusters (default average)")
    p.add_argument("--no-debias", dest="debias", action="store_false",
                   help="keep each camera's mean feature (default: subtract it, re-normalise)")
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking on the track graph")
    p.add_argument("--set-similarity", action="store_true",
                   help="compare tracks crop by crop (best matches) instead of by their mean feature")
    p.add_argument("--nfc", action="store_true", help="Pose2ID neighbour feature centralization before linking")
    p.add_argument("--hub-k", type=int, default=DEFAULTS.hub_k, metavar="K",
                   help="hubness correction (CSLS): lower each similarity s(i, j) by the mean of i's K best "
                        "matches in j's camera and j's K best in i's camera, e.g. --hub-k 10 (default 0: off; "
                        "measured in docs/associate.md: it did not help on every benchmark seed set)")
    p.add_argument("--corrections", metavar="FILE",
                   help="a reviewer's corrections.json (downloaded from report.html): its must-links and "
                        "cannot-links become exact constraints; summary.json and report.html list what each changed")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def _default_name(features: str) -> str:
    p = Path(features)
    return (p if p.is_dir() or not p.suffix else p.parent).resolve().name


def config_from_args(args: argparse.Namespace, topology: Any = None) -> AssociateConfig:
    """The flags as an :class:`AssociateConfig` (unset flags give the library's defaults)."""
    return AssociateConfig(threshold=args.threshold, threshold_method=args.threshold_method,
                           topology=topology, max_gap=args.max_gap,
                           revisit_gap=args.revisit_gap, motion_gate=args.motion_gate, fps=args.fps,
                           k=args.k, linkage=args.linkage, debias=args.debias, rerank=args.rerank,
                           set_similarity=args.set_similarity, centralize="nfc" if args.nfc else None,
                           hub_k=args.hub_k, same_camera_margin=args.same_camera_margin,
                           corrections=Path(args.corrections) if args.corrections else None, window=args.window)


def add_camera_arguments(p: argparse.ArgumentParser) -> None:
    """``--features DIR [--camera NAME]`` (repeatable) and ``--cameras FILE``: how commands take a site's cameras."""
    p.set_defaults(inputs=[])
    p.add_argument("--features", action=_FeaturesAction, dest="features", metavar="DIR",
                   help="a camera's extract output folder (or .npz/.pkl); repeat per camera")
    p.add_argument("--camera", action=_FeaturesAction, dest="camera", metavar="NAME",
                   help="name of the camera of the preceding --features (default: its folder name)")
    p.add_argument("--cameras", metavar="FILE", help="YAML file listing the cameras (see above)")


def cameras_from_args(args: argparse.Namespace, topology: Any = None) -> tuple[list[Any], Any]:
    """The cameras (:class:`~trackreid.associate.tracks.CameraInput`) of ``--features/--camera/--cameras``, and
    the topology (``topology``, or the cameras file's ``links:``)."""
    from trackreid.associate.cameras_file import read_cameras_file
    from trackreid.associate.tracks import CameraInput
    from trackreid.errors import InputError

    inputs = [(e["name"] or _default_name(e["features"]), e["features"]) for e in args.inputs]
    if args.cameras:
        names = [n for n, _ in inputs]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise InputError(f"camera {dup!r} is named twice; every camera needs its own --camera name")
        cameras, file_topology = read_cameras_file(args.cameras, dict(inputs))
        if topology is not None and file_topology is not None:
            given = getattr(args, "topology", None)
            raise InputError(f"{args.cameras} lists links and --topology {given} gives a topology too; give "
                             "the topology once: drop --topology, or the cameras file's links")
        topology = topology or file_topology
    elif inputs:
        cameras = [CameraInput(n, f) for n, f in inputs]
    else:
        raise InputError("no cameras: pass --features DIR [--camera NAME] for each camera, or --cameras FILE")
    return cameras, topology


def run(args: argparse.Namespace) -> int:
    from trackreid.associate.api import associate_to_folder
    from trackreid.cli.progress import make_progress

    topology: Any = None if not args.topology else "auto" if args.topology == "auto" else Path(args.topology)
    cameras, topology = cameras_from_args(args, topology)
    config = config_from_args(args, topology)
    result = associate_to_folder(cameras, args.output_dir, config, args.overwrite, make_progress(args.quiet))
    s = result.summary
    info = result.threshold_info
    print(f"threshold {result.threshold:.3f} ({info.get('chosen')}, {info.get('method')}): {info.get('why')}")
    per = ", ".join(f"{k} camera{'s' if k != '1' else ''}: {v}"
                    for k, v in s["identities_per_number_of_cameras"].items())
    print(f"{s['tracks']} tracks in {len(s['cameras'])} cameras -> {s['identities']} identities, "
          f"{s['identities_multi_camera']} seen by several cameras ({per})")
    learned = s["constraints"].get("topology_learned")
    if learned:
        from trackreid.associate.transit import describe_windows

        print(f"transit windows learned (--topology auto): {describe_windows(learned['pairs'])}")
    rej = {k: v for k, v in s["constraints"]["rejected_merges"].items() if v}
    if rej:
        print("merges refused by the constraints: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in rej.items()))
    fixes = s.get("corrections")
    if fixes is not None:
        from trackreid.associate.corrections import report_lines

        print("\n".join(report_lines(fixes)))
    from trackreid.associate.outputs import produces

    print(f"wrote {args.output_dir}: {', '.join(sorted(produces()))}")
    return 0
