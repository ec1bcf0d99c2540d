"""Residual output: a generator that predicts a change to its input, so training starts from the identity.

The generator's own output y (in (-1, 1), after its tanh) is added to the input x in tanh space:

    out = tanh(atanh(x) + atanh(y)) = (x + y) / (1 + x * y)

so out = x where y = 0 and the result stays in (-1, 1). The last convolution starts at zero, so a new
generator is exactly the identity and learns the translation as a departure from it. The wrapping is a
forward hook: the state_dict keys stay those of the plain network (`--residual_output` is saved in
train_opt.json so test.py and translate.py rebuild it).
"""

from __future__ import annotations

import torch
from torch import nn

from util.errors import I2IError

_EDGE = 1e-4  # inputs at exactly +-1 meeting outputs of -+1 would give 0/0


def residual_output(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    """Forward hook: the generator's output added to its input in tanh space."""
    x = inputs[0].clamp(-1 + _EDGE, 1 - _EDGE).to(output.dtype)
    return (x + output) / (1 + x * output)


def make_residual(net: nn.Module) -> nn.Module:
    """Turn `net` (a generator ending in a convolution and a tanh) into a residual one that starts as the identity."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    if not convs:
        raise I2IError(f"--residual_output needs a convolutional generator; {type(net).__name__} has no convolution.")
    first, last = convs[0], convs[-1]
    if first.in_channels != last.out_channels:
        raise I2IError(f"--residual_output adds the output to the input, so they need one channel count (got "
                       f"--input_nc {first.in_channels} and --output_nc {last.out_channels}); drop --residual_output.")
    with torch.no_grad():
        last.weight.zero_()
        if last.bias is not None:
            last.bias.zero_()
    net.register_forward_hook(residual_output)
    return net
