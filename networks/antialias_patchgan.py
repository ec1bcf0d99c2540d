"""The PatchGAN discriminator as CUT builds it: every stride-2 convolution becomes stride 1 plus a blur `Downsample`.

Keys for n_layers=3 (CUT's checkpoints): `model.0` conv, `model.2.filt`, `model.3` conv, `model.6.filt`,
`model.7` conv, `model.10.filt`, `model.11` conv, `model.14` final conv; norms at 4, 8, 12. Same parameters
as the reference's PatchGAN, slightly different receptive field, output side about the same.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import DISCRIMINATORS
from .antialias import Downsample
from .norm import NormLayer, conv_bias_for


class AntialiasNLayerDiscriminator(nn.Module):
    """PatchGAN with `n_layers` anti-aliased downsamplings, widening ndf -> 8ndf (capped), then a 1-channel map."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, *, norm_layer: NormLayer) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        use_bias = conv_bias_for(norm_layer)
        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=4, stride=1, padding=1),
            nn.LeakyReLU(0.2, True),
            Downsample(ndf),
        ]
        width = ndf
        for k in range(1, n_layers + 1):
            new_width = ndf * min(2**k, 8)
            layers += [
                nn.Conv2d(width, new_width, kernel_size=4, stride=1, padding=1, bias=use_bias),
                norm_layer(new_width),
                nn.LeakyReLU(0.2, True),
            ]
            if k < n_layers:  # the last widening conv keeps the resolution, as in the plain PatchGAN
                layers.append(Downsample(new_width))
            width = new_width
        layers.append(nn.Conv2d(width, 1, kernel_size=4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@DISCRIMINATORS.register("antialias_basic")
def antialias_basic(
    input_nc: int, ndf: int = 64, *, n_layers: int = 3, norm_layer: NormLayer
) -> AntialiasNLayerDiscriminator:
    """Anti-aliased 3-layer PatchGAN (CUT's default D; loads CUT checkpoints); `--n_layers_D` is ignored."""
    return AntialiasNLayerDiscriminator(input_nc, ndf, 3, norm_layer=norm_layer)


@DISCRIMINATORS.register("antialias_n_layers")
def antialias_n_layers(
    input_nc: int, ndf: int = 64, *, n_layers: int = 3, norm_layer: NormLayer
) -> AntialiasNLayerDiscriminator:
    """Anti-aliased PatchGAN with `--n_layers_D` downsamplings."""
    return AntialiasNLayerDiscriminator(input_nc, ndf, n_layers, norm_layer=norm_layer)
