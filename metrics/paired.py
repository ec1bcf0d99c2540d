"""Metrics of image pairs: PSNR and SSIM (Wang et al. 2004), on 8-bit images as they are saved.

Inputs are float tensors N x C x H x W in [0, data_range] (255 for saved PNGs); one value per image. SSIM
uses the paper's settings (11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03) and averages the SSIM map
over the positions where the window fits, as the authors' code and scikit-image do; torchmetrics' SSIM also
averages over reflect-padded borders, hence these few lines (tests check them against scikit-image).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB (inf for identical images)."""
    _check(a, b)
    mse = ((a.double() - b.double()) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0, window: int = 11,
         sigma: float = 1.5) -> torch.Tensor:
    """Mean structural similarity per image."""
    _check(a, b)
    if min(a.shape[-2:]) < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window} pixels, got {tuple(a.shape[-2:])}")
    channels = a.size(1)
    coords = torch.arange(window, dtype=torch.float64) - (window - 1) / 2  # the Gaussian window, on the CPU
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum()).to(a.device)
    kernel = (g[:, None] * g[None, :]).expand(channels, 1, window, window).contiguous()

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, kernel, groups=channels)

    x, y = a.double(), b.double()
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(1)


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"expected two N x C x H x W tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
