"""The onnxruntime backend: our own exports and third-party ONNX files alike.

What the graph expects is read, in this order, from the ``trackreid`` entry of the model's
``metadata_props`` (written by ``trackreid export-onnx``), from a sidecar JSON next to the
file (``model.onnx.json``, or ``model.json``), and otherwise assumed: torchreid
preprocessing (RGB, bilinear resize, /255, ImageNet mean/std), with a logged notice saying so.

Third-party files work without either: the one image input and the embedding output are
found by their shapes whatever their names; the input size comes from the input shape; a
fixed batch size is served by chunking and zero-padding; NHWC and float16 inputs are
converted. Subnormal ("denormal") float weights are set to zero before the session is built
(with the ``onnx`` package): they make CPU inference several times slower and change no
output (see docs/benchmarks.md).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from trackreid.embed.preprocess import normalize
from trackreid.errors import InputError, ModelError
from trackreid.models.registry import Preprocess

log = logging.getLogger(__name__)

METADATA_KEY = "trackreid"

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8,
           "tensor(double)": np.float64}


def sidecar_candidates(path: Path) -> list[Path]:
    """Where a sidecar JSON for ``path`` may be: ``x.onnx.json`` (ours) or ``x.json``."""
    return [path.with_name(path.name + ".json"), path.with_suffix(".json")]


def cpu_threads() -> int:
    """Intra-op threads for onnxruntime: ``$TRACKREID_THREADS`` or the CPUs this process may use."""
    env = os.environ.get("TRACKREID_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise InputError(f"TRACKREID_THREADS={env!r}: expected a positive integer")
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def zero_subnormal_initializers(model: Any) -> int:
    """Set subnormal values in a ModelProto's float initializers and constants to zero; return the count."""
    import onnx
    from onnx import numpy_helper

    def fix(tensor: Any) -> int:
        # float32/float64 only: float16 tensors are computed in float32 on the CPU, where their
        # subnormals are ordinary numbers (zeroing them would change the output).
        if tensor.data_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
            return 0
        arr = numpy_helper.to_array(tensor)
        if arr.size == 0:
            return 0
        mask = (arr != 0) & (np.abs(arr) < np.finfo(arr.dtype).tiny)
        n = int(mask.sum())
        if n:
            arr = arr.copy()
            arr[mask] = 0
            tensor.CopyFrom(numpy_helper.from_array(arr, tensor.name))
        return n

    def walk(graph: Any) -> int:
        count = sum(fix(t) for t in graph.initializer)
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    count += fix(attr.t)
                if attr.HasField("g"):
                    count += walk(attr.g)
                for g in attr.graphs:
                    count += walk(g)
        return count

    return walk(model.graph)


def _load_bytes(path: Path, zero_denormals: bool) -> tuple[bytes | str, int, dict[str, str]]:
    """The model for onnxruntime (bytes with denormals zeroed, or the path) and its metadata_props."""
    if not zero_denormals:
        return str(path), 0, {}
    try:
        import onnx
    except ImportError:
        log.info("%s: the onnx package is not installed, so subnormal weights were not checked "
                 "(they can slow CPU inference several-fold); pip install onnx", path)
        return str(path), 0, {}
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - onnx raises several types for a corrupt file
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise ModelError(f"{path}: not a readable ONNX model ({reason}); expected an .onnx file from "
                         "`trackreid export-onnx` or torch.onnx.export") from None
    count = zero_subnormal_initializers(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    if count:
        log.info("%s: set %d subnormal weights to zero (they slow CPU inference)", path, count)
    return proto.SerializeToString(), count, meta


def _providers(device: str) -> tuple[list[Any], str]:
    import onnxruntime as ort

    spec = device.strip().lower()
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if spec == "auto":
        if has_cuda:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"
        return ["CPUExecutionProvider"], "cpu"
    if spec == "cpu":
        return ["CPUExecutionProvider"], "cpu"
    if spec.startswith("cuda") or spec.isdigit():
        index = int(spec.split(":")[1]) if ":" in spec else (int(spec) if spec.isdigit() else 0)
        if not has_cuda:
            raise InputError(f"--device {device}: onnxruntime has no CUDA provider here (available: "
                             f"{', '.join(available)}); install onnxruntime-gpu or use --device cpu")
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"], f"cuda:{index}"
    if spec == "mps":
        log.info("--device mps: onnxruntime has no Metal provider; running on the CPU")
        return ["CPUExecutionProvider"], "cpu"
    raise InputError(f"--device {device!r}: expected auto, cpu, cuda, cuda:N or mps")


def ran_on(device: str, where: str, providers: list[str]) -> tuple[str, str | None]:
    """Where the session really runs, given the providers it started with; a note when not where asked.

    onnxruntime falls back to the CPU without an error when its CUDA provider cannot start
    (missing CUDA or cuDNN libraries). Asked for ``auto``, that is worth a warning; asked for
    CUDA by name, it is an error.
    """
    if not where.startswith("cuda") or "CUDAExecutionProvider" in providers:
        return where, None
    if device.strip().lower() == "auto":
        return "cpu", (f"onnxruntime could not start its CUDA provider (session providers: {', '.join(providers)}); "
                       "ran on the CPU")
    raise InputError(f"--device {device}: onnxruntime could not start its CUDA provider (the session got "
                     f"{', '.join(providers)}); check the CUDA and cuDNN libraries onnxruntime-gpu needs, "
                     "or use --device cpu")


def _read_info(path: Path, meta: dict[str, str]) -> tuple[dict[str, Any], str]:
    """The export description and where it came from (metadata, sidecar, or nothing)."""
    if METADATA_KEY in meta:
        try:
            return dict(json.loads(meta[METADATA_KEY])), "metadata"
        except json.JSONDecodeError as e:
            raise ModelError(f"{path}: the '{METADATA_KEY}' metadata is not valid JSON ({e})") from None
    for cand in sidecar_candidates(path):
        if cand.is_file():
            try:
                data = json.loads(cand.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise InputError(f"{cand}: sidecar of {path.name} is not readable JSON ({e}); fix or "
                                 "remove it") from None
            if not isinstance(data, dict):
                raise InputError(f"{cand}: expected a JSON object describing {path.name}")
            return data, f"sidecar {cand.name}"
    return {}, "none"


class OnnxBackend:
    """onnxruntime inference with the same input contract as every backend.

    ``run`` takes an RGB uint8 batch (N, H, W, 3) at the model's size and returns float32
    (N, D) raw embeddings, exactly as :class:`TorchBackend` does.
    """

    name = "onnx"

    def __init__(self, session: Any, path: Path, *, info: dict[str, Any], info_source: str, device: str,
                 denormals_zeroed: int = 0, arch: str | None = None, threads: int = 1,
                 input_size: tuple[int, int] | None = None, notes: list[str] | None = None) -> None:
        self.session = session
        self.path = path
        self.info = info
        self.info_source = info_source
        self.device = device
        self.denormals_zeroed = denormals_zeroed
        self._sha256: str | None = None
        self.threads = threads
        self.notes: list[str] = list(notes or [])
        self._pick_io(arch)
        if input_size is not None:
            self._set_input_size(*input_size)
        self.model_info = self._model_info()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_path(cls, path: str | Path, device: str = "auto", arch: str | None = None,
                  threads: int | None = None, zero_denormals: bool = True, spin: bool = False,
                  input_size: tuple[int, int] | None = None) -> OnnxBackend:
        """``input_size`` (height, width) replaces the described size; a graph of another fixed size refuses it."""
        import onnxruntime as ort

        path = Path(path)
        if path.is_dir():
            raise ModelError(f"{path}: is a folder; --reid-model expects an .onnx file")
        if not path.is_file():
            raise ModelError(f"{path}: no such ONNX file")
        threads = threads or cpu_threads()
        model, zeroed, meta = _load_bytes(path, zero_denormals)
        providers, where = _providers(device)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        # Idle worker threads sleep instead of spinning: on a busy machine (other processes on the
        # same cores) spinning made 2 threads 2-3x slower than 1; without it 2 threads are never
        # worse than 1 (docs/benchmarks.md).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0" if not spin else "1")
        so.log_severity_level = 3
        try:
            session = ort.InferenceSession(model, so, providers=providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ModelError(f"{path}: onnxruntime cannot load this model ({str(e).strip()[:300]})") from None
        where, note = ran_on(device, where, list(session.get_providers()))
        if note:
            log.warning("%s: %s", path, note)
        if not meta:
            meta = dict(session.get_modelmeta().custom_metadata_map)
        info, source = _read_info(path, meta)
        return cls(session, path, info=info, info_source=source, device=where, denormals_zeroed=zeroed, arch=arch,
                   threads=threads, input_size=input_size, notes=[note] if note else None)

    def _pick_io(self, arch: str | None) -> None:
        where = str(self.path)
        inputs = self.session.get_inputs()
        images = [i for i in inputs if len(i.shape) == 4]
        if len(inputs) != 1 or not images:
            desc = ", ".join(f"{i.name} {i.shape}" for i in inputs)
            raise ModelError(f"{where}: expected one image input of rank 4 (batch, 3, H, W), found {desc}")
        inp = images[0]
        self.input_name = inp.name
        if inp.type not in _DTYPES:
            raise ModelError(f"{where}: input {inp.name} has type {inp.type}; expected float, float16 or uint8")
        self.input_dtype = _DTYPES[inp.type]
        shape = list(inp.shape)
        declared = self.info.get("input", {}).get("layout") if isinstance(self.info.get("input"), dict) else None
        nhwc = declared == "NHWC" or (declared is None and shape[3] == 3 and shape[1] != 3)
        self.layout = "NHWC" if nhwc else "NCHW"
        h, w = (shape[1], shape[2]) if nhwc else (shape[2], shape[3])
        channels = shape[3] if nhwc else shape[1]
        if isinstance(channels, int) and channels != 3:
            raise ModelError(f"{where}: input {inp.name} {shape} takes {channels}-channel images; a re-id model "
                             "takes 3 channels (RGB). Pass the ONNX export of a person re-id network")
        self.fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None

        outputs = self.session.get_outputs()
        ranked = [o for o in outputs if len(o.shape) == 2] or [
            o for o in outputs if len(o.shape) == 4 and all(not isinstance(d, int) or d == 1 for d in o.shape[2:])]
        if not ranked:
            desc = ", ".join(f"{o.name} {o.shape}" for o in outputs)
            raise ModelError(f"{where}: no embedding output (batch, D) found among {desc}; a re-id model "
                             "outputs one feature vector per image")
        out = ranked[0]
        if len(outputs) > 1:
            log.info("%s: %d outputs; using %s %s as the embedding", where, len(outputs), out.name, out.shape)
        self.output_name = out.name

        pre_dict = self.info.get("preprocess")
        if isinstance(pre_dict, dict):
            pre = Preprocess.from_dict(pre_dict)
        else:
            pre = Preprocess()
            if isinstance(h, int) and isinstance(w, int):
                pre = Preprocess(height=h, width=w)
            log.warning("%s: no trackreid metadata or sidecar JSON found; assuming torchreid preprocessing "
                        "(RGB, %dx%d bilinear, /255, ImageNet mean/std, normalisation outside the graph). "
                        "Write %s to state otherwise", where, pre.height, pre.width,
                        sidecar_candidates(self.path)[0].name)
        self.graph_size = (h, w) if isinstance(h, int) and isinstance(w, int) else None
        if self.graph_size is not None and self.graph_size != (pre.height, pre.width):
            raise ModelError(f"{where}: the graph takes {h}x{w} images but its description says "
                             f"{pre.height}x{pre.width}; fix the sidecar JSON")
        self.preprocess = pre
        self.normalization_in_graph = bool(self.info.get("normalization_in_graph", self.input_dtype == np.uint8))
        self.arch = str(self.info.get("arch") or arch or "unknown")
        if arch and self.info.get("arch") and arch != self.info["arch"]:
            raise ModelError(f"{where}: --arch {arch} but the file was exported from {self.info['arch']}")

        d = out.shape[-1] if len(out.shape) == 2 else out.shape[1]
        if not isinstance(d, int):
            probe = np.zeros((1, pre.height, pre.width, 3), dtype=np.uint8)
            d = int(self._run_padded(probe).shape[1])
        self.feature_dim = int(d)

    def _set_input_size(self, height: int, width: int) -> None:
        if self.graph_size is not None and self.graph_size != (height, width):
            gh, gw = self.graph_size
            raise InputError(f"--reid-size {height} {width}: {self.path} takes only {gh}x{gw} images (its input "
                             f"shape is fixed); leave --reid-size out, or give the .pth/.safetensors weights "
                             "(their cached ONNX export takes any size)")
        self.preprocess = replace(self.preprocess, height=height, width=width)

    # -- inference ----------------------------------------------------------------------
    def _feed(self, batch: np.ndarray) -> np.ndarray:
        if self.normalization_in_graph:
            x = batch if self.input_dtype == np.uint8 else batch.astype(np.float32)
            x = x if self.layout == "NHWC" else x.transpose(0, 3, 1, 2)
        else:
            x = normalize(batch, self.preprocess)
            if self.layout == "NHWC":
                x = x.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(x, dtype=self.input_dtype)

    def _session_run(self, batch: np.ndarray) -> np.ndarray:
        try:
            out = self.session.run([self.output_name], {self.input_name: self._feed(batch)})[0]
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise ModelError(f"{self.path}: the graph fails on {len(batch)} RGB crops of "
                             f"{batch.shape[1]}x{batch.shape[2]} ({reason}); it is not a re-id model for this input, "
                             "or its input size differs: state it in a sidecar JSON or pass --reid-size H W") from None
        if out.ndim < 2 or out.shape[0] != len(batch):
            raise ModelError(f"{self.path}: output {self.output_name} has shape {out.shape} for a batch of "
                             f"{len(batch)}; expected one embedding per crop")
        return np.asarray(out)

    def _run_padded(self, batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        if self.fixed_batch is None:
            outs = [self._session_run(batch)]
        else:
            b = self.fixed_batch
            outs = []
            for i in range(0, n, b):
                chunk = batch[i:i + b]
                if len(chunk) < b:
                    pad = np.zeros((b - len(chunk), *chunk.shape[1:]), dtype=chunk.dtype)
                    chunk = np.concatenate([chunk, pad])
                outs.append(self._session_run(chunk))
        out = np.concatenate(outs) if len(outs) > 1 else outs[0]
        return np.asarray(out, dtype=np.float32).reshape(out.shape[0], -1)[:n]

    def run(self, batch: np.ndarray) -> np.ndarray:
        """RGB uint8 (N, H, W, 3) at the model's input size -> float32 (N, D)."""
        if len(batch) == 0:
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        return self._run_padded(batch)

    @property
    def sha256(self) -> str:
        """The ONNX file's sha256 (computed once)."""
        if self._sha256 is None:
            from trackreid.models.weights import sha256_file

            self._sha256 = sha256_file(self.path)
        return self._sha256

    def _model_info(self) -> dict[str, Any]:
        """What the weights are. For our exports: the source checkpoint's name and sha256, so that
        features of the same weights carry the same identity whichever backend ran them."""
        found = self.info.get("source_weights")
        source: dict[str, Any] = found if isinstance(found, dict) else {}
        return {
            "name": source.get("name") or self.path.name,
            "path": str(self.path),
            "arch": self.arch,
            "format": source.get("format") or "onnx",
            "weights_sha256": source.get("sha256") or self.sha256,
            "feature_dim": self.feature_dim,
            "preprocess": self.preprocess.to_dict(),
            "preprocess_source": self.info_source if self.info else "assumed (torchreid defaults)",
            "onnx": {"path": str(self.path), "sha256": self.sha256, "denormal_weights_zeroed": self.denormals_zeroed},
        }

    def describe(self) -> dict[str, Any]:
        return {
            "backend": "onnxruntime",
            "device": self.device,
            "providers": list(self.session.get_providers()),
            "threads": self.threads,
            "input": {"name": self.input_name, "layout": self.layout, "dtype": np.dtype(self.input_dtype).name,
                      "fixed_batch": self.fixed_batch, "normalization_in_graph": self.normalization_in_graph},
            "output": self.output_name,
            **({"notes": list(self.notes)} if self.notes else {}),
        }
