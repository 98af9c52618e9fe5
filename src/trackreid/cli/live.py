"""``trackreid live``: global identities while the cameras run (a site replayed as if live)."""

from __future__ import annotations

import argparse

NAME = "live"
HELP = "replay a site (site.yml) as if live: each finished track gets its global identity at once"
DESCRIPTION = """\
Replay the videos and tracks of a site as if the cameras were running: each camera in its
own process feeds its frames and tracks to an OnlineCollector (no second decode); a track
ends when the tracker stops reporting it for --idle-frames frames, and one associator gives
it its global identity at once. Identities may merge or split later when the evidence
grows; every change is an event. The same constraints as `trackreid associate` hold after
every event.

Example:
  trackreid live --site site.yml --output-dir runs/live --speed 10

site.yml: the file of `trackreid run --site` (reid_model, cameras with name, video, tracks,
fps, time_offset; associate: options such as max_gap, revisit_gap, a topology file).
`associate: {topology: auto}` is refused (it learns from a whole day).

Writes to --output-dir:
  events.jsonl       one JSON object per line, as they happen:
                       {"seq": 1, "event": "assigned", "identity": 3, "tracks": ["camA:12"], ...}
                       {"event": "merged", "identity": 3, "absorbed": [7], "tracks": ["camB:4", ...]}
                       {"event": "split", "identity": 3, "into": {"9": ["camA:15"]}, "tracks": ["camA:15"]}
  live_state.sqlite  the associator's state (a rerun on the same folder continues from it)
  cameras/<name>/    each camera's features, as `trackreid extract` writes them
  associate/         at the end, the files of `trackreid associate` with the live identities
  live.json          cameras, latency (p50/p99 from a track's end to its identity), counts

On a Ray cluster (pip install 'trackreid[ray]'; the output folder on storage every node sees):
  trackreid live --site site.yml --output-dir /shared/runs/live --engine ray --address auto

Real cameras: run the same pieces in your own tracking loop (trackreid.live.LiveCamera
around an OnlineCollector, trackreid.associate.live.LiveAssociator); see docs/live.md.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, help="site.yml (or .csv): the cameras and shared options")
    p.add_argument("--output-dir", required=True, help="where to write (see above)")
    p.add_argument("--speed", default="1.0",
                   help="replay speed: a factor of real time (1.0: as the cameras ran, 10: ten times faster) or "
                        "'max' (as fast as decoding and embedding go); default 1.0")
    p.add_argument("--idle-frames", type=int, default=50,
                   help="a track unreported for this many frames has ended (default 50: 2 s at 25 fps)")
    p.add_argument("--reid-model", help="weights; replaces the site file's reid_model")
    p.add_argument("--overwrite", action="store_true", help="replay again into a folder that holds a finished run")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: one process per camera on this machine (default); ray: one Ray task per camera "
                        "on any node, the associator one actor on this node (outputs on storage every node sees)")
    p.add_argument("--address", help="ray: the cluster to join ('auto' = the one `ray start` made here); "
                   "without it a local Ray instance starts")


def run(args: argparse.Namespace) -> int:
    from trackreid.errors import InputError
    from trackreid.live.replay import parse_speed, run_live
    from trackreid.run import read_site

    speed = parse_speed(args.speed)
    if args.idle_frames < 1:
        raise InputError(f"--idle-frames {args.idle_frames}: expected at least 1 frame")
    site = read_site(args.site, reid_model=args.reid_model)
    command = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    if args.address and args.engine != "ray":
        raise InputError("--address names a Ray cluster; add --engine ray")
    result = run_live(site, args.output_dir, speed, overwrite=args.overwrite, idle_frames=args.idle_frames,
                      command=command, engine=args.engine, address=args.address)
    rep = result.report
    lat = rep["latency_seconds"]
    ev = rep["events"]
    print(f"{rep['tracks']} tracks -> {rep['identities']} identities; events: {ev['assigned']} assigned, "
          f"{ev['merged']} merged, {ev['split']} split")
    print(f"latency from a track's end to its identity: p50 {lat['p50'] * 1000:.1f} ms, p99 {lat['p99'] * 1000:.1f} "
          f"ms ({lat['tracks']} tracks)")
    for name, cam in rep["cameras"].items():
        print(f"camera {name}: {cam['status']}" + (f" ({cam['error']})" if "error" in cam else ""))
    print(f"outputs: {result.output_dir}/{{events.jsonl, associate/, live.json}}")
    for f in rep["failures"]:
        print(f"FAILED {f['camera']}: {f['error']}")
    return 0 if result.ok else 1
