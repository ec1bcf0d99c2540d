"""Generators that start as the identity: a residual output or an affine colour output.

Both take out the generator's last tanh, read its last convolution's output as a change to the input made in
tanh space (atanh(x)), and start that convolution at zero, so a new generator returns its input exactly.

`--residual_output` adds the change:

    out = tanh(atanh(x) + z)

The change is unbounded and linear in z: adding it after the tanh instead, (x + tanh(z)) / (1 + x tanh(z)),
needs tanh(z) within 0.003 of -1 to take a near-white input (0.96) to near-black (-0.89), where the tanh has no
gradient left, so large tone changes never train. The state_dict keys and shapes stay those of the plain network.

`--affine_output` makes the last convolution give, per pixel, a C x C matrix A and an offset b (C*C + C channels)
that transform the input's colour:

    out = tanh((I + A) atanh(x) + b)

An additive z must redraw every edge of the input, and a ResNet's z, decoded from features at a quarter of the
resolution, draws them soft: halos around shapes. Here the edges pass through the multiplication by the input,
so coefficients that are smooth in space keep them sharp, and one matrix maps several colours at once (a
background and the shapes on it). The idea is HDRNet's local affine colour transforms (Gharbi et al., "Deep
Bilateral Learning for Real-Time Image Enhancement", 2017). The last convolution's keys stay; its weight and
bias have C*C + C output channels instead of C.

The tanh has no weights and the wrapping is a forward hook; both options are saved in train_opt.json, so test.py,
translate.py and export.py rebuild the generator.
"""

from __future__ import annotations

import torch
from torch import nn

from util.errors import I2IError

_EDGE = 1e-4  # atanh(+-1) is infinite: inputs at exactly +-1 are taken as +-(1 - 1e-4)


def _atanh_input(inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    x = inputs[0].clamp(-1 + _EDGE, 1 - _EDGE).to(output.dtype)
    return 0.5 * torch.log((1 + x) / (1 - x))  # atanh(x), written so that the ONNX exporter knows every operator


def residual_output(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    """Forward hook: the generator's pre-tanh output added to its input in tanh space."""
    return torch.tanh(_atanh_input(inputs, output) + output)


def affine_output(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    """Forward hook: the generator's output read as a per-pixel matrix and offset applied to atanh(input)."""
    t = _atanh_input(inputs, output)
    c = t.shape[1]
    matrix, offset = output[:, : c * c].unflatten(1, (c, c)), output[:, c * c:]
    return torch.tanh(t + (matrix * t.unsqueeze(1)).sum(2) + offset)


def _last(net: nn.Module, kind: type | tuple[type, ...]) -> tuple[nn.Module, str] | None:
    """(parent, attribute name) of the last module of `kind` in `net`, in definition order; None if none."""
    names = [name for name, module in net.named_modules() if isinstance(module, kind)]
    if not names:
        return None
    *parent, attribute = names[-1].split(".")
    return net.get_submodule(".".join(parent)), attribute


def _output_convolution(net: nn.Module, flag: str) -> nn.Conv2d | nn.ConvTranspose2d:
    """The last convolution of a generator that can take `flag`, with its tanh taken out."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    if not convs:
        raise I2IError(f"{flag} needs a convolutional generator; {type(net).__name__} has no convolution.")
    first, last = convs[0], convs[-1]
    if first.in_channels != last.out_channels:
        raise I2IError(f"{flag} transforms the input into the output, so they need one channel count (got "
                       f"--input_nc {first.in_channels} and --output_nc {last.out_channels}); drop {flag}.")
    tanh = _last(net, nn.Tanh)
    if tanh is None:
        raise I2IError(f"{flag} needs a generator that ends in a tanh; {type(net).__name__} has none; drop {flag}.")
    setattr(*tanh, nn.Identity())
    return last


def _zeroed(conv: nn.Module) -> nn.Module:
    with torch.no_grad():
        conv.weight.zero_()
        if conv.bias is not None:
            conv.bias.zero_()
    return conv


def make_residual(net: nn.Module) -> nn.Module:
    """Turn `net` (a generator ending in a convolution and a tanh) into a residual one that starts as the identity."""
    _zeroed(_output_convolution(net, "--residual_output"))
    net.register_forward_hook(residual_output)
    return net


def make_affine(net: nn.Module) -> nn.Module:
    """Turn `net` (a generator ending in a convolution and a tanh) into one that predicts a per-pixel affine
    colour transform of its input, starting as the identity."""
    last = _output_convolution(net, "--affine_output")
    if not isinstance(last, nn.Conv2d) or last.groups != 1:
        raise I2IError(f"--affine_output widens the generator's last convolution; {type(net).__name__} ends in "
                       f"{type(last).__name__}; drop --affine_output.")
    c = last.out_channels
    wide = nn.Conv2d(last.in_channels, c * c + c, last.kernel_size, last.stride, last.padding, last.dilation,
                     bias=last.bias is not None, padding_mode=last.padding_mode)
    parent, attribute = _last(net, nn.Conv2d | nn.ConvTranspose2d)
    setattr(parent, attribute, _zeroed(wide.to(last.weight.device)))
    net.register_forward_hook(affine_output)
    return net


def identity_start(net: nn.Module, *, residual: bool = False, affine: bool = False) -> nn.Module:
    """`net` with the output that `--residual_output` or `--affine_output` asks for (unchanged for neither)."""
    if residual and affine:
        raise I2IError("--residual_output and --affine_output are two ways of predicting a change to the input; "
                       "pass one of them.")
    if affine:
        return make_affine(net)
    return make_residual(net) if residual else net
