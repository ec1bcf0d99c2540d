"""test.py `--fast_convs` and training on the CPU: the convolutions the CPU runs slowest, by faster algorithms with
the same parameters.

Two kinds of convolution waste most of a ResNet generator's time on the CPU (2-core AVX-512 EPYC, 256 px):
- the 3x3 convolutions of 256 channels in the residual blocks, 88 % of the FLOPs: Winograd's F(4x4, 3x3) needs a
  quarter of their multiplications (networks/winograd.py; 22 ms -> 14 ms each);
- the last 7x7 convolution to 3 channels, 1 % of the FLOPs but 30 ms: oneDNN computes output channels in blocks of
  16, so 3 outputs cost as much as 16 (measured: 3, 4, 8 and 16 outputs all 30-31 ms). `KernelRowsConv2d` computes
  it as one 1 x k convolution to k x 3 channels (a row of the kernel each) and adds the k row results shifted by
  their row: 10-16 ms.

Both keep the layer's `weight` and `bias` under the same names (state_dicts load and save unchanged), and change
the output only by rounding (about 1e-5 at the output of a trained resnet_9blocks, a thousandth of a grey level).

train.py --fast_convs swaps the same layers for training: Winograd computes the forward pass and the backward
pass is the direct convolution's (a convolution's gradients do not depend on how its output was computed); the
kernel rows run through autograd. A CycleGAN 256 px step takes 1.5-3 % less time (alternating steps in one
process) for 0.1 GiB more peak RSS and a different rounding, so it is not a default (docs/scaling.md). On GPUs
cuDNN picks its own algorithms, Winograd's among them.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from util.errors import I2IError
from util.runtime import replace_modules

from .winograd import MIN_CHANNELS, WinogradConv2d, convert_to_winograd, plain_convolution

MAX_NARROW_OUTPUTS = 4  # output channels up to which a convolution runs as fast by kernel rows (see the docstring)
MIN_NARROW_KERNEL = 5  # kernel heights from which the rows pay for their additions (the 7x7 to RGB is measured)


class KernelRowsConv2d(nn.Module):
    """A convolution with few output channels as one 1 x k convolution per kernel row, summed with row shifts."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if not plain_convolution(conv):
            raise ValueError(f"not a stride-1, ungrouped, zero-padded convolution: {conv}")
        self.weight, self.bias = conv.weight, conv.bias
        self.padding = conv.padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h, pad_w = self.padding
        if pad_h or pad_w:
            x = F.pad(x, (pad_w, pad_w, pad_h, pad_h))
        out_channels, in_channels, kernel_h, kernel_w = self.weight.shape
        rows = self.weight.permute(2, 0, 1, 3).reshape(kernel_h * out_channels, in_channels, 1, kernel_w)
        by_row = F.conv2d(x, rows)  # N, (kernel row, output channel), H, W - kernel_w + 1
        by_row = by_row.view(x.shape[0], kernel_h, out_channels, *by_row.shape[2:])
        out_h = x.shape[2] - kernel_h + 1
        out = by_row[:, 0, :, :out_h].clone()
        for row in range(1, kernel_h):
            out += by_row[:, row, :, row:row + out_h]
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        out_channels, in_channels, kernel_h, kernel_w = self.weight.shape
        return f"{in_channels}, {out_channels}, kernel_size=({kernel_h}, {kernel_w}), padding={self.padding}, by rows"


def narrow(module: nn.Module) -> bool:
    """A plain convolution (see `plain_convolution`) to at most `MAX_NARROW_OUTPUTS` channels with a kernel at least
    `MIN_NARROW_KERNEL` high."""
    return (plain_convolution(module) and module.out_channels <= MAX_NARROW_OUTPUTS
            and module.kernel_size[0] >= MIN_NARROW_KERNEL)


def convert_to_fast(net: nn.Module, cache_kernels: bool = True) -> int:
    """Swap, in place, the wide 3x3 convolutions of `net` for `WinogradConv2d`s and the narrow ones for
    `KernelRowsConv2d`s; returns how many layers were swapped. `cache_kernels`: keep Winograd's transformed kernels
    between calls (for fixed weights: inference)."""
    return (convert_to_winograd(net, cache_kernels=cache_kernels)
            + len(replace_modules(net, narrow, KernelRowsConv2d)))


def convert_to_direct(net: nn.Module) -> int:
    """Undo `convert_to_fast`: every swapped layer of `net` back to an `nn.Conv2d` with the same parameters; returns
    how many (the plain network's output, e.g. to measure the error against)."""
    swapped = lambda module: isinstance(module, (WinogradConv2d, KernelRowsConv2d))  # noqa: E731
    return len(replace_modules(net, swapped, direct_convolution))


def direct_convolution(layer: WinogradConv2d | KernelRowsConv2d) -> nn.Conv2d:
    out_channels, in_channels, kernel_h, kernel_w = layer.weight.shape
    conv = nn.Conv2d(in_channels, out_channels, (kernel_h, kernel_w), padding=layer.padding,
                     bias=layer.bias is not None, device=layer.weight.device, dtype=layer.weight.dtype)
    conv.weight, conv.bias = layer.weight, layer.bias
    return conv


def use_fast_convs(net: nn.Module, device: torch.device, cache_kernels: bool = True) -> None:
    """--fast_convs: `convert_to_fast` on the CPU, with a warning where it changes nothing."""
    if device.type != "cpu":
        warnings.warn(f"--fast_convs is for the CPU; on {device.type} the library chooses its own convolution "
                      "algorithms (cuDNN has Winograd's), so it runs as without the flag.", stacklevel=3)
    elif not convert_to_fast(net, cache_kernels):
        warnings.warn(f"--fast_convs: {type(net).__name__} has no 3x3 convolution of {MIN_CHANNELS}+ channels (the "
                      "ResNet generators' blocks have) and no convolution to a few channels with a large kernel, so "
                      "it runs as without the flag.", stacklevel=3)


def apply_fast_convs(net: nn.Module, opt, device: torch.device, training: bool) -> None:
    """--fast_convs (train.py and test.py): `use_fast_convs`. In training without the kernel cache (the weights
    change at every step) and without the nothing-to-swap warning: every discriminator would give it."""
    if not getattr(opt, "fast_convs", False):
        return
    if training and device.type == "cpu":
        convert_to_fast(net, cache_kernels=False)
    else:
        use_fast_convs(net, device, cache_kernels=not training)


def check_precision(opt) -> None:
    """--fast_convs computes in float32: refuse it with --amp."""
    if opt.fast_convs and opt.amp:
        raise I2IError("--fast_convs computes in float32 (Winograd's transforms lose too much in 16 bits); drop "
                       "--amp or --fast_convs.")


def check_backend(backend: str) -> None:
    """--fast_convs swaps PyTorch layers: with another --backend it would do nothing, so say so."""
    if backend != "torch":
        raise I2IError(f"--fast_convs applies to the PyTorch networks; --backend {backend} runs its own kernels. "
                       "Drop one of the two.")
