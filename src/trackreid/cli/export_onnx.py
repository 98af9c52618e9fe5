"""``trackreid export-onnx``: weights -> a verified ONNX file plus its sidecar JSON."""

from __future__ import annotations

import argparse

NAME = "export-onnx"
HELP = "export weights to ONNX, verified against PyTorch with onnxruntime"
DESCRIPTION = """\
Export OSNet weights (a .pth/.pt/.safetensors file or a zoo name) to ONNX.

  trackreid export-onnx --reid-model osnet_x0_25_msmt17.pth --output osnet.onnx \\
      --verify-crops runs/cam1/crops

The graph takes float32 NCHW images, RGB, already normalised ((x/255 - mean) / std) and
returns the raw 512-d embedding. Batch is dynamic unless --static-batch N. The file passes
onnx.checker and is run with onnxruntime against PyTorch at batch 1 and 16 (cosine >= 0.9999
per row) before it is kept; on a mismatch nothing is written and the exit code is non-zero.
The input/output names, preprocessing and the source weights' sha256 go into osnet.onnx.json
and the model's metadata_props (key "trackreid").
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reid-model", required=True, metavar="WEIGHTS", help="weights file or zoo name")
    p.add_argument("--output", required=True, metavar="FILE.onnx", help="where to write the model")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--fp16", action="store_true",
                   help="float16 weights and compute, float32 input/output (for GPUs; slower on most CPUs)")
    p.add_argument("--uint8-input", action="store_true",
                   help="take RGB uint8 NHWC pixels and normalise inside the graph (not the torchreid convention)")
    p.add_argument("--static-batch", type=int, metavar="N", help="fixed batch size instead of a dynamic one")
    p.add_argument("--arch", help="check the weights against this architecture instead of inferring it")
    p.add_argument("--verify-crops", metavar="DIR",
                   help="folder of real person crops for the parity check (default: synthetic images)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from trackreid.export import export_onnx, read_crops

    crops = read_crops(args.verify_crops) if args.verify_crops else None
    result = export_onnx(args.reid_model, Path(args.output), opset=args.opset, fp16=args.fp16,
                         static_batch=args.static_batch, uint8_input=args.uint8_input, arch=args.arch,
                         verify_crops=crops,
                         crops_source=f"{len(crops)} crops from {args.verify_crops}" if crops else None,
                         overwrite=args.overwrite)
    info = result.info
    checks = ", ".join(f"{k.replace('_', ' ')} min cosine {v['min_cosine']:.7f}"
                       for k, v in info["verification"]["batches"].items())
    print(f"wrote {result.path} ({info['arch']}, opset {info['opset']}, "
          f"batch {info['static_batch'] or 'dynamic'}{', fp16' if info['fp16'] else ''})")
    print(f"verified with onnxruntime vs PyTorch on {info['verification']['crops']}: {checks}")
    print(f"wrote {result.sidecar}")
    if not args.quiet:
        inp, out, pre, src = info["input"], info["output"], info["preprocess"], info["source_weights"]
        where = "inside" if info["normalization_in_graph"] else "outside"
        print(f"  input  {inp['name']} {inp['dtype']} {inp['shape']} {inp['layout']} {inp['color']}, normalised "
              f"{where} the graph: (x/255 - mean) / std, mean {pre['mean']}, std {pre['std']}")
        print(f"  output {out['name']} {out['dtype']} {out['shape']} (raw embedding, not L2-normalised)")
        print(f"  source {src['name']} sha256 {src['sha256']}")
    return 0
