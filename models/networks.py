"""The reference's `models/networks.py` API, kept so model files written for the reference run unchanged.

A reference-style model does `from . import networks` and calls the functions below with the reference's
signatures; each one forwards to i2i's own code (`networks/`, `models/losses.py`, `models/schedulers.py`).
New code should call those directly (`networks.build_generator`, `BaseModel.place`, ...). The kept names
and how they differ from the reference's: docs/plugins.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from networks import build_discriminator, build_generator
from networks import get_norm_layer as _get_norm_layer
from networks import init_weights
from networks.patchgan import NLayerDiscriminator, PixelDiscriminator
from networks.resnet import ResnetBlock, ResnetGenerator
from networks.unet import UnetGenerator, UnetSkipConnectionBlock
from util import runtime

from .losses import GANLoss, gradient_penalty
from .schedulers import build_scheduler as get_scheduler

Identity = nn.Identity

__all__ = [
    "GANLoss",
    "Identity",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetGenerator",
    "UnetSkipConnectionBlock",
    "cal_gradient_penalty",
    "define_D",
    "define_G",
    "get_norm_layer",
    "get_scheduler",
    "init_net",
    "init_weights",
]


def get_norm_layer(norm_type: str = "instance"):
    """A factory `num_features -> norm module` for 'batch', 'instance' or 'none' (or a plugin's norm)."""
    return _get_norm_layer(norm_type)


def _place(net: nn.Module, gpu_ids: Sequence[int]) -> nn.Module:
    """On `cuda:<first id>`, wrapped in DataParallel only for several ids (as `BaseModel.place`)."""
    gpu_ids = list(gpu_ids or [])
    if not gpu_ids:
        return net
    net = net.to(torch.device(f"cuda:{gpu_ids[0]}"))
    return runtime.DataParallel(net, gpu_ids) if len(gpu_ids) > 1 else net


def init_net(
    net: nn.Module, init_type: str = "normal", init_gain: float = 0.02, gpu_ids: Sequence[int] = ()
) -> nn.Module:
    """Initialise `net`'s weights and move it to the first of `gpu_ids` (CPU when empty)."""
    return _place(init_weights(net, init_type, init_gain), gpu_ids)


def define_G(
    input_nc: int,
    output_nc: int,
    ngf: int,
    netG: str,
    norm: str = "batch",
    use_dropout: bool = False,
    init_type: str = "normal",
    init_gain: float = 0.02,
    gpu_ids: Sequence[int] = (),
) -> nn.Module:
    """The generator registered as `netG` (any of `python train.py --list`), initialised and placed."""
    net = build_generator(netG, input_nc, output_nc, ngf, norm=norm, use_dropout=use_dropout,
                          init_type=init_type, init_gain=init_gain)
    return _place(net, gpu_ids)


def define_D(
    input_nc: int,
    ndf: int,
    netD: str,
    n_layers_D: int = 3,
    norm: str = "batch",
    init_type: str = "normal",
    init_gain: float = 0.02,
    gpu_ids: Sequence[int] = (),
) -> nn.Module:
    """The discriminator registered as `netD`, initialised and placed."""
    net = build_discriminator(netD, input_nc, ndf, n_layers_D=n_layers_D, norm=norm,
                              init_type=init_type, init_gain=init_gain)
    return _place(net, gpu_ids)


def cal_gradient_penalty(
    netD: nn.Module,
    real_data: torch.Tensor,
    fake_data: torch.Tensor,
    device: Any = None,
    type: str = "mixed",
    constant: float = 1.0,
    lambda_gp: float = 10.0,
) -> tuple[torch.Tensor | float, None]:
    """(penalty, None): `models.losses.gradient_penalty` under the reference's signature (docs/plugins.md);
    `device` is unused (the inputs' device is used)."""
    if lambda_gp <= 0.0:
        return 0.0, None
    return gradient_penalty(netD, real_data, fake_data, kind=type, constant=constant, lambda_gp=lambda_gp), None
