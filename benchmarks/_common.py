"""Helpers shared by the benchmark scripts: the shared data, CUHK03 images, machine line."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import cv2
import numpy as np

from trackreid.datasets import ImageSet, cuhk03_query_gallery, read_image_set
from trackreid.evaluate import ReidMetrics, cosine_distance, evaluate_ranking

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("TRACKREID_DATA")
    d = Path(env) if env else ROOT.parent / "shared" / "data"
    if not (d / "weights").is_dir():
        raise SystemExit(f"shared data not found at {d}; set TRACKREID_DATA")
    return d


def read_images(s: ImageSet) -> list[np.ndarray]:
    out = []
    for p in s.paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f"{p}: unreadable image")
        out.append(img)
    return out


def cuhk03_val() -> tuple[ImageSet, ImageSet, list[np.ndarray], list[np.ndarray]]:
    q, g = cuhk03_query_gallery(data_dir() / "cuhk03" / "val")
    return q, g, read_images(q), read_images(g)


def cuhk03_train() -> tuple[ImageSet, list[np.ndarray]]:
    s = read_image_set(data_dir() / "cuhk03" / "train", "cuhk03")
    return s, read_images(s)


def metrics(fq: np.ndarray, fg: np.ndarray, q: ImageSet, g: ImageSet) -> ReidMetrics:
    return evaluate_ranking(cosine_distance(fq, fg), q.pids, g.pids, q.camids, g.camids)


def machine() -> str:
    import onnxruntime
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {len(os.sched_getaffinity(0))} CPUs, torch {torch.__version__}, onnxruntime "
            f"{onnxruntime.__version__}, load average at start {load:.1f}")
