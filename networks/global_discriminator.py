"""A discriminator that gives one real/fake score per image (DCGAN / DiscoGAN style), at any input size.

The output is N x 1 x 1 x 1: a one-cell "patch map", so every GAN loss and the gradient penalty take it as
they take a PatchGAN map.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import DISCRIMINATORS
from .norm import NormLayer, conv_bias_for


class GlobalDiscriminator(nn.Module):
    """Stride-2 4x4 convs widening ndf -> 8ndf (capped), global average pool, 1x1 conv: one logit per image."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, *, norm_layer: NormLayer) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        use_bias = conv_bias_for(norm_layer)
        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        width = ndf
        for k in range(1, n_layers + 1):
            new_width = ndf * min(2**k, 8)
            layers += [
                nn.Conv2d(width, new_width, kernel_size=4, stride=2, padding=1, bias=use_bias),
                norm_layer(new_width),
                nn.LeakyReLU(0.2, True),
            ]
            width = new_width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(width, 1, kernel_size=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@DISCRIMINATORS.register("global")
def global_discriminator(
    input_nc: int, ndf: int = 64, *, n_layers: int = 3, norm_layer: NormLayer
) -> GlobalDiscriminator:
    """One score per image: `--n_layers_D`+1 stride-2 convs, global average pool, 1x1 conv (DiscoGAN's D)."""
    return GlobalDiscriminator(input_nc, ndf, n_layers, norm_layer=norm_layer)
