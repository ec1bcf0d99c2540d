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

`--affine_smooth N` low-passes A and b with an N x N binomial filter before they are applied (HDRNet gets smooth
coefficients from a coarse grid). A ResNet decodes them through strided transposed convolutions, whose
checkerboard would otherwise multiply the input's colours; filtered, the transform varies smoothly and the
input's edges stay sharp. `--affine_edge_sigma S` makes the filter a joint bilateral one guided by the input, so
the coefficients may still change across the input's edges (a shape and its background, no halo between them).

The tanh and the filter have no weights and the wrapping is a forward hook; the options are saved in
train_opt.json, so test.py, translate.py and export.py rebuild the generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from util.errors import I2IError

_EDGE = 1e-4  # atanh(+-1) is infinite: inputs at exactly +-1 are taken as +-(1 - 1e-4)


def _atanh_input(inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    x = inputs[0].clamp(-1 + _EDGE, 1 - _EDGE).to(output.dtype)
    return 0.5 * torch.log((1 + x) / (1 - x))  # atanh(x), written so that the ONNX exporter knows every operator


def residual_output(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    """Forward hook: the generator's pre-tanh output added to its input in tanh space."""
    return torch.tanh(_atanh_input(inputs, output) + output)


class AffineOutput:
    """Forward hook: the generator's output read as a per-pixel matrix and offset applied to atanh(input).

    `smooth` > 1 low-passes the coefficients with a smooth x smooth binomial filter first (`--affine_smooth`): the
    transform then varies smoothly in space, so the checkerboard that a strided transposed convolution leaves in
    its output modulates no colour, while the input's own edges still pass through the multiplication.
    `edge_sigma` > 0 makes that filter edge-aware (`--affine_edge_sigma`, edge_aware_blur with the input as the
    guide): the coefficients may still change across the input's edges, so a shape and its background can take
    different transforms without a halo between them."""

    __name__ = "affine_output"

    def __init__(self, smooth: int = 1, edge_sigma: float = 0.0) -> None:
        if smooth < 1 or smooth % 2 == 0:
            raise I2IError(f"--affine_smooth {smooth}: the filter needs an odd size of at least 1 (1: no smoothing).")
        if edge_sigma < 0 or (edge_sigma > 0 and smooth == 1):
            raise I2IError(f"--affine_edge_sigma {edge_sigma} shapes the filter of --affine_smooth: give it a value "
                           "of at least 0, with --affine_smooth 3 or more.")
        self.smooth, self.edge_sigma = smooth, edge_sigma

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        t = _atanh_input(inputs, output)
        c = t.shape[1]
        if self.edge_sigma > 0:
            output = edge_aware_blur(output, inputs[0].to(output.dtype), self.smooth, self.edge_sigma)
        else:
            output = binomial_blur(output, self.smooth)
        matrix, offset = output[:, : c * c].unflatten(1, (c, c)), output[:, c * c:]
        return torch.tanh(t + (matrix * t.unsqueeze(1)).sum(2) + offset)


def _binomial_row(size: int) -> list[float]:
    """Row `size - 1` of Pascal's triangle, summing to 1: a one-dimensional binomial low-pass kernel."""
    return [math.comb(size - 1, i) / 2 ** (size - 1) for i in range(size)]


def binomial_blur(x: torch.Tensor, size: int) -> torch.Tensor:
    """Each channel of `x` filtered by a size x size binomial kernel (rows of Pascal's triangle; edges replicated),
    as two one-channel passes over the channels stacked into the batch (a kernel of fixed shape, which the ONNX
    exporter needs)."""
    if size == 1:
        return x
    row = torch.tensor(_binomial_row(size), dtype=x.dtype, device=x.device)
    n, c, h, w = x.shape
    flat = F.pad(x.reshape(n * c, 1, h, w), [size // 2] * 4, mode="replicate")
    flat = F.conv2d(F.conv2d(flat, row.view(1, 1, size, 1)), row.view(1, 1, 1, size))
    return flat.reshape(n, c, h, w)


def edge_aware_blur(x: torch.Tensor, guide: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """`x` filtered by a size x size binomial kernel whose weights also fall off with the colour difference of
    `guide`'s pixels, exp(-|g_i - g_j|^2 / (2 sigma^2)) (a joint bilateral filter), normalised per pixel: smooth
    within the guide's regions, not across its edges."""
    row = _binomial_row(size)
    h, w = x.shape[-2:]
    pad = [size // 2] * 4
    padded_x, padded_guide = F.pad(x, pad, mode="replicate"), F.pad(guide, pad, mode="replicate")
    total, weights = torch.zeros_like(x), torch.zeros_like(guide[:, :1])
    for dy in range(size):
        for dx in range(size):
            near = padded_guide[..., dy:dy + h, dx:dx + w]
            weight = row[dy] * row[dx] * torch.exp(-(near - guide).square().sum(1, keepdim=True) / (2 * sigma**2))
            total = total + weight * padded_x[..., dy:dy + h, dx:dx + w]
            weights = weights + weight
    return total / weights


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


def make_affine(net: nn.Module, smooth: int = 1, edge_sigma: float = 0.0) -> nn.Module:
    """Turn `net` (a generator ending in a convolution and a tanh) into one that predicts a per-pixel affine
    colour transform of its input, starting as the identity; `smooth`, `edge_sigma`: see AffineOutput."""
    hook = AffineOutput(smooth, edge_sigma)
    last = _output_convolution(net, "--affine_output")
    if last.groups != 1:
        raise I2IError(f"--affine_output widens the generator's last convolution; {type(net).__name__} ends in a "
                       f"grouped {type(last).__name__}; drop --affine_output.")
    c = last.out_channels
    if isinstance(last, nn.ConvTranspose2d):  # a U-Net's outermost level
        wide = nn.ConvTranspose2d(last.in_channels, c * c + c, last.kernel_size, last.stride, last.padding,
                                  last.output_padding, bias=last.bias is not None, dilation=last.dilation)
    else:
        wide = nn.Conv2d(last.in_channels, c * c + c, last.kernel_size, last.stride, last.padding, last.dilation,
                         bias=last.bias is not None, padding_mode=last.padding_mode)
    parent, attribute = _last(net, nn.Conv2d | nn.ConvTranspose2d)
    setattr(parent, attribute, _zeroed(wide.to(last.weight.device)))
    net.register_forward_hook(hook)
    return net


#: the options that choose a generator's output (networks/residual.py), as identity_start's keyword arguments
IDENTITY_START_OPTIONS = {"residual_output": "residual", "affine_output": "affine", "affine_smooth": "affine_smooth",
                          "affine_edge_sigma": "affine_edge_sigma"}


def identity_start_arguments(options: dict) -> dict:
    """identity_start's keyword arguments from a run's options (`vars(opt)`, or saved ones)."""
    return {argument: options[option] for option, argument in IDENTITY_START_OPTIONS.items()}


def identity_start(net: nn.Module, *, residual: bool = False, affine: bool = False, affine_smooth: int = 1,
                   affine_edge_sigma: float = 0.0) -> nn.Module:
    """`net` with the output that `--residual_output` or `--affine_output` (with `--affine_smooth` and
    `--affine_edge_sigma`) asks for (unchanged for neither)."""
    if residual and affine:
        raise I2IError("--residual_output and --affine_output are two ways of predicting a change to the input; "
                       "pass one of them.")
    if affine_smooth != 1 and not affine:
        raise I2IError(f"--affine_smooth {affine_smooth} smooths the coefficients of --affine_output; add "
                       "--affine_output or drop --affine_smooth.")
    if affine:
        return make_affine(net, affine_smooth, affine_edge_sigma)
    return make_residual(net) if residual else net
