"""Evaluation during training: embed query and gallery, rank, Market-1501 protocol."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trackreid.datasets import ImageSet
from trackreid.evaluate import ReidMetrics, cosine_distance, evaluate_ranking
from trackreid.models.registry import Preprocess
from trackreid.progress import NullProgress, Progress
from trackreid.train.data import ImageLoader, to_tensor


@torch.no_grad()
def embed_images(model: nn.Module, images: ImageSet, preprocess: Preprocess, device: torch.device,
                 batch_size: int = 128, flip: bool = False, workers: int = 1,
                 progress: Progress | None = None, channels_last: bool = False) -> np.ndarray:
    """The model's eval-mode embedding of every image, as a float32 (N, D) array."""
    was_training = model.training
    model.eval()
    loader = ImageLoader(preprocess, workers)
    progress = progress or NullProgress()
    feats: list[np.ndarray] = []
    try:
        for i in range(0, len(images), batch_size):
            paths = images.paths[i:i + batch_size]
            x = to_tensor(loader.load(paths), preprocess.mean, preprocess.std).to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            f = model(x)
            if flip:
                f = (f + model(x.flip(3))) / 2
            feats.append(f.float().cpu().numpy())
            progress.advance(len(paths))
    finally:
        loader.close()
        model.train(was_training)
    return np.concatenate(feats) if feats else np.zeros((0, 0), np.float32)


def distance(qf: np.ndarray, gf: np.ndarray, metric: str) -> np.ndarray:
    if metric == "euclidean":
        q2 = (qf * qf).sum(1)[:, None]
        g2 = (gf * gf).sum(1)[None, :]
        return np.sqrt(np.maximum(q2 + g2 - 2 * qf @ gf.T, 0))
    return cosine_distance(qf, gf)


def evaluate_model(model: nn.Module, query: ImageSet, gallery: ImageSet, preprocess: Preprocess,
                   device: torch.device, batch_size: int = 128, metric: str = "cosine", flip: bool = False,
                   workers: int = 1, progress: Progress | None = None, channels_last: bool = False) -> ReidMetrics:
    """mAP / CMC of ``model`` on a query and gallery set (same person and view ignored)."""
    progress = progress or NullProgress()
    progress.start("evaluate", len(query) + len(gallery), "images")
    kw = dict(preprocess=preprocess, device=device, batch_size=batch_size, flip=flip, workers=workers,
              progress=progress, channels_last=channels_last)
    qf = embed_images(model, query, **kw)  # type: ignore[arg-type]
    gf = embed_images(model, gallery, **kw)  # type: ignore[arg-type]
    progress.finish()
    return evaluate_ranking(distance(qf, gf, metric), query.pids, gallery.pids, query.camids, gallery.camids)
