"""Networks: generators, discriminators, norm layers and weight initialisation, chosen by name.

Every network here is a plain `nn.Module` built from plain arguments; it knows nothing of options,
files, devices or training. The registries map the names users type (`--netG`, `--netD`, `--norm`,
`--init_type`) to builders; how to add one: docs/plugins.md. Keep attribute names and layer order
stable once checkpoints exist: they are the state_dict keys.
"""

from __future__ import annotations

import torch.nn as nn

from util.registry import Registry

# Defined before the family modules are imported, because those modules register into them.
GENERATORS = Registry("generator", option="netG")
DISCRIMINATORS = Registry("discriminator", option="netD")
NORMS = Registry("norm layer", option="norm")
INIT_TYPES = Registry("init type", option="init_type")

from . import patchgan, resnet, unet  # noqa: E402  (built-in families register themselves)
from . import antialias_patchgan, cut_resnet, global_discriminator, unet_upsample  # noqa: E402
from .init import init_weights  # noqa: E402
from .norm import NormLayer, conv_bias_for, get_norm_layer, spectral_normalised  # noqa: E402
from .residual import identity_start, identity_start_arguments  # noqa: E402

__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "INIT_TYPES",
    "NORMS",
    "NormLayer",
    "build_discriminator",
    "build_generator",
    "conv_bias_for",
    "get_norm_layer",
    "init_weights",
    "spectral_normalised",
    "identity_start",
    "identity_start_arguments",
    "patchgan",
    "resnet",
    "unet",
]


def build_generator(
    netG: str,
    input_nc: int,
    output_nc: int,
    ngf: int = 64,
    *,
    norm: str = "batch",
    use_dropout: bool = False,
    init_type: str = "normal",
    init_gain: float = 0.02,
    residual: bool = False,
    affine: bool = False,
    affine_smooth: int = 1,
    affine_edge_sigma: float = 0.0,
) -> nn.Module:
    """Build the generator registered as `netG` and initialise its weights (on the CPU); `residual`/`affine`:
    predict a change to the input, added or as a per-pixel affine colour transform (networks/residual.py), its
    coefficients low-passed by an `affine_smooth`-wide binomial filter (edge-aware for `affine_edge_sigma` > 0)."""
    builder = GENERATORS.get(netG)
    net = init_weights(builder(input_nc, output_nc, ngf, norm_layer=get_norm_layer(norm), use_dropout=use_dropout),
                       init_type, init_gain)
    return identity_start(net, residual=residual, affine=affine, affine_smooth=affine_smooth,
                          affine_edge_sigma=affine_edge_sigma)


def build_discriminator(
    netD: str,
    input_nc: int,
    ndf: int = 64,
    *,
    n_layers_D: int = 3,
    norm: str = "batch",
    init_type: str = "normal",
    init_gain: float = 0.02,
    spectral_norm: bool = False,
) -> nn.Module:
    """Build the discriminator registered as `netD` and initialise its weights (on the CPU); `spectral_norm`:
    every convolution's weight divided by its largest singular value (Miyato et al., 2018)."""
    builder = DISCRIMINATORS.get(netD)
    net = init_weights(builder(input_nc, ndf, n_layers=n_layers_D, norm_layer=get_norm_layer(norm)), init_type,
                       init_gain)
    return spectral_normalised(net) if spectral_norm else net
