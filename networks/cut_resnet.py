"""The ResNet generator as CUT builds it: anti-aliased down- and up-sampling around the residual blocks.

Each stride-2 convolution of the reference's ResNet becomes a stride-1 convolution followed by a blur
`Downsample`; each transposed convolution becomes an `Upsample` followed by a 3x3 convolution. The module
tree reproduces CUT's state_dict keys (9 blocks, no dropout):

    model.1  7x7 conv in->ngf        model.4  conv ngf->2ngf     model.7.filt  blur [2ngf,1,3,3]
    model.8  conv 2ngf->4ngf         model.11.filt               model.12 ... model.20  residual blocks
    model.21.filt [4ngf,1,4,4]       model.22 conv 4ngf->2ngf    model.25.filt   model.26 conv 2ngf->ngf
    model.30 final 7x7 conv

With both `antialias=False` and `antialias_up=False` the layout is exactly the reference's ResnetGenerator,
so one class serves CUT's `--no_antialias --no_antialias_up` too. Same parameter count either way.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import GENERATORS
from .antialias import Downsample, Upsample
from .norm import NormLayer, conv_bias_for
from .resnet import ResnetBlock


class AntialiasResnetGenerator(nn.Module):
    """ResNet generator whose resampling is anti-aliased (down with `antialias`, up with `antialias_up`)."""

    n_downsampling = 2

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int = 64,
        *,
        norm_layer: NormLayer,
        use_dropout: bool = False,
        n_blocks: int = 9,
        antialias: bool = True,
        antialias_up: bool = True,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        use_bias = conv_bias_for(norm_layer)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        for i in range(self.n_downsampling):
            width = ngf * 2**i
            if antialias:
                layers += [nn.Conv2d(width, width * 2, kernel_size=3, stride=1, padding=1, bias=use_bias),
                           norm_layer(width * 2), nn.ReLU(True), Downsample(width * 2)]
            else:
                layers += [nn.Conv2d(width, width * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                           norm_layer(width * 2), nn.ReLU(True)]
        bottleneck = ngf * 2**self.n_downsampling
        layers += [ResnetBlock(bottleneck, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(self.n_downsampling, 0, -1):
            width = ngf * 2**i
            if antialias_up:
                layers += [Upsample(width), nn.Conv2d(width, width // 2, kernel_size=3, padding=1, bias=use_bias)]
            else:
                layers.append(nn.ConvTranspose2d(width, width // 2, kernel_size=3, stride=2, padding=1,
                                                 output_padding=1, bias=use_bias))
            layers += [norm_layer(width // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@GENERATORS.register("antialias_resnet_9blocks")
def antialias_resnet_9blocks(
    input_nc: int, output_nc: int, ngf: int = 64, *, norm_layer: NormLayer, use_dropout: bool = False,
    antialias_up: bool = True,
) -> AntialiasResnetGenerator:
    """ResNet generator, 9 blocks, anti-aliased down/up-sampling (CUT's default G; loads CUT checkpoints)."""
    return AntialiasResnetGenerator(input_nc, output_nc, ngf, norm_layer=norm_layer, use_dropout=use_dropout,
                                    n_blocks=9, antialias_up=antialias_up)


@GENERATORS.register("antialias_resnet_6blocks")
def antialias_resnet_6blocks(
    input_nc: int, output_nc: int, ngf: int = 64, *, norm_layer: NormLayer, use_dropout: bool = False,
    antialias_up: bool = True,
) -> AntialiasResnetGenerator:
    """ResNet generator, 6 blocks, anti-aliased down/up-sampling (as CUT builds resnet_6blocks)."""
    return AntialiasResnetGenerator(input_nc, output_nc, ngf, norm_layer=norm_layer, use_dropout=use_dropout,
                                    n_blocks=6, antialias_up=antialias_up)
