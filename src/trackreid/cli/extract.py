"""``trackreid extract``: video + MOT tracks -> per-track features (seed Part A)."""

from __future__ import annotations

import argparse
from typing import Any

NAME = "extract"
HELP = "crop every tracked person, embed the crops with OSNet, write one feature per track"
DESCRIPTION = """\
Crop each tracked person from a video (or a MOT img1/ folder), embed at most
--max-crops-per-track crops per track with OSNet, and write per-track features.

Example:
  trackreid extract \\
    --source people-walking.mp4 \\
    --tracks runs/step2_tracking/exp/tracks/people-walking.txt \\
    --reid-model osnet_x0_25_msmt17.pth \\
    --output-dir runs/step3_reid_features --save-crops --max-crops-per-track 10

Writes to --output-dir:
  track_features.pkl    {track_id: {'features', 'all_features', 'frame_indices'}} (seed format)
  track_features.npz    the same without pickle (what other commands read)
  track_metadata.json   frames, crops, video, model, arguments, counts
  crops/track_0001/frame_000005_000.jpg   with --save-crops

Tracks: MOT rows frame,id,left,top,width,height[,conf,x,y,z] (1-based), comma or space
separated; ground truth (9 columns) is filtered to flag=1 pedestrians. Frames are counted
from 1 in presentation order, never seeked by index (see docs/formats.md).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    io = p.add_argument_group("inputs and outputs")
    io.add_argument("--source", required=True, help="video file (mp4, avi, mkv, mov, ...) or a folder of frames")
    io.add_argument("--tracks", required=True, help="MOT-format tracks (.txt) of that video")
    io.add_argument("--reid-model", required=True,
                    help="weights: .pth/.pt (torchreid, FastReID, boxmot), .safetensors (trackreid), .onnx, "
                         "or a zoo name (see `trackreid models list`)")
    io.add_argument("--output-dir", default="runs/step3_reid_features", help="where to write (default: %(default)s)")
    io.add_argument("--save-crops", action="store_true", help="also save the crops as JPEG files")
    io.add_argument("--overwrite", action="store_true", help="replace outputs already in --output-dir")
    io.add_argument("--segment-minutes", type=float,
                    help="checkpoint every M minutes of video into OUTPUT/.parts/: a killed run loses at most "
                         "one segment, and the same command again continues where it stopped")
    s = p.add_argument_group("sampling")
    s.add_argument("--max-crops-per-track", type=int, default=10, help="crops per track, evenly spread (default 10)")
    s.add_argument("--sampling", choices=("quality", "even"), default="quality",
                   help="quality: prefer unoccluded boxes of a useful size (default); even: plain even sampling")
    s.add_argument("--min-box-height", type=int, default=40, help="quality sampling: smallest usable box height")
    s.add_argument("--min-visibility", type=float, default=0.0, help="ground truth only: drop boxes less visible")
    s.add_argument("--frame-offset", type=int, default=0, help="add to frame numbers (1 for 0-based files)")
    s.add_argument("--max-shift", type=int, default=2,
                   help="frames a crop may move to land on a frame decoded anyway instead of an unreferenced "
                        "B-frame (H.264, HEVC, MPEG-4 with PyAV; 0: never move; default 2)")
    s.add_argument("--no-seek", action="store_true",
                   help="always decode every frame forward from the first with OpenCV (by default, with PyAV, "
                        "groups of pictures holding no sampled frame are skipped by keyframe seeks, unreferenced "
                        "pictures holding none are not decoded, and only the crops are converted to BGR)")
    m = p.add_argument_group("model and speed")
    m.add_argument("--reid-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="network input size (default: the model's, 256 128)")
    m.add_argument("--arch", help="architecture, when it cannot be inferred from the weights")
    m.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    m.add_argument("--backend", default="auto", choices=("auto", "torch", "onnx"),
                   help="inference backend (default: auto, the fastest correct one)")
    m.add_argument("--batch-size", type=int, default=32, help="crops per inference batch (default 32)")
    m.add_argument("--half", action="store_true", help="fp16 inference on CUDA")


def build(args: argparse.Namespace) -> tuple[Any, Any]:
    """Arguments -> (embedder, ExtractConfig)."""
    from trackreid.embed.factory import build_embedder
    from trackreid.errors import InputError
    from trackreid.extract import ExtractConfig
    from trackreid.sampling import SamplingConfig

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    embedder = build_embedder(args.reid_model, device=args.device, backend=args.backend, arch=args.arch,
                              half=args.half, batch_size=args.batch_size,
                              input_size=tuple(args.reid_size) if args.reid_size else None)
    sampling = SamplingConfig(max_crops_per_track=args.max_crops_per_track, strategy=args.sampling,
                              min_height=args.min_box_height, max_shift=args.max_shift)
    config = ExtractConfig(sampling=sampling, save_crops=args.save_crops, frame_offset=args.frame_offset,
                           min_visibility=args.min_visibility, overwrite=args.overwrite, seek=not args.no_seek)
    return embedder, config


def summary(result: Any) -> str:
    meta = result.metadata
    st = meta["stats"]
    lines = [
        "EXTRACTION SUMMARY",
        "=" * 70,
        f"{'Total tracks:':<20}{meta['num_tracks']}",
        f"{'Feature dimension:':<20}{meta['features']['dim']}",
        f"{'Output directory:':<20}{result.output_dir}",
    ]
    if result.crops_dir is not None:
        lines.append(f"{'Crops saved:':<20}{result.crops_dir}")
    lines += [
        f"{'Crops embedded:':<20}{st['crops_embedded']} ({meta['timing']['crops_per_second']} crops/s, "
        f"{meta['timing']['seconds']:.1f} s)",
        f"{'Model:':<20}{meta['model'].get('name')} ({meta['model'].get('arch')}, {meta['backend'].get('backend')})",
    ]
    if st.get("crops_moved_to_decoded_frames"):
        lines.append(f"{'Frames decoded:':<20}{st['frames_decoded']} ({st['crops_moved_to_decoded_frames']} crops "
                     "moved by at most --max-shift frames onto frames decoded anyway)")
    lines.append("=" * 70)
    skipped = {k: v for k, v in st.items() if k.startswith(("dropped_", "boxes_empty", "boxes_past", "crops_past"))
               and v}
    if skipped:
        lines.append("Skipped: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in skipped.items()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from trackreid.cli.progress import make_progress
    from trackreid.extract import extract

    embedder, config = build(args)
    command = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    if args.segment_minutes is not None:
        from trackreid.run.checkpoint import extract_checkpointed

        result = extract_checkpointed(args.source, args.tracks, embedder, args.output_dir, config,
                                      args.segment_minutes, make_progress(args.quiet), command)
    else:
        result = extract(args.source, args.tracks, embedder, args.output_dir, config, make_progress(args.quiet),
                         command)
    print(summary(result))
    return 0
