"""Anti-aliased resampling (Zhang, "Making Convolutional Networks Shift-Invariant Again", 2019), as CUT uses it.

A strided convolution samples without low-pass filtering, so small shifts of the input change the output a
lot. `Downsample` blurs with a fixed binomial filter before taking every second pixel; `Upsample` inserts
zeros and interpolates with a fixed binomial filter (a transposed convolution). The filters are buffers
named `filt` (one copy per channel, depthwise), which is why CUT checkpoints carry keys like `model.7.filt`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

_BINOMIAL = {1: [1.0], 2: [1.0, 1.0], 3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0], 5: [1.0, 4.0, 6.0, 4.0, 1.0]}


def binomial_filter(size: int, channels: int, scale: float = 1.0) -> torch.Tensor:
    """A normalised `size` x `size` binomial kernel times `scale`, repeated per channel: [channels, 1, size, size]."""
    if size not in _BINOMIAL:
        raise ValueError(f"filter size must be one of {sorted(_BINOMIAL)}, got {size}")
    row = torch.tensor(_BINOMIAL[size])
    kernel = torch.outer(row, row)
    kernel = kernel / kernel.sum() * scale
    return kernel.expand(channels, 1, size, size).clone()


class Downsample(nn.Module):
    """Blur, then keep every `stride`-th pixel: H x W -> ceil(H/stride) x ceil(W/stride) for the default 3x3 filter.
    Reflection padding keeps the borders from darkening."""

    def __init__(self, channels: int, filt_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.channels, self.stride = channels, stride
        before = (filt_size - 1) // 2
        self.padding = (before, filt_size - 1 - before, before, filt_size - 1 - before)  # left, right, top, bottom
        self.register_buffer("filt", binomial_filter(filt_size, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.padding, mode="reflect")
        return F.conv2d(x, self.filt, stride=self.stride, groups=self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, filt_size={self.filt.shape[-1]}, stride={self.stride}"


class Upsample(nn.Module):
    """Insert zeros between pixels and interpolate with a binomial filter: H x W -> 2H x 2W (stride 2).

    The filter sums to stride**2, so a constant image stays constant; replicate padding of one pixel keeps
    the border values, and the transposed convolution's own padding crops the result back to exactly 2H x 2W.
    """

    def __init__(self, channels: int, filt_size: int = 4, stride: int = 2) -> None:
        super().__init__()
        self.channels, self.stride = channels, stride
        self.register_buffer("filt", binomial_filter(filt_size, channels, scale=stride**2))
        # (H + 2 - 1) * stride - 2 * crop + filt_size == stride * H  =>  crop = (stride + filt_size) // 2
        self.crop = (stride + filt_size) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (1, 1, 1, 1), mode="replicate")
        return F.conv_transpose2d(x, self.filt, stride=self.stride, padding=self.crop, groups=self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, filt_size={self.filt.shape[-1]}, stride={self.stride}"
