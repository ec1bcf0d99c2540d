"""U-Net generator (pix2pix): an encoder-decoder whose mirrored levels are joined by skip connections.

Built from the innermost level outwards; every level is a `UnetSkipConnectionBlock` whose layers sit
in a Sequential named `model`, with the next-inner level as one of its entries. That nesting gives
the reference's keys (`model.model.1.model.3.model.1.weight`, ...), so published pix2pix checkpoints
load unchanged. A U-Net with `num_downs` levels halves the image `num_downs` times: height and width
must be divisible by 2**num_downs (256 for unet_256, 128 for unet_128). Its convolutions are
`networks/small_map_conv.py` modules: the inner levels' tiny feature maps run faster through the native CPU kernels.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from util.errors import I2IError

from . import GENERATORS
from .activation_checkpointing import CheckpointableBlock, checkpoint_sequence, checkpointing
from .norm import NormLayer, conv_bias_for
from .small_map_conv import SmallMapConv2d, SmallMapConvTranspose2d


class UnetSkipConnectionBlock(CheckpointableBlock):
    """One U-Net level: down-conv, the inner levels, up-conv; returns cat([x, level(x)]) except outermost.

    With --checkpoint_activations (training only) the level's own layers run as two checkpointed segments,
    the layers before the inner levels and those after them, whose activations are recomputed in the backward
    pass; the inner levels stay outside (each checkpoints its own), so no layer is recomputed more than once.
    The in-place activation that opens a segment runs outside it, exactly as without the flag (the skip
    connection carries the LeakyReLU'd input, as in the reference).

    Layer indices (kept for checkpoint compatibility):
      outermost:    0 down-conv, 1 submodule, 2 ReLU, 3 up-conv (always biased), 4 Tanh
      intermediate: 0 LeakyReLU, 1 down-conv, 2 norm, 3 submodule, 4 ReLU, 5 up-conv, 6 norm, [7 Dropout]
      innermost:    0 LeakyReLU, 1 down-conv, 2 ReLU, 3 up-conv, 4 norm
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        *,
        outermost: bool = False,
        innermost: bool = False,
        norm_layer: NormLayer,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        use_bias = conv_bias_for(norm_layer)
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = SmallMapConv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)

        def up_conv(in_channels: int, bias: bool) -> nn.ConvTranspose2d:
            return SmallMapConvTranspose2d(in_channels, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)

        if outermost:
            layers = [down_conv, submodule, nn.ReLU(True), up_conv(inner_nc * 2, True), nn.Tanh()]
        elif innermost:
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True), up_conv(inner_nc, use_bias)]
            layers.append(norm_layer(outer_nc))
        else:
            layers = [nn.LeakyReLU(0.2, True), down_conv, norm_layer(inner_nc), submodule, nn.ReLU(True)]
            layers += [up_conv(inner_nc * 2, use_bias), norm_layer(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))  # appended last, so it shifts no index
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if checkpointing(self):
            return self._checkpointed_forward(x)
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)

    def _checkpointed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same computation as `forward`, its own layers in checkpointed segments around the inner levels."""
        layers = list(self.model)
        inner = next((i for i, m in enumerate(layers) if isinstance(m, UnetSkipConnectionBlock)), None)
        if inner is None:  # innermost: one segment
            x = _in_place_head(layers, x)
            return torch.cat([x, checkpoint_sequence(layers, x)], 1)
        down, submodule, up = layers[:inner], layers[inner], layers[inner + 1:]
        x = _in_place_head(down, x)
        y = submodule(checkpoint_sequence(down, x))
        y = checkpoint_sequence(up, _in_place_head(up, y))
        return y if self.outermost else torch.cat([x, y], 1)


def _in_place_head(layers: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Apply (and pop) a leading in-place activation: it modifies its input, so it must not open a checkpointed
    segment (the recomputation would apply it to its own output)."""
    if layers and getattr(layers[0], "inplace", False):
        x = layers.pop(0)(x)
    return x


class UnetGenerator(nn.Module):
    """U-Net with `num_downs` levels: widths ngf, 2ngf, 4ngf, then 8ngf for every deeper level.

    The 8ngf levels between the 4ngf one and the innermost get Dropout(0.5) when `use_dropout`.
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        num_downs: int,
        ngf: int = 64,
        *,
        norm_layer: NormLayer,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"a U-Net needs num_downs >= 5, got {num_downs}")
        self.size_multiple = 2**num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm_layer=norm_layer)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout
            )
        for mult in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc, submodule=block, outermost=True, norm_layer=norm_layer
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise I2IError(
                f"a {height}x{width} image does not fit this U-Net: its {self.size_multiple.bit_length() - 1} "
                f"downsamplings need height and width that are multiples of {self.size_multiple}. Use "
                f"--preprocess resize_and_crop with --crop_size {self.size_multiple} (or a multiple of it), or pick "
                "a --netG that fits (resnet_9blocks takes multiples of 4).")
        return self.model(x)


@GENERATORS.register("unet_256")
def unet_256(
    input_nc: int, output_nc: int, ngf: int = 64, *, norm_layer: NormLayer, use_dropout: bool = False
) -> UnetGenerator:
    """U-Net with 8 levels, for images whose sides are multiples of 256 (pix2pix's default)."""
    return UnetGenerator(input_nc, output_nc, 8, ngf, norm_layer=norm_layer, use_dropout=use_dropout)


@GENERATORS.register("unet_128")
def unet_128(
    input_nc: int, output_nc: int, ngf: int = 64, *, norm_layer: NormLayer, use_dropout: bool = False
) -> UnetGenerator:
    """U-Net with 7 levels, for images whose sides are multiples of 128."""
    return UnetGenerator(input_nc, output_nc, 7, ngf, norm_layer=norm_layer, use_dropout=use_dropout)
