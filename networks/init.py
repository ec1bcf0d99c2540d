"""Weight initialisation selected by `--init_type` (normal, xavier, kaiming, orthogonal).

Each entry fills a Conv/ConvTranspose/Linear weight in place given the gain; `init_weights` applies
it to a whole network, zeroes those layers' biases, and sets BatchNorm scales to N(1, gain), shifts to 0.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import INIT_TYPES


@INIT_TYPES.register("normal")
def normal(weight: torch.Tensor, gain: float) -> None:
    """N(0, gain) (the default, with gain 0.02)."""
    nn.init.normal_(weight, 0.0, gain)


@INIT_TYPES.register("xavier")
def xavier(weight: torch.Tensor, gain: float) -> None:
    """Xavier/Glorot normal, scaled by gain."""
    nn.init.xavier_normal_(weight, gain=gain)


@INIT_TYPES.register("kaiming")
def kaiming(weight: torch.Tensor, gain: float) -> None:
    """Kaiming/He normal for ReLU, fan-in mode; the gain is ignored."""
    nn.init.kaiming_normal_(weight, a=0, mode="fan_in")


@INIT_TYPES.register("orthogonal")
def orthogonal(weight: torch.Tensor, gain: float) -> None:
    """A (semi-)orthogonal matrix scaled by gain."""
    nn.init.orthogonal_(weight, gain=gain)


@torch.no_grad()
def init_weights(net: nn.Module, init_type: str = "normal", init_gain: float = 0.02) -> nn.Module:
    """Re-initialise every conv/linear/BatchNorm2d layer of `net` in place and return `net`."""
    fill = INIT_TYPES.get(init_type)

    def init_module(module: nn.Module) -> None:
        name = type(module).__name__  # by class name, so custom Conv*/Linear* classes are initialised too
        if ("Conv" in name or "Linear" in name) and getattr(module, "weight", None) is not None:
            fill(module.weight, init_gain)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.normal_(module.weight, 1.0, init_gain)
            nn.init.zeros_(module.bias)

    net.apply(init_module)
    return net
