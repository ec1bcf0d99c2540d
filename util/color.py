"""sRGB <-> CIE L*a*b* (D65 white, 2-degree observer) in torch, for whole image batches on any device.

    lab = rgb_to_lab(rgb)   # rgb in [0, 1], shape [..., 3, H, W]  ->  L in [0, 100], a and b roughly [-110, 110]
    rgb = lab_to_rgb(lab)   # back, clipped to [0, 1]

scikit-image's constants (the reference's colorization used its `rgb2lab`/`lab2rgb`), so values agree with it.
"""

from __future__ import annotations

import torch

# Linear sRGB -> XYZ (D65), and the D65 reference white.
_RGB_TO_XYZ = torch.tensor([[0.412453, 0.357580, 0.180423],
                            [0.212671, 0.715160, 0.072169],
                            [0.019334, 0.119193, 0.950227]], dtype=torch.float64)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_EPSILON = 0.008856  # (6/29)^3: below it the cube root is replaced by a line
_KAPPA_SLOPE = 7.787  # slope of that line, (29/6)^2 / 3
_OFFSET = 16.0 / 116.0


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 colour matrix along the channel axis (-3) of [..., 3, H, W]."""
    return torch.einsum("ij,...jhw->...ihw", matrix.to(device=x.device, dtype=x.dtype), x)


def _per_channel(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(device=like.device, dtype=like.dtype).view(3, 1, 1)


def _check(x: torch.Tensor, what: str) -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{what} expects [..., 3, H, W] tensors, got shape {tuple(x.shape)}")


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] ([..., 3, H, W]) -> L*a*b* with L in [0, 100]."""
    _check(rgb, "rgb_to_lab")
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = _mix(_RGB_TO_XYZ, linear) / _per_channel(_WHITE, rgb)
    f = torch.where(xyz > _EPSILON, xyz.clamp_min(_EPSILON) ** (1.0 / 3.0), _KAPPA_SLOPE * xyz + _OFFSET)
    fx, fy, fz = f.unbind(-3)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """L*a*b* ([..., 3, H, W]) -> sRGB clipped to [0, 1] (colours outside the sRGB gamut are clipped)."""
    _check(lab, "lab_to_rgb")
    L, a, b = lab.unbind(-3)
    fy = (L + 16.0) / 116.0
    f = torch.stack([fy + a / 500.0, fy, fy - b / 200.0], dim=-3)
    xyz = torch.where(f**3 > _EPSILON, f**3, (f - _OFFSET) / _KAPPA_SLOPE) * _per_channel(_WHITE, lab)
    linear = _mix(_XYZ_TO_RGB, xyz).clamp_min(0.0)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055, 12.92 * linear)
    return rgb.clamp(0.0, 1.0)
