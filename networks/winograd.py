"""3x3 convolutions by Winograd's minimal filtering F(4x4, 3x3) (test.py `--fast_convs`; training on the CPU).

Each 6x6 tile d of the input gives a 4x4 tile of the output, Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A (Lavin and Gray, "Fast
Algorithms for Convolutional Neural Networks", 2016). Summed over the input channels, the 36 element-wise products
are 36 matrix products (tiles x C_in) @ (C_in x C_out): 36 multiplications per 4x4 outputs and input channel where
the direct convolution needs 144, a quarter of the FLOPs, for the price of the transforms (memory-bound) and an
error about 30 times the direct convolution's float32 rounding (relative 1e-5; 1e-5 at the output of a trained
resnet_9blocks, a thousandth of a grey level).

It pays where the matrix products are large: the residual blocks of the ResNet generators (256 channels at a quarter
of the resolution, 88 % of resnet_9blocks' FLOPs). The transforms are matrix products with Bᵀ ⊗ Bᵀ and Aᵀ ⊗ Aᵀ
over the gathered tiles (memory-bound, about a third of the time). Measured on a 2-core AVX-512 EPYC, one
256-channel 3x3 convolution at 64 x 64: direct (oneDNN) 24-25 ms, F(4x4, 3x3) 17-22 ms eagerly; 128 channels at
128 x 128: level at best; 64 channels at 256 x 256: two to three times slower, hence `MIN_CHANNELS`. resnet_9blocks
at 256 px, batch 1: 1.64-1.66 img/s direct, 1.84-1.90 with the swap (benchmarks/infer_speed.py; docs/scaling.md).

Under torch.compile the layer is one opaque operator (`i2i::winograd_conv3x3`, PyTorch 2.4+) between the compiled
parts, which fuse the norms and activations around it; with older PyTorch, or with gradients, it is the direct
convolution there. Written out for the compiler instead, the matrix products measured slower than its own
convolutions (1.40 against 1.94 img/s), and explicit sums compiled for six minutes.

`convert_to_winograd` swaps the eligible `nn.Conv2d`s of a network in place for `WinogradConv2d`s that hold the
same `weight` and `bias` parameters under the same names, so state_dicts load and save unchanged
(networks/fast_convs.py applies it with test.py `--fast_convs`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from util.runtime import replace_modules

TILE = 4  # output tile side: F(4x4, 3x3)
WINDOW = TILE + 2  # input tile side
B_T = torch.tensor([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                    [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=torch.float64)
G = torch.tensor([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=torch.float64)
A_T = torch.tensor([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
                   dtype=torch.float64)
# Both sides of a tile at once: vec(Bᵀ d B) = (Bᵀ ⊗ Bᵀ) vec(d), and the same for Aᵀ
B_T_2D, A_T_2D, G_2D = torch.kron(B_T, B_T), torch.kron(A_T, A_T), torch.kron(G, G)
MIN_CHANNELS = 256  # input and output channels below which the direct convolution is as fast or faster (above)
BAND_BYTES = 16 * 2**20  # the most each transform buffer holds (a band of tile rows; one row more if larger)


def transform_weight(weight: torch.Tensor, scratch: bool = False) -> torch.Tensor:
    """G g Gᵀ of each (output, input) 3x3 kernel, as 36 matrices C_in x C_out: one matrix product with G ⊗ G over
    the kernels laid out (9, C_in C_out). In the weights' dtype: float64 gave the same float32 result to 1e-7.
    `scratch`: into a buffer the next call overwrites (for kernels used once: training's forward pass); else a
    tensor of its own."""
    out_channels, in_channels = weight.shape[:2]
    kernels = _buffer("kernels", weight.numel(), weight).view(3, 3, in_channels, out_channels)
    kernels.copy_(weight.detach().permute(2, 3, 1, 0))
    u = _buffer("transformed kernels", WINDOW * WINDOW * in_channels * out_channels, weight).view(WINDOW * WINDOW, -1)
    torch.matmul(G_2D.to(weight), kernels.view(9, -1), out=u)
    u = u.view(WINDOW * WINDOW, in_channels, out_channels)
    return u if scratch else u.clone()


def winograd_conv3x3(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The 3x3 convolution (stride 1, no padding) of `x` with the kernels `u` = transform_weight(weight), without
    autograd (`winograd_conv2d` is the differentiable one). The tiles go through in bands of tile rows whose
    buffers hold at most about `BAND_BYTES` each, reused from call to call (`_buffer`)."""
    batch, channels, height, width = x.shape
    out_channels = u.shape[2]
    out_h, out_w = height - 2, width - 2
    rows, cols = -(-out_h // TILE), -(-out_w // TILE)
    if (out_h, out_w) != (TILE * rows, TILE * cols):
        # zeros below and to the right up to whole tiles: they reach only the outputs cropped off below
        x = F.pad(x, (0, TILE * cols - out_w, 0, TILE * rows - out_h))
    out = x.new_empty(batch, out_channels, TILE * rows, TILE * cols)
    row_bytes = WINDOW * WINDOW * batch * cols * max(channels, out_channels) * x.element_size()
    bands = -(-rows // max(1, BAND_BYTES // row_bytes))
    band = -(-rows // bands)
    b_t, a_t = B_T_2D.to(x), A_T_2D.to(x)
    for first in range(0, rows, band):
        last = min(rows, first + band)
        _band(x[:, :, TILE * first:TILE * last + 2], u, out[:, :, TILE * first:TILE * last], b_t, a_t)
    if (out_h, out_w) != out.shape[2:]:
        out = out[:, :, :out_h, :out_w].contiguous()
    return out if bias is None else out.add_(bias.view(1, -1, 1, 1))


def _band(x: torch.Tensor, u: torch.Tensor, out: torch.Tensor, b_t: torch.Tensor, a_t: torch.Tensor) -> None:
    """One band of tile rows: gather the 6x6 tiles (stride 4) of `x`, Bᵀ d B of each as one product with Bᵀ ⊗ Bᵀ,
    the 36 matrix products (tiles x C_in) @ (C_in x C_out), Aᵀ M A as one product with Aᵀ ⊗ Aᵀ, written into
    `out` (N x C_out x 4 rows x 4 cols, a view)."""
    batch, channels = x.shape[:2]
    rows, cols, out_channels = (x.shape[2] - 2) // TILE, (x.shape[3] - 2) // TILE, u.shape[2]
    tiles = x.unfold(2, WINDOW, TILE).unfold(3, WINDOW, TILE)  # N, C, rows, cols, 6, 6 (a view)
    count = batch * rows * cols
    gathered = _buffer("tiles", WINDOW * WINDOW * count * channels, x)
    gathered.view(WINDOW, WINDOW, batch, rows, cols, channels).copy_(tiles.permute(4, 5, 0, 2, 3, 1))
    transformed = _buffer("input", WINDOW * WINDOW * count * channels, x).view(WINDOW * WINDOW, -1)
    torch.matmul(b_t, gathered.view(WINDOW * WINDOW, -1), out=transformed)
    products = _buffer("products", WINDOW * WINDOW * count * out_channels, x).view(WINDOW * WINDOW, count, -1)
    torch.bmm(transformed.view(WINDOW * WINDOW, count, channels), u, out=products)
    y = _buffer("output", TILE * TILE * count * out_channels, x).view(TILE * TILE, -1)
    torch.matmul(a_t, products.view(WINDOW * WINDOW, -1), out=y)
    out.view(batch, out_channels, rows, TILE, cols, TILE).copy_(
        y.view(TILE, TILE, batch, rows, cols, out_channels).permute(2, 5, 3, 0, 4, 1))


_buffers: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}


def _buffer(name: str, numel: int, like: torch.Tensor) -> torch.Tensor:
    """A flat buffer of at least `numel` elements kept between calls. Fresh transient buffers of tens of MiB at
    every call left holes in glibc's heap between the activations a training step keeps: the peak RSS of a
    CycleGAN 256 px step grew by 0.7 GiB (3.85 -> 4.55) with the live tensors unchanged (3.16 -> 3.17 GiB); with
    these buffers and bands, by 0.11 GiB. The buffers are shared by every Winograd layer of the process, so one
    thread at a time may run them (i2i's drivers run the networks on the main thread only)."""
    key = (name, like.dtype, like.device)
    buffer = _buffers.get(key)
    if buffer is None or buffer.numel() < numel:
        with torch.inference_mode(False):  # a buffer made under test.py's inference mode could not be written after
            buffer = _buffers[key] = torch.empty(numel, dtype=like.dtype, device=like.device)
    return buffer[:numel]


class _WinogradForward(torch.autograd.Function):
    """Winograd's forward with the direct convolution's backward: a convolution's gradients need only its input and
    kernels, not the way its output was computed, so the backward pass costs what it costs without the swap and
    stores the same tensors (the input and the weights)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return winograd_conv3x3(x, transform_weight(weight, scratch=True), bias)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        wanted = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        grad_x, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
            grad, x, weight, [weight.shape[0]] if ctx.has_bias else None,
            [1, 1], [0, 0], [1, 1], False, [0, 0], 1, wanted)
        return grad_x, grad_weight, grad_bias if ctx.has_bias else None


def winograd_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The 3x3 convolution (stride 1, no padding) of `x` with `weight`, differentiable: F(4x4, 3x3) forward, the
    direct convolution's backward. The kernels are transformed at every call (the weights change at every step;
    a cache would hold four times their size)."""
    return _WinogradForward.apply(x, weight, bias)


def _register_operator():
    """`winograd_conv3x3` as an operator torch.compile calls as it is (PyTorch 2.4+; None before)."""
    if not hasattr(torch.library, "custom_op"):
        return None

    def run(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return winograd_conv3x3(x, u, bias)

    def output_like(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return x.new_empty(x.shape[0], u.shape[2], x.shape[2] - 2, x.shape[3] - 2)

    operator = torch.library.custom_op("i2i::winograd_conv3x3", run, mutates_args=())
    operator.register_fake(output_like)
    return operator


winograd_operator = _register_operator()


class WinogradConv2d(nn.Module):
    """An eligible `nn.Conv2d` (see `eligible`) computed by F(4x4, 3x3); the same parameters under the same names.

    With `cache_kernels` (test.py: the weights are fixed) the transformed kernels are kept in a buffer that is not
    saved (`transformed`), recomputed when the weights change (in place or by a state_dict loaded after the swap).
    Without it (training: fused Adam updates the weights without bumping their version counter, so a cache could not
    tell) they are transformed at every call, about 1 ms for 256 channels. With autograd the backward pass is the
    direct convolution's (`winograd_conv2d`). Under autocast the layer is the direct convolution (the transforms
    lose too much in 16 bits)."""

    def __init__(self, conv: nn.Conv2d, cache_kernels: bool = True) -> None:
        super().__init__()
        if not eligible(conv, min_channels=1):
            raise ValueError(f"not a 3x3, stride 1, ungrouped, zero-padded convolution: {conv}")
        self.weight, self.bias = conv.weight, conv.bias
        self.padding = conv.padding
        self.cache_kernels = cache_kernels
        self.register_buffer("transformed", None, persistent=False)
        self._transformed_from: tuple | None = None
        self.register_load_state_dict_post_hook(lambda module, _keys: module.refresh())
        self.refresh()

    def refresh(self) -> None:
        """Transform the kernels again if the weights changed since the last time (with `cache_kernels`)."""
        weight = self.weight
        if not self.cache_kernels:
            return
        source = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
        if source != self._transformed_from:
            with torch.no_grad():
                self.transformed = transform_weight(weight)
            self._transformed_from = source

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h, pad_w = self.padding
        if torch.compiler.is_compiling():
            if (winograd_operator is None or not self.cache_kernels
                    or (torch.is_grad_enabled() and self.weight.requires_grad)):
                return F.conv2d(x, self.weight, self.bias, padding=self.padding)
            # the buffer as it was when compiled: test.py compiles after loading the weights (the hook refreshes it)
            x = F.pad(x, (pad_w, pad_w, pad_h, pad_h))
            return winograd_operator(x, self.transformed, self.bias)
        if torch.is_autocast_enabled(x.device.type):
            return F.conv2d(x, self.weight, self.bias, padding=self.padding)
        if pad_h or pad_w:
            x = F.pad(x, (pad_w, pad_w, pad_h, pad_h))
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, self.weight, self.bias)):
            return winograd_conv2d(x, self.weight, self.bias)
        self.refresh()
        kernels = self.transformed if self.cache_kernels else transform_weight(self.weight, scratch=True)
        return winograd_conv3x3(x, kernels, self.bias)

    def extra_repr(self) -> str:
        channels = f"{self.weight.shape[1]}, {self.weight.shape[0]}"
        return f"{channels}, kernel_size=(3, 3), padding={self.padding}, F(4x4, 3x3)"


def plain_convolution(module: nn.Module) -> bool:
    """An `nn.Conv2d` with stride 1, no dilation, no groups and numeric zero padding: one that a faster algorithm
    with the same weights can stand in for (networks/fast_convs.py)."""
    return (type(module) is nn.Conv2d and module.stride == (1, 1) and module.dilation == (1, 1)
            and module.groups == 1 and module.padding_mode == "zeros" and isinstance(module.padding, tuple))


def eligible(module: nn.Module, min_channels: int = MIN_CHANNELS) -> bool:
    """A plain 3x3 convolution (see `plain_convolution`) with at least `min_channels` in and out."""
    return (plain_convolution(module) and module.kernel_size == (3, 3)
            and min(module.in_channels, module.out_channels) >= min_channels)


def convert_to_winograd(net: nn.Module, min_channels: int = MIN_CHANNELS, cache_kernels: bool = True) -> int:
    """Swap every eligible convolution of `net` for a `WinogradConv2d`, in place; returns how many."""
    return len(replace_modules(net, lambda module: eligible(module, min_channels),
                               lambda conv: WinogradConv2d(conv, cache_kernels)))
