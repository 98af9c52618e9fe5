"""Re-ID losses: cross-entropy with label smoothing and the triplet loss with batch-hard mining."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy_ls(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Cross-entropy against ``(1 - eps) * onehot + eps / num_classes`` (Szegedy et al. 2016)."""
    logp = F.log_softmax(logits.float(), dim=1)
    with torch.no_grad():
        soft = torch.full_like(logp, epsilon / logits.shape[1])
        soft.scatter_(1, targets.view(-1, 1), 1 - epsilon + epsilon / logits.shape[1])
    return -(soft * logp).sum(dim=1).mean()


def pairwise_distance(x: torch.Tensor, cosine: bool = False) -> torch.Tensor:
    """Euclidean distances between rows (or ``1 - cos`` of L2-normalised rows)."""
    x = x.float()
    if cosine:
        x = F.normalize(x, dim=1)
        return 1 - x @ x.t()
    sq = (x * x).sum(dim=1, keepdim=True)
    d2 = sq + sq.t() - 2 * x @ x.t()
    return d2.clamp_min(1e-12).sqrt()


def triplet_loss(features: torch.Tensor, targets: torch.Tensor, margin: float = 0.3, norm_feat: bool = False,
                 hard_mining: bool = True) -> torch.Tensor:
    """Triplet loss over a batch (Hermans et al. 2017).

    ``hard_mining``: for each anchor the farthest positive and the nearest negative; otherwise
    softmax-weighted positives and negatives. ``margin`` 0 uses the soft margin
    ``log(1 + exp(d_ap - d_an))``. Anchors without a positive or a negative are left out.
    """
    dist = pairwise_distance(features, cosine=norm_feat)
    same = targets.view(-1, 1) == targets.view(1, -1)
    eye = torch.eye(len(targets), dtype=torch.bool, device=targets.device)
    pos = same & ~eye
    neg = ~same
    valid = pos.any(dim=1) & neg.any(dim=1)
    if not valid.any():
        return features.sum() * 0.0
    dist, pos, neg = dist[valid], pos[valid], neg[valid]
    if hard_mining:
        d_ap = dist.masked_fill(~pos, float("-inf")).max(dim=1).values
        d_an = dist.masked_fill(~neg, float("inf")).min(dim=1).values
    else:
        w_ap = torch.softmax(dist.masked_fill(~pos, float("-inf")), dim=1)
        w_an = torch.softmax((-dist).masked_fill(~neg, float("-inf")), dim=1)
        d_ap = (dist * w_ap).sum(dim=1)
        d_an = (dist * w_an).sum(dim=1)
    if margin > 0:
        return F.relu(d_ap - d_an + margin).mean()
    return F.softplus(d_ap - d_an).mean()
