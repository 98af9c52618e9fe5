"""``trackreid centralize``: track centres, Pose2ID NFC and IPG fusion on features files."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from trackreid.centralize import DEFAULT_CHUNK, METHODS, SCOPES

NAME = "centralize"
HELP = "centralize track features: track means, Pose2ID neighbour centralization (NFC), IPG fusion"
DESCRIPTION = """\
Pull each track's feature towards its identity's centre (training-free, after Pose2ID).

  trackreid centralize --features runs/step3_reid/track_features.pkl \\
      --output runs/step3_reid/enhanced_features.pkl --method track+nfc

  --method track       the mean of the track's L2-normalised crop features, re-normalised (default)
  --method nfc         Neighbour Feature Centralization over the tracks' stored features:
                       add each track's mutual nearest neighbours (k1, k2), re-normalise
  --method track+nfc   track means, then NFC over them

Several cameras: repeat --features and give --output-dir; --scope per-file (default, as
Pose2ID treats query and gallery) runs NFC within each file, --scope joint across all tracks.
Each output is <input stem>_enhanced.{pkl,npz} (parent folder prepended when stems clash).

IPG fusion: --generated DIR holds one folder per track (track_0001/ or 1/) of pose-generated
images of that person (made with Pose2ID's diffusion model on a GPU; not shipped). They are
embedded with the features' model (from the metadata, or --reid-model), averaged and added
with weight --eta before NFC.

Writes PATH (.pkl, the seed's structure with 'features' replaced) and PATH with .npz (safe
format, metadata records method and parameters). Inputs are .npz, .pkl (read without running
code) or an extract output folder.
"""

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", action="append", required=True, metavar="PATH",
                   help="track features (.pkl/.npz or an extract folder); repeat for several files")
    p.add_argument("--output", metavar="PATH",
                   help="output for one input: PATH.pkl and PATH.npz (default: enhanced_features.pkl "
                        "beside the input)")
    p.add_argument("--output-dir", metavar="DIR",
                   help="folder for one output per input, named <input stem>_enhanced.{pkl,npz}")
    p.add_argument("--method", choices=METHODS, default="track", help="what to do (default: track)")
    p.add_argument("--k1", type=int, default=2, help="NFC: nearest neighbours per track (default 2)")
    p.add_argument("--k2", type=int, default=2, help="NFC: a neighbour counts if the track is among its k2 "
                   "nearest (default 2)")
    p.add_argument("--scope", choices=SCOPES, default="per-file",
                   help="NFC within each file (default) or across the tracks of all files")
    p.add_argument("--generated", action="append", metavar="DIR",
                   help="IPG: folder of pose-generated images per track; once per --features, same order")
    p.add_argument("--eta", type=float, default=2.0, help="IPG: weight of the generated images' mean feature "
                   "(default 2, as Pose2ID)")
    p.add_argument("--reid-model", help="IPG: weights to embed generated images with (default: the model "
                   "named in the features' metadata)")
    p.add_argument("--device", default="auto", help="IPG: cpu, cuda, cuda:N or auto")
    p.add_argument("--batch-size", type=int, default=32, help="IPG: images per forward pass")
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK,
                   help=f"NFC: rows compared with all others at a time; memory ~ 4 x chunk x N bytes "
                        f"(default {DEFAULT_CHUNK})")
    p.add_argument("--no-pkl", action="store_true", help="write only the safe .npz, not the seed's .pkl")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")


def _outputs(args: argparse.Namespace) -> list[tuple[Path, str]]:
    from trackreid.centralize import output_stems
    from trackreid.errors import InputError, OutputError

    inputs = [Path(f) for f in args.features]
    if args.output and args.output_dir:
        raise InputError("give --output (one input) or --output-dir, not both")
    if args.output:
        if len(inputs) > 1:
            raise InputError(f"--output names one file but {len(inputs)} --features were given; use "
                             "--output-dir for one output per input")
        out = Path(args.output)
        if out.suffix not in (".pkl", ".npz"):
            raise InputError(f"--output {out}: expected a .pkl or .npz name (both are written)")
        if out.is_dir():
            raise OutputError(f"--output {out}: is a folder; give a file name or use --output-dir")
        return [(out.parent, out.stem)]
    if args.output_dir:
        d = Path(args.output_dir)
        if d.exists() and not d.is_dir():
            raise OutputError(f"--output-dir {d}: exists and is a file")
        return [(d, stem) for stem in output_stems(inputs)]
    if len(inputs) > 1:
        raise InputError(f"{len(inputs)} --features given: name a folder for the outputs with --output-dir")
    src = inputs[0]
    return [(src if src.is_dir() else src.parent, "enhanced_features")]


def run(args: argparse.Namespace) -> int:
    from trackreid.centralize import CentralizeConfig, centralize, generated_features, model_input_size, model_path
    from trackreid.cli.progress import make_progress
    from trackreid.errors import InputError, OutputError
    from trackreid.io.features import read_features, write_features

    config = CentralizeConfig(args.method, args.k1, args.k2, args.scope, args.eta, args.chunk)
    if args.generated and len(args.generated) != len(args.features):
        raise InputError(f"{len(args.generated)} --generated for {len(args.features)} --features: give one "
                         "folder of generated images per features file, in the same order")
    outputs = _outputs(args)
    suffixes = (".npz",) if args.no_pkl else (".npz", ".pkl")
    existing = [d / f"{s}{x}" for d, s in outputs for x in suffixes if (d / f"{s}{x}").exists()]
    if existing and not args.overwrite:
        raise OutputError(f"{existing[0]}: exists; pass --overwrite to replace it or choose another output")
    inputs = [str(f) for f in args.features]
    if len({(d.resolve(), s) for d, s in outputs}) != len(outputs):
        raise OutputError("two inputs would write the same output; use --output-dir with distinct inputs")
    for (d, s), f in zip(outputs, inputs, strict=True):
        for x in (".npz", ".pkl"):
            if (d / f"{s}{x}").resolve() == Path(f).resolve():
                raise OutputError(f"{f}: the output would replace the input; choose another --output")

    tfs = [read_features(f) for f in inputs]
    gens = None
    if args.generated:
        from trackreid.embed.factory import build_embedder

        prog = make_progress(args.quiet)
        gens = []
        embedders: dict[str, object] = {}
        for tf, src, folder in zip(tfs, inputs, args.generated, strict=True):
            weights = model_path(tf, args.reid_model, src)
            size = model_input_size(tf)  # the generated images are embedded as the tracks' crops were
            key = f"{weights} {size}"
            if key not in embedders:
                embedders[key] = build_embedder(weights, device=args.device, batch_size=args.batch_size,
                                                input_size=size)
            emb = embedders[key]
            gens.append(generated_features(tf, folder, emb.embed, prog))  # type: ignore[attr-defined]
    result = centralize(tfs, config, generated=gens, sources=inputs)
    for tf, (d, stem) in zip(result, outputs, strict=True):
        written = write_features(tf, d, stem, pkl=not args.no_pkl)
        rec = tf.meta["centralize"]
        line = f"{rec['input']}: {len(tf)} tracks, method {rec['method']}"
        if "tracks_with_mutual_neighbours" in rec:
            line += (f", NFC k1={rec['k1']} k2={rec['k2']} ({rec['scope']}): "
                     f"{rec['tracks_with_mutual_neighbours']} tracks gained mutual neighbours "
                     f"(mean {rec['mutual_neighbours_mean']:.2f})")
        if "tracks_with_generated" in rec:
            line += f", IPG eta={rec['eta']:g} on {rec['tracks_with_generated']} tracks"
        print(line)
        print("  wrote " + ", ".join(str(p) for p in written))
    return 0
