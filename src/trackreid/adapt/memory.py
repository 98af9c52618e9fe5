"""Label-free losses: a camera-aware track-centroid memory and a cross-camera pseudo-identity term.

The memory holds one L2-normalised centroid per track, initialised from the model's features
at the start of a round and updated with momentum by every training feature of the track.

* :meth:`TrackMemory.intra_loss`: contrastive (softmax) loss of a crop against the centroids
  of its own camera's tracks; the target is its track. Within one camera, tracks are
  different people (the constraint the tracker gives for free), so this needs no link.
* :meth:`TrackMemory.inter_loss`: contrastive loss against pseudo-identity centroids (mean of
  the linked tracks' centroids, every camera); only crops of linked tracks are scored, so an
  unlinked track is never pulled towards (or trained as) a class of its own across cameras.

A batch-hard triplet loss on the pseudo identities (:func:`trackreid.train.losses.triplet_loss`)
completes the objective in :mod:`trackreid.adapt.loop`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class TrackMemory:
    def __init__(self, centroids: np.ndarray, track_camera: np.ndarray, momentum: float = 0.2,
                 temperature: float = 0.05, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.bank = F.normalize(torch.from_numpy(np.ascontiguousarray(centroids)).float(), dim=1).to(self.device)
        self.camera = torch.from_numpy(np.asarray(track_camera, np.int64)).to(self.device)
        self.momentum = momentum
        self.temperature = temperature
        # index of each track within its camera, for the per-camera softmax
        cam = np.asarray(track_camera)
        local = np.zeros(len(cam), np.int64)
        for c in np.unique(cam):
            members = np.flatnonzero(cam == c)
            local[members] = np.arange(len(members))
        self.local = torch.from_numpy(local).to(self.device)
        self.clusters: torch.Tensor | None = None  # (T,) pseudo identity of each track, -1 unlinked
        self.num_clusters = 0

    def set_clusters(self, labels: np.ndarray, linked: np.ndarray) -> None:
        """Pseudo identities (``labels``); ``linked`` marks tracks whose identity spans several tracks."""
        lab = np.where(linked, labels, -1)
        uniq = np.unique(lab[lab >= 0])
        remap = {int(v): i for i, v in enumerate(uniq)}
        self.clusters = torch.tensor([remap.get(int(v), -1) for v in lab], dtype=torch.int64, device=self.device)
        self.num_clusters = len(uniq)

    def intra_loss(self, feats: torch.Tensor, tracks: torch.Tensor) -> torch.Tensor:
        f = F.normalize(feats.float(), dim=1)
        logits = f @ self.bank.t() / self.temperature  # (B, T)
        same_cam = self.camera.view(1, -1) == self.camera[tracks].view(-1, 1)
        logits = logits.masked_fill(~same_cam, float("-inf"))
        return F.cross_entropy(logits, tracks)

    def cluster_centroids(self) -> torch.Tensor:
        assert self.clusters is not None
        keep = self.clusters >= 0
        sums = torch.zeros(self.num_clusters, self.bank.shape[1], device=self.device)
        sums.index_add_(0, self.clusters[keep], self.bank[keep])
        return F.normalize(sums, dim=1)

    def inter_loss(self, feats: torch.Tensor, tracks: torch.Tensor) -> torch.Tensor:
        if self.clusters is None or self.num_clusters < 2:
            return feats.sum() * 0.0
        target = self.clusters[tracks]
        keep = target >= 0
        if not keep.any():
            return feats.sum() * 0.0
        f = F.normalize(feats[keep].float(), dim=1)
        logits = f @ self.cluster_centroids().t() / self.temperature
        return F.cross_entropy(logits, target[keep])

    @torch.no_grad()
    def update(self, feats: torch.Tensor, tracks: torch.Tensor) -> None:
        """``bank[t] = normalise(m * bank[t] + (1 - m) * f)`` for each feature, in batch order."""
        f = F.normalize(feats.detach().float(), dim=1)
        for x, t in zip(f, tracks.tolist(), strict=True):
            self.bank[t] = F.normalize(self.momentum * self.bank[t] + (1 - self.momentum) * x, dim=0)
