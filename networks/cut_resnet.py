"""The ResNet generator as CUT builds it: anti-aliased down- and up-sampling around the residual blocks.

Each stride-2 convolution of the reference's ResNet becomes a stride-1 convolution followed by a blur
`Downsample`; each transposed convolution becomes an `Upsample` followed by a 3x3 convolution. The module
tree reproduces CUT's state_dict keys (`model.7.filt`, ...). With both `antialias=False` and
`antialias_up=False` the layout is exactly the reference's ResnetGenerator (CUT's `--no_antialias
--no_antialias_up`). Same parameter count either way.
"""

from __future__ import annotations

from . import GENERATORS
from .norm import NormLayer
from .resnet import ResnetGenerator


class AntialiasResnetGenerator(ResnetGenerator):
    """ResNet generator whose resampling is anti-aliased by default (down with `antialias`, up with `antialias_up`)."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, *, norm_layer: NormLayer,
                 use_dropout: bool = False, n_blocks: int = 9, antialias: bool = True,
                 antialias_up: bool = True) -> None:
        super().__init__(input_nc, output_nc, ngf, norm_layer=norm_layer, use_dropout=use_dropout,
                         n_blocks=n_blocks, antialias=antialias, antialias_up=antialias_up)


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
