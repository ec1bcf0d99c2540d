"""FID and KID of two sets of feature vectors, computed by torchmetrics.

    FID = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))          features' means and covariances
    KID = unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets

The features (`metrics.inception`, or any extractor) reach torchmetrics through a pass-through "feature
network". i2i gathers them on one process, so torchmetrics' reduction across torchrun processes is turned off.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn


class _GivenFeatures(nn.Module):
    """Hands features computed elsewhere to a torchmetrics metric as if its own network had made them."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _as_tensor(features) -> torch.Tensor:
    features = torch.as_tensor(np.asarray(features, dtype=np.float64))
    if features.dim() != 2 or features.size(0) < 2:
        raise ValueError(f"need an N x d array with N >= 2, got shape {tuple(features.shape)}")
    return features


def fid_from_features(features1, features2) -> float:
    """FID between two sets of feature vectors (N1 x d and N2 x d), in float64."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    a, b = _as_tensor(features1), _as_tensor(features2)
    metric = FrechetInceptionDistance(feature=_GivenFeatures(a.size(1)), sync_on_compute=False)
    metric.update(a, real=False)
    metric.update(b, real=True)
    return float(metric.compute())


def kid_from_features(features1, features2, *, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """KID (mean, standard deviation over `subsets` random subsets of min(subset_size, N1, N2) samples each).

    The subsets are drawn from a generator seeded with `seed`, so the value is reproducible and the global RNG
    (a training run's) is left as it was."""
    from torchmetrics.image.kid import KernelInceptionDistance

    a, b = _as_tensor(features1), _as_tensor(features2)
    size = min(subset_size, a.size(0), b.size(0))
    with warnings.catch_warnings():  # it warns that it keeps every feature: so does i2i, 2048 numbers an image
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_GivenFeatures(a.size(1)), subsets=subsets, subset_size=size,
                                         sync_on_compute=False)
    metric.update(a, real=False)
    metric.update(b, real=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)
