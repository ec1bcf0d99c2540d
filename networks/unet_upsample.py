"""A U-Net whose decoder upsamples by nearest-neighbour interpolation plus a 3x3 convolution.

Transposed convolutions (the pix2pix U-Net's decoder) leave checkerboard artefacts where their kernels
overlap unevenly (Odena et al., "Deconvolution and Checkerboard Artifacts", 2016); resize-then-convolve does
not. The encoder is the pix2pix one; with `num_downs` levels the image sides must be multiples of
2**num_downs (32 for the registered `unet_upsample`).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from util.errors import I2IError

from . import GENERATORS
from .norm import NormLayer, conv_bias_for


def _up(in_nc: int, out_nc: int, bias: bool) -> list[nn.Module]:
    return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_nc, out_nc, kernel_size=3, padding=1, bias=bias)]


class UnetUpsampleGenerator(nn.Module):
    """Encoder `down[i]` halves the image; decoder `up[i]` doubles it and is followed by a skip concatenation."""

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        num_downs: int = 5,
        ngf: int = 64,
        *,
        norm_layer: NormLayer,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2, got {num_downs}")
        self.size_multiple = 2**num_downs
        use_bias = conv_bias_for(norm_layer)
        widths = [ngf * min(2**i, 8) for i in range(num_downs)]
        down = [nn.Sequential(nn.Conv2d(input_nc, widths[0], kernel_size=4, stride=2, padding=1))]
        for i in range(1, num_downs):
            innermost = i == num_downs - 1
            layers = [nn.LeakyReLU(0.2, True),
                      nn.Conv2d(widths[i - 1], widths[i], kernel_size=4, stride=2, padding=1,
                                bias=use_bias or innermost)]
            if not innermost:  # the 1x1-ish bottleneck of a batch of one would be normalised to zero
                layers.append(norm_layer(widths[i]))
            down.append(nn.Sequential(*layers))
        self.down = nn.ModuleList(down)
        up = []
        in_nc = widths[-1]
        for i in range(num_downs - 2, -1, -1):  # decoder level i produces widths[i] channels, then concatenates
            layers = [nn.ReLU(True), *_up(in_nc, widths[i], use_bias), norm_layer(widths[i])]
            if use_dropout and widths[i] == ngf * 8 and i > 2:
                layers.append(nn.Dropout(0.5))
            up.append(nn.Sequential(*layers))
            in_nc = 2 * widths[i]
        self.up = nn.ModuleList(up)
        self.final = nn.Sequential(nn.ReLU(True), *_up(in_nc, output_nc, True), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise I2IError(
                f"a {height}x{width} image does not fit unet_upsample: height and width must be multiples of "
                f"{self.size_multiple}. Use --crop_size {self.size_multiple} (or a multiple of it).")
        skips = []
        for level in self.down:
            x = level(x)
            skips.append(x)
        y = skips.pop()
        for level in self.up:
            y = torch.cat([level(y), skips.pop()], 1)
        return self.final(y)


@GENERATORS.register("unet_upsample")
def unet_upsample(
    input_nc: int, output_nc: int, ngf: int = 64, *, norm_layer: NormLayer, use_dropout: bool = False
) -> UnetUpsampleGenerator:
    """U-Net (5 levels, sides multiple of 32) whose decoder upsamples by nearest neighbour + conv, with skips."""
    return UnetUpsampleGenerator(input_nc, output_nc, 5, ngf, norm_layer=norm_layer, use_dropout=use_dropout)
