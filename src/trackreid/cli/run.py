"""``trackreid run``: every camera of a site extracted (segment by segment), then associated."""

from __future__ import annotations

import argparse
import time
from typing import Any

NAME = "run"
HELP = "extract every camera of a site (site.yml) and associate them; resumable; local processes or Ray"
DESCRIPTION = """\
Run a whole site: extract every camera listed in --site, segment by segment, on local
processes (default) or on a Ray cluster, then associate the cameras' tracks into global
identities. Rerunning the same command skips what is finished; a killed run resumes.

Example:
  trackreid run --site site.yml --output-dir runs/site --workers 2

site.yml (paths relative to the file; a CSV with columns name,video,tracks[,fps,time_offset]
works too, with --reid-model):
  reid_model: weights/osnet_x0_25_msmt17.pth
  max_crops_per_track: 10
  cameras:
    - {name: camA, video: camA.mp4, tracks: camA.txt}
    - {name: camB, video: camB.mp4, tracks: camB.txt, time_offset: 2.5}

Other keys: sampling, min_box_height, min_visibility, frame_offset, tracks_format,
save_crops, batch_size, backend, device, arch, segment_minutes, associate (a mapping of
association options: threshold, max_gap, topology, ...).

Writes to --output-dir (default runs/<site file stem>):
  cameras/<name>/      each camera's extract outputs (track_features.npz/.pkl, track_metadata.json)
  associate/           global_ids.json, summary.json, global_tracks/, mtmc.txt, report.html
  run.json             what ran, where, how long, what failed

On a Ray cluster (pip install 'trackreid[ray]'; outputs on storage every node sees):
  ray start --head            # then on each other node: ray start --address HEAD:6379
  trackreid run --site site.yml --engine ray --address auto --output-dir /shared/runs/site
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", required=True, help="site.yml (or .csv): the cameras and shared options")
    p.add_argument("--output-dir", help="where to write (default: runs/<site file stem>)")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: a pool of processes on this machine (default); ray: a Ray cluster")
    p.add_argument("--workers", type=int, help="local: worker processes (default: half the cores; threads per "
                   "worker so that workers x threads = cores); ray: segments at once")
    p.add_argument("--address", help="ray: the cluster to join ('auto' = the one `ray start` made here); "
                   "without it a local Ray instance starts")
    p.add_argument("--force", action="store_true", help="rerun every segment and the association")
    p.add_argument("--segment-minutes", type=float,
                   help="work unit and checkpoint length (default 30: whole videos shorter than 30 minutes)")
    p.add_argument("--reid-model", help="weights; replaces the site file's reid_model")
    p.add_argument("--no-associate", action="store_true", help="extract only")


class SiteProgress:
    """Jobs done / running / failed and crops/s over all jobs, on a progress bar (quiet off a TTY)."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.running: set[str] = set()
        self.done = self.failed = self.crops = 0
        self.t0 = time.perf_counter()

    def __call__(self, event: tuple[str, str, dict[str, Any]]) -> None:
        kind, job, info = event
        if kind == "planned":
            self.progress.start("run", info["jobs"], "segments")
            return
        step = 0
        if kind == "start":
            self.running.add(job)
        elif kind in ("done", "failed", "retry"):
            self.running.discard(job)
            if kind != "retry":
                step = 1
                self.done += kind == "done"
                self.failed += kind == "failed"
                self.crops += int(info.get("crops") or 0)
        rate = self.crops / max(time.perf_counter() - self.t0, 1e-9)
        self.progress.advance(step, running=len(self.running), failed=self.failed, crops_per_s=f"{rate:.1f}")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trackreid.cli.extract import summary
    from trackreid.cli.progress import make_progress
    from trackreid.errors import InputError
    from trackreid.run import read_site, run_site

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    if args.segment_minutes is not None and args.segment_minutes <= 0:
        raise InputError(f"--segment-minutes must be positive, got {args.segment_minutes}")
    site = read_site(args.site, reid_model=args.reid_model)
    out = Path(args.output_dir) if args.output_dir else Path("runs") / Path(args.site).stem
    progress = make_progress(args.quiet)
    command = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    try:
        result = run_site(site, out, engine=args.engine, workers=args.workers, address=args.address,
                          force=args.force, segment_minutes=args.segment_minutes, on_event=SiteProgress(progress),
                          command=command, associate=not args.no_associate)
    finally:
        progress.finish()
    rep = result.report
    for cam in site.cameras:
        entry = rep["cameras"].get(cam.name, {})
        print(f"\ncamera {cam.name}: {entry.get('status')}")
        if cam.name in result.cameras:
            print(summary(result.cameras[cam.name]))
    assoc = rep["associate"]
    print(f"\nASSOCIATION: {assoc.get('status')}")
    for k, v in assoc.items():
        if k != "status" and not isinstance(v, (dict, list)):
            print(f"  {k}: {v}")
    if isinstance(assoc.get("corrections"), dict):
        from trackreid.associate.corrections import report_lines

        print("\n".join(f"  {line}" for line in report_lines(assoc["corrections"])))
    for f in rep["failures"]:
        print(f"FAILED {f['camera']}: {f['error']}")
    print(f"\n{len(result.cameras)}/{len(site.cameras)} cameras done in {rep['seconds']:.1f} s; "
          f"report: {out / 'run.json'}")
    return 0 if result.ok else 1
