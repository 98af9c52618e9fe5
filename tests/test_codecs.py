"""Real footage in other containers and codecs gives the crops and features of the frame folder.

The real MOT17 frames of ../shared/data (MOT17-05 at 640x480; MOT17-04 downscaled from
1920x1080 to 960x540 with its ground truth scaled to match) are encoded at the start of the
session with ffmpeg as AVI/MPEG-4 part 2, MKV/HEVC, WebM/VP9 and AVI/MJPEG. ``trackreid
extract`` on each video must choose the same crops (same tracks, same frame numbers) as on the
frame folder, the crops must match up to codec noise (PSNR), and the track features of the real
OSNet model must agree (cosine).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests import bad_files as bf
from trackreid.embed.backend import Embedder
from trackreid.embed.factory import build_embedder
from trackreid.extract import ExtractConfig, extract
from trackreid.io.features import read_features

CODECS = {
    "avi-mpeg4": ("clip.avi", ("-c:v", "mpeg4", "-q:v", "2")),
    "mkv-hevc": ("clip.mkv", ("-c:v", "libx265", "-crf", "18", "-preset", "fast",
                              "-x265-params", "log-level=error")),
    "webm-vp9": ("clip.webm", ("-c:v", "libvpx-vp9", "-crf", "15", "-b:v", "0", "-deadline", "realtime",
                               "-cpu-used", "8")),
    "avi-mjpeg": ("mjpeg.avi", ("-c:v", "mjpeg", "-q:v", "2")),
}
# People compared: at least MIN_HEIGHT pixels tall (at the encoded size) and half visible.
MIN_HEIGHT = 64
MIN_VISIBILITY = 0.5
# Codec noise bounds, measured here with margin (docs/robustness.md): mean crop PSNR per video,
# the worst crop's PSNR, the worst track's feature cosine and the mean over tracks.
MIN_MEAN_PSNR = 32.0
MIN_CROP_PSNR = 28.0
MIN_TRACK_COSINE = 0.92
MIN_MEAN_COSINE = 0.97


@dataclass
class Sequence:
    name: str
    folder: Path  # PNG frames (lossless): the reference
    gt: Path
    root: Path


def _prepare(src: Path, root: Path, scale: float) -> Sequence:
    folder = root / "img1"
    folder.mkdir(parents=True)
    for f in sorted((src / "img1").glob("*.jpg")):
        img = cv2.imread(str(f))
        if scale != 1.0:
            img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"{f.stem}.png"), img)
    rows = []
    for line in (src / "gt" / "gt.txt").read_text().splitlines():
        v = line.split(",")
        box = [float(x) for x in v[2:6]]
        # 1-based box corners scale about the pixel origin: left' = (left - 1) * s + 1
        box = [(box[0] - 1) * scale + 1, (box[1] - 1) * scale + 1, box[2] * scale, box[3] * scale]
        if box[3] < MIN_HEIGHT or float(v[8]) < MIN_VISIBILITY:
            continue  # tiny or mostly hidden people: their features are dominated by any pixel noise
        rows.append(",".join([v[0], v[1], *(f"{x:.2f}" for x in box), *v[6:]]))
    gt = root / "gt.txt"
    gt.write_text("\n".join(rows) + "\n")
    return Sequence(src.name, folder, gt, root)


def _extract(source: Path, seq: Sequence, embedder: Embedder, out: Path) -> Path:
    extract(source, seq.gt, embedder, out, ExtractConfig(save_crops=True))
    return out


@pytest.fixture(scope="session")
def encoded(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, msmt_onnx: Path) -> dict[str, Path]:
    """Per sequence: the frame folder's extract output and one per codec (key ``<seq>/<codec>``)."""
    bf.ffmpeg_exe()
    root = tmp_path_factory.mktemp("codecs")
    mot = shared_data / "mot17-mini" / "train"
    outputs: dict[str, Path] = {}
    embedder = build_embedder(msmt_onnx, device="cpu", batch_size=64)  # the real OSNet, onnxruntime
    for name, scale in (("MOT17-05-FRCNN", 1.0), ("MOT17-04-FRCNN", 0.5)):
        seq = _prepare(mot / name, root / name, scale)
        outputs[f"{name}/folder"] = _extract(seq.folder, seq, embedder, seq.root / "out-folder")
        for codec, (file_name, options) in CODECS.items():
            video = bf.frames_video(seq.folder, seq.root / file_name, *options, "-pix_fmt",
                                    "yuvj420p" if codec == "avi-mjpeg" else "yuv420p")
            outputs[f"{name}/{codec}"] = _extract(video, seq, embedder, seq.root / f"out-{codec}")
    return outputs


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("seq", ["MOT17-05-FRCNN", "MOT17-04-FRCNN"])
@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codec_gives_the_frame_folder_crops_and_features(encoded: dict[str, Path], seq: str, codec: str) -> None:
    ref, got = encoded[f"{seq}/folder"], encoded[f"{seq}/{codec}"]
    a, b = read_features(ref), read_features(got)
    assert len(a) >= 5
    assert b.track_ids.tolist() == a.track_ids.tolist()
    assert b.frame_indices.tolist() == a.frame_indices.tolist()  # same frames: numbering is exact
    cos = np.sum(a.features * b.features, axis=1)
    meta_a = json.loads((ref / "track_metadata.json").read_text())["tracks"]
    meta_b = json.loads((got / "track_metadata.json").read_text())["tracks"]
    psnrs = []
    for tid, entry in meta_a.items():
        assert meta_b[tid]["crops"] == entry["crops"]
        for crop in entry["crops"]:
            x, y = cv2.imread(str(ref / crop)), cv2.imread(str(got / crop))
            assert x.shape == y.shape
            psnrs.append(_psnr(x, y))
    assert cos.min() >= MIN_TRACK_COSINE and cos.mean() >= MIN_MEAN_COSINE, (codec, cos.min(), cos.mean())
    assert np.mean(psnrs) >= MIN_MEAN_PSNR and min(psnrs) >= MIN_CROP_PSNR, (codec, np.mean(psnrs), min(psnrs))
