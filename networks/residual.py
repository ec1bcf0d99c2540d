"""Residual output: a generator that predicts a change to its input, so training starts from the identity.

The generator's last tanh is taken out, and its pre-activation z is added to the input x in tanh space:

    out = tanh(atanh(x) + z)

so out = x where z = 0 and the result stays in (-1, 1). The change is unbounded and linear in z: adding it
after the tanh instead, (x + tanh(z)) / (1 + x tanh(z)), needs tanh(z) within 0.003 of -1 to take a near-white
input (0.96) to near-black (-0.89), where the tanh has no gradient left, so large tone changes never train.
The last convolution starts at zero, so a new generator is exactly the identity. The tanh has no weights and the
wrapping is a forward hook, so the state_dict keys stay those of the plain network (`--residual_output` is saved
in train_opt.json so test.py and translate.py rebuild it).
"""

from __future__ import annotations

import torch
from torch import nn

from util.errors import I2IError

_EDGE = 1e-4  # atanh(+-1) is infinite: inputs at exactly +-1 are taken as +-(1 - 1e-4)


def residual_output(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    """Forward hook: the generator's pre-tanh output added to its input in tanh space."""
    x = inputs[0].clamp(-1 + _EDGE, 1 - _EDGE).to(output.dtype)
    return torch.tanh(torch.atanh(x) + output)


def _drop_last_tanh(net: nn.Module) -> bool:
    """Replace the last nn.Tanh inside `net` by nn.Identity; False if there is none."""
    found = None
    for parent in net.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Tanh):
                found = (parent, name)
    if found is None:
        return False
    setattr(found[0], found[1], nn.Identity())
    return True


def make_residual(net: nn.Module) -> nn.Module:
    """Turn `net` (a generator ending in a convolution and a tanh) into a residual one that starts as the identity."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    if not convs:
        raise I2IError(f"--residual_output needs a convolutional generator; {type(net).__name__} has no convolution.")
    first, last = convs[0], convs[-1]
    if first.in_channels != last.out_channels:
        raise I2IError(f"--residual_output adds the output to the input, so they need one channel count (got "
                       f"--input_nc {first.in_channels} and --output_nc {last.out_channels}); drop --residual_output.")
    if not _drop_last_tanh(net):
        raise I2IError(f"--residual_output needs a generator that ends in a tanh; {type(net).__name__} has none; "
                       "drop --residual_output.")
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()
    net.register_forward_hook(residual_output)
    return net
