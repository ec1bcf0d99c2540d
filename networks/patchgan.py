"""PatchGAN discriminators (`--netD basic`, `n_layers`, `pixel`): they score overlapping patches, not the whole
image. Attribute names (`model`, `net`) and layer indices match the reference's checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import DISCRIMINATORS
from .antialias import Downsample
from .norm import NormLayer, conv_bias_for


class NLayerDiscriminator(nn.Module):
    """Stride-2 4x4 convs widening ndf -> 8ndf (capped), then two stride-1 convs down to a 1-channel logit map.

    Convolutions sit at indices 0, 2, 5, ..., 3*n_layers+2 of `model`; the first and last always have a bias.
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, *, norm_layer: NormLayer,
                 antialias: bool = False) -> None:
        """`antialias`: each stride-2 conv becomes stride 1 plus a blur `Downsample`, as CUT builds it
        (networks/antialias_patchgan.py); this shifts the Sequential indices to CUT's keys."""
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        use_bias = conv_bias_for(norm_layer)
        down_stride = 1 if antialias else 2

        def downsample(width: int) -> list[nn.Module]:
            return [Downsample(width)] if antialias else []

        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=4, stride=down_stride, padding=1),
            nn.LeakyReLU(0.2, True),
            *downsample(ndf),
        ]
        width = ndf
        for k in range(1, n_layers + 1):
            last = k == n_layers  # the last widening conv keeps the resolution
            new_width = ndf * min(2**k, 8)
            layers += [
                nn.Conv2d(width, new_width, kernel_size=4, stride=1 if last else down_stride, padding=1,
                          bias=use_bias),
                norm_layer(new_width),
                nn.LeakyReLU(0.2, True),
                *([] if last else downsample(new_width)),
            ]
            width = new_width
        layers.append(nn.Conv2d(width, 1, kernel_size=4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN: in -> ndf -> 2ndf -> 1 with 1x1 convolutions, a logit per pixel."""

    def __init__(self, input_nc: int, ndf: int = 64, *, norm_layer: NormLayer) -> None:
        super().__init__()
        use_bias = conv_bias_for(norm_layer)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, kernel_size=1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, bias=use_bias),
            norm_layer(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, kernel_size=1, bias=use_bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@DISCRIMINATORS.register("basic")
def basic_patchgan(
    input_nc: int, ndf: int = 64, *, n_layers: int = 3, norm_layer: NormLayer
) -> NLayerDiscriminator:
    """70x70 PatchGAN (3 layers); `--n_layers_D` is ignored."""
    return NLayerDiscriminator(input_nc, ndf, 3, norm_layer=norm_layer)


@DISCRIMINATORS.register("n_layers")
def n_layers_patchgan(
    input_nc: int, ndf: int = 64, *, n_layers: int = 3, norm_layer: NormLayer
) -> NLayerDiscriminator:
    """PatchGAN with `--n_layers_D` stride-2 layers (deeper sees larger patches)."""
    return NLayerDiscriminator(input_nc, ndf, n_layers, norm_layer=norm_layer)


@DISCRIMINATORS.register("pixel")
def pixel_patchgan(
    input_nc: int, ndf: int = 64, *, n_layers: int = 3, norm_layer: NormLayer
) -> PixelDiscriminator:
    """1x1 PatchGAN, a real/fake logit per pixel; `--n_layers_D` is ignored."""
    return PixelDiscriminator(input_nc, ndf, norm_layer=norm_layer)
