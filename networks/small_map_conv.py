"""Convolutions that take PyTorch's native (im2col + GEMM) path on small feature maps on the CPU.

On the CPU PyTorch runs float32 convolutions through oneDNN, which reorders the weights into its blocked layout
on every call. Where the feature map is tiny and the weights are large (a U-Net's inner levels: 512-1024
channels at 1x1 to 16x16), that reorder costs more than the arithmetic (figures: docs/scaling.md). On large
maps oneDNN wins, so the choice is made per call from the number of input positions.

The modules are drop-in subclasses of `nn.Conv2d` / `nn.ConvTranspose2d` (same parameters, state_dict keys and
mathematics, up to the order of the sums); wherever `use_native_path` says no, they are the plain modules.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch.autograd.function import once_differentiable

# Largest batch x height x width of the input that takes the native path: where the two paths tie on the CPU
# (below it native GEMM is faster, above it oneDNN).
SMALL_MAP_POSITIONS = 256


def _capturing() -> bool:
    """Tracing, ONNX export or torch.compile: they need the standard operator, not a custom autograd Function."""
    return (torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.onnx.is_in_onnx_export())


def use_native_path(x: torch.Tensor) -> bool:
    """Whether a convolution of `x` is faster through the native GEMM path than through oneDNN."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and x.shape[0] * x.shape[2] * x.shape[3] <= SMALL_MAP_POSITIONS
        and x.is_contiguous()
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and not torch.is_autocast_enabled("cpu")
        and not _capturing()
    )


class _OneDNNOff:
    """Disable oneDNN for the operators run inside (PyTorch then picks its native CPU kernels)."""

    def __enter__(self) -> None:
        self.previous = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = False

    def __exit__(self, *exc: object) -> None:
        torch.backends.mkldnn.enabled = self.previous


class _NativeConvolution(torch.autograd.Function):
    """aten.convolution forward and backward, both with oneDNN off (the backward re-selects its kernel, so
    turning oneDNN off around the forward alone would leave the costlier half on oneDNN)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, config: tuple) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.config, ctx.has_bias = config, bias is not None
        with _OneDNNOff():
            return torch.ops.aten.convolution(x, weight, bias, *config)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        stride, padding, dilation, transposed, output_padding, groups = ctx.config
        bias_sizes = [weight.shape[1] * groups if transposed else weight.shape[0]] if ctx.has_bias else None
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        with _OneDNNOff():
            grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad.contiguous(), x, weight, bias_sizes, stride, padding, dilation, transposed, output_padding,
                groups, mask)
        return grad_x, grad_w, grad_b, None


def _native(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, config: tuple) -> torch.Tensor:
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return _NativeConvolution.apply(x, weight, bias, config)
    with _OneDNNOff():
        return torch.ops.aten.convolution(x, weight, bias, *config)


class SmallMapConv2d(nn.Conv2d):
    """`nn.Conv2d` that runs small CPU feature maps through the native GEMM path (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros" or isinstance(self.padding, str) or not use_native_path(x):
            return super().forward(x)
        config = (list(self.stride), list(self.padding), list(self.dilation), False, [0, 0], self.groups)
        return _native(x, self.weight, self.bias, config)


class SmallMapConvTranspose2d(nn.ConvTranspose2d):
    """`nn.ConvTranspose2d` that runs small CPU feature maps through the native GEMM path."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or not use_native_path(x):
            return super().forward(x, output_size)
        config = (list(self.stride), list(self.padding), list(self.dilation), True, list(self.output_padding),
                  self.groups)
        return _native(x, self.weight, self.bias, config)
