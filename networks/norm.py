"""Normalisation layers selected by `--norm`, and the conv-bias rule that goes with them.

A norm entry is a factory `num_features -> nn.Module`. `conv_bias_for` keeps the reference's rule, quirk
included for checkpoint compatibility: `none`, like BatchNorm, gives bias-free convolutions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from . import NORMS

NormLayer = Callable[[int], nn.Module]

@NORMS.register("batch")
def batch(num_features: int) -> nn.Module:
    """BatchNorm2d with learnable scale/shift and running statistics."""
    return nn.BatchNorm2d(num_features, affine=True, track_running_stats=True)


@NORMS.register("instance")
def instance(num_features: int) -> nn.Module:
    """InstanceNorm2d without parameters or buffers (convolutions carry the bias instead)."""
    return nn.InstanceNorm2d(num_features, affine=False, track_running_stats=False)


@NORMS.register("none")
def none(num_features: int) -> nn.Module:
    """No normalisation (an Identity placeholder, so layer indices stay the same as with a norm)."""
    return nn.Identity()


def get_norm_layer(name: str) -> NormLayer:
    """The norm factory registered as `name`; unknown names raise I2IError listing the valid ones."""
    return NORMS.get(name)


def conv_bias_for(norm_layer: NormLayer) -> bool:
    """The reference's bias rule: hidden convolutions get a bias only in front of an InstanceNorm."""
    return isinstance(norm_layer(1), nn.InstanceNorm2d)


def spectral_normalised(net: nn.Module) -> nn.Module:
    """`net` with every convolution's weight divided by an estimate of its largest singular value (one power
    iteration per training call; torch.nn.utils.parametrizations.spectral_norm). The state_dict then holds each
    weight as `<name>.parametrizations.weight.original` with the power iteration's vectors beside it."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.utils.parametrizations.spectral_norm(module)
    return net
