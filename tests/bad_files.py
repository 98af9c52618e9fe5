"""Builders of bad (and awkward but good) input files for the bad-input battery.

Every builder writes real files: model files that are not models, videos with zero frames or
an unsupported codec or rotation metadata, tracks files with headers and odd delimiters. The
videos need the ffmpeg command line tool (``ffmpeg_exe()``).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest


def ffmpeg_exe() -> str:
    """The ffmpeg executable; a skip when missing outside CI, a failure under CI."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("ffmpeg is required under CI (apt-get install ffmpeg)")
        pytest.skip("ffmpeg not found")
    return exe


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True, capture_output=True, timeout=120)


# -- files passed as --reid-model that are not models ---------------------------------------------

def text_file(path: Path, text: str = "this is not a model\n") -> Path:
    path.write_text(text)
    return path


def empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def torch_state_dict(path: Path) -> Path:
    import torch

    from trackreid.models.registry import create_model

    torch.manual_seed(0)
    torch.save(create_model("osnet_tiny").state_dict(), path)
    return path


def truncated(src: Path, path: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def jpeg_image(path: Path) -> Path:
    img = np.zeros((64, 32, 3), np.uint8)
    img[:, :, 1] = 200
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def zip_of_text(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "holiday photos\n")
        z.writestr("notes/list.csv", "a,b\n1,2\n")
    return path


def tar_of_text(path: Path) -> Path:
    with tarfile.open(path, "w") as t:
        data = b"holiday photos\n"
        info = tarfile.TarInfo("readme.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return path


def safetensors_wrong(path: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    save_file({"encoder.weight": torch.zeros(8, 4), "encoder.bias": torch.zeros(8)}, str(path))
    return path


def torch_non_tensors(path: Path) -> Path:
    import torch

    torch.save({"epoch": 3, "lr": 0.1, "names": ["a", "b"]}, path)
    return path


def unsafe_pickle(path: Path) -> Path:
    """A pickle that would call os.system if unpickled without restriction (never executed here)."""
    path.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    return path


def onnx_wrong_input(path: Path) -> Path:
    """A valid ONNX graph that is not an image model: input (N, 10) -> Relu -> output (N, 10)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "not_reid", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def onnx_one_channel(path: Path) -> Path:
    """An image-shaped graph with one channel (N, 1, 64, 32) -> global pool -> (N, 1)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 64, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]),
             helper.make_node("Flatten", ["p"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "gray", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def onnx_feature_map(path: Path) -> Path:
    """An RGB image graph whose only output is a feature map (N, 3, 64, 32), not an embedding."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 64, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 64, 32])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "fmap", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


# -- videos ------------------------------------------------------------------------------------

def frames_video(folder: Path, path: Path, *codec: str, fps: int = 10) -> Path:
    """Encode ``folder/%06d.png`` (or .jpg) with ffmpeg's ``codec`` options."""
    ext = next(iter(sorted(p.suffix for p in folder.iterdir())))
    ffmpeg("-framerate", str(fps), "-i", str(folder / f"%06d{ext}"), *codec, str(path))
    return path


def unknown_codec_video(folder: Path, path: Path) -> Path:
    """An AVI whose video stream names a codec no FFmpeg build has a decoder for (FourCC ``QZQZ``).

    The frames are MJPEG; only the FourCC in the headers (before the ``movi`` list) is changed,
    so every demuxer reads the file and every decoder lookup fails, whatever the installed build.
    """
    mjpeg = frames_video(folder, path.with_name(path.stem + "-mjpeg.avi"), "-c:v", "mjpeg")
    data = mjpeg.read_bytes()
    head = data.index(b"movi")
    assert data[:head].count(b"MJPG") >= 1
    path.write_bytes(data[:head].replace(b"MJPG", b"QZQZ").replace(b"mjpg", b"qzqz") + data[head:])
    mjpeg.unlink()
    return path


def zero_frame_video(path: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x48:r=10", "-frames:v", "0", "-c:v", "libx264", str(path))
    return path


def audio_only(path: Path) -> Path:
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "1", "-c:a", "aac", str(path))
    return path


def vfr_video(folder: Path, path: Path) -> Path:
    """Lossless FFV1 in MKV with uneven frame durations (1, 2, 3, ... ticks of 1/100 s)."""
    ext = next(iter(sorted(p.suffix for p in folder.iterdir())))
    ffmpeg("-framerate", "25", "-i", str(folder / f"%06d{ext}"), "-vf", "settb=1/1000,setpts=(N*N+N)/2/100/TB",
           "-fps_mode", "passthrough", "-enc_time_base", "1:1000", "-c:v", "ffv1", str(path))
    return path


def frame_times(path: Path) -> list[float]:
    """Presentation times of the video's packets (ffprobe), in seconds."""
    exe = shutil.which("ffprobe") or "ffprobe"
    res = subprocess.run([exe, "-v", "error", "-select_streams", "v", "-show_entries", "packet=pts_time",
                          "-of", "csv=p=0", str(path)], check=True, capture_output=True, text=True, timeout=60)
    return sorted(float(x) for x in res.stdout.split())


def rotated_video(src: Path, path: Path, degrees: int = 90) -> Path:
    """The same stream with rotation metadata (a display matrix), as phones write it."""
    ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", str(path))
    return path


def onnx_fixed_inside(path: Path) -> Path:
    """Declares any image size (N, 3, H, W) but only works for 64x32: Flatten -> MatMul (6144 x 8)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])
    w = numpy_helper.from_array(np.ones((3 * 64 * 32, 8), np.float32), "w")
    nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["y"])]
    graph = helper.make_graph(nodes, "fixed_inside", [x], [y], initializer=[w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path
