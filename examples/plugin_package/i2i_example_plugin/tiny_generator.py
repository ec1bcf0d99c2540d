"""`--netG example_tiny`: a small fully convolutional generator, full resolution throughout (any image size)."""

from __future__ import annotations

import torch
from torch import nn

from networks import GENERATORS, NormLayer, conv_bias_for


class TinyGenerator(nn.Module):
    """conv3x3 -> norm -> ReLU, `n_layers` times at width `ngf`, then conv3x3 -> tanh; adds the input back."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, *, norm_layer: NormLayer, n_layers: int = 3,
                 use_dropout: bool = False) -> None:
        super().__init__()
        bias = conv_bias_for(norm_layer)
        layers: list[nn.Module] = []
        width = input_nc
        for _ in range(n_layers):
            layers += [nn.Conv2d(width, ngf, 3, padding=1, bias=bias), norm_layer(ngf), nn.ReLU(True)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
            width = ngf
        layers.append(nn.Conv2d(width, output_nc, 3, padding=1))
        self.model = nn.Sequential(*layers)
        self.residual = input_nc == output_nc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return torch.tanh(out + x) if self.residual else torch.tanh(out)


@GENERATORS.register("example_tiny")
def example_tiny(input_nc: int, output_nc: int, ngf: int = 64, *, norm_layer: NormLayer,
                 use_dropout: bool = False) -> TinyGenerator:
    """Example plugin: 3 full-resolution conv layers with a residual connection (any image size)."""
    return TinyGenerator(input_nc, output_nc, ngf, norm_layer=norm_layer, use_dropout=use_dropout)
