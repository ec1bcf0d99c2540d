"""FID and KID from feature vectors (Heusel et al. 2017; Binkowski et al. 2018).

    FID = |mu_1 - mu_2|^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))          features' means and covariances
    KID = unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets

Both take plain N x d arrays, so any feature extractor works; `metrics.inception` gives the standard one.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import linalg

logger = logging.getLogger(__name__)


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, as the FID tools compute it) of N x d features, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need an N x d array with N >= 2 to estimate a covariance, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """The Frechet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics of different sizes: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # A singular product (fewer samples than dimensions): nudge both covariances off singularity.
        logger.warning("FID: singular covariance product; adding %g to the diagonals", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            logger.warning("FID: sqrtm has an imaginary part of %g; using the real part",
                           float(np.max(np.abs(covmean.imag))))
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two sets of feature vectors (N1 x d and N2 x d)."""
    return frechet_distance(*gaussian_stats(features1), *gaussian_stats(features2))


def _polynomial_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples under the cubic polynomial kernel."""
    d = x.shape[1]
    m = x.shape[0]
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kid_from_features(features1: np.ndarray, features2: np.ndarray, *, subsets: int = 100,
                      subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """KID (mean, standard deviation over `subsets` random subsets of min(subset_size, N1, N2) samples each)."""
    x = np.asarray(features1, dtype=np.float64)
    y = np.asarray(features2, dtype=np.float64)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples on each side, got {len(x)} and {len(y)}")
    rng = np.random.default_rng(seed)
    values = [_polynomial_mmd(x[rng.choice(len(x), m, replace=False)], y[rng.choice(len(y), m, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))
