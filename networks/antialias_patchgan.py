"""The PatchGAN discriminator as CUT builds it: every stride-2 convolution becomes stride 1 plus a blur `Downsample`.

The module tree reproduces CUT's state_dict keys (`model.2.filt`, ...). Same parameters as the reference's
PatchGAN, slightly different receptive field, output side about the same.
"""

from __future__ import annotations

from . import DISCRIMINATORS
from .norm import NormLayer
from .patchgan import NLayerDiscriminator


class AntialiasNLayerDiscriminator(NLayerDiscriminator):
    """PatchGAN with `n_layers` anti-aliased downsamplings, widening ndf -> 8ndf (capped), then a 1-channel map."""

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, *, norm_layer: NormLayer) -> None:
        super().__init__(input_nc, ndf, n_layers, norm_layer=norm_layer, antialias=True)


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
