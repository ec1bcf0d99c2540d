"""ResNet generator (Johnson et al.): downsample twice, residual blocks at 1/4 resolution, upsample twice.

The module tree reproduces the reference's state_dict layout exactly (one Sequential named `model`;
blocks hold a Sequential named `conv_block`), so published CycleGAN checkpoints load unchanged.
Input height and width must be multiples of 4.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from . import GENERATORS
from .activation_checkpointing import CheckpointableBlock, checkpoint, checkpoint_sequence, checkpointing
from .antialias import Downsample, Upsample
from .norm import NormLayer, conv_bias_for


class ResnetBlock(CheckpointableBlock):
    """x + conv_block(x): pad, conv3x3, norm, ReLU, [Dropout(0.5)], pad, conv3x3, norm.

    With --checkpoint_activations (training only) conv_block's activations are recomputed in the backward pass:
    the block keeps only its input.

    The optional dropout sits between the two convolutions, so it shifts the second conv from
    index 5 to 6: that is why files saved with and without dropout have different keys.
    """

    def __init__(self, dim: int, norm_layer: NormLayer, use_dropout: bool, use_bias: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=use_bias),
            norm_layer(dim),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if checkpointing(self):
            return x + checkpoint(self.conv_block, x, modules=[self.conv_block])
        return self.plain_forward(x)

    def plain_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block without its own checkpoint (for a segment that checkpoints several blocks at once)."""
        return x + self.conv_block(x)


class ResnetGenerator(CheckpointableBlock):
    """in -> ngf (7x7) -> 2ngf -> 4ngf (stride 2 each) -> n_blocks ResnetBlocks -> 2ngf -> ngf -> out (7x7) -> tanh.

    With --checkpoint_activations (training only) `model` runs as checkpointed segments: the stem (pad, 7x7 conv,
    norm, ReLU and both downsamplings) as one, the residual blocks in groups of `blocks_per_segment` (three: for
    nine blocks, three boundaries stored instead of nine, while recomputing one group holds no more than the head's
    recomputation does), and the head (both upsamplings, pad, 7x7 conv, tanh) as one. Only the segments' inputs
    stay stored between the forward and the backward pass: the image, each group's input at 1/4 resolution and the
    head's input; the full-resolution activations of the stem and the head (the largest tensors) are recomputed.
    One segment each for the stem and the head, not two: a split would store a 64-channel full-resolution boundary
    per call (docs/scaling.md has the bytes). No segment opens with an in-place op (a pad; a convolution), so the
    replay sees the input the first pass saw.
    """

    blocks_per_segment = 3

    n_downsampling = 2
    size_multiple = 2**n_downsampling  # input height and width must be multiples of this

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int = 64,
        *,
        norm_layer: NormLayer,
        use_dropout: bool = False,
        n_blocks: int = 9,
        antialias: bool = False,
        antialias_up: bool = False,
    ) -> None:
        """`antialias`/`antialias_up` replace the stride-2 (transposed) convolutions with CUT's blurred
        resampling (networks/cut_resnet.py); both off gives the reference's layout."""
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        use_bias = conv_bias_for(norm_layer)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        for i in range(self.n_downsampling):
            width = ngf * 2**i
            if antialias:
                layers += [nn.Conv2d(width, width * 2, kernel_size=3, stride=1, padding=1, bias=use_bias),
                           norm_layer(width * 2), nn.ReLU(True), Downsample(width * 2)]
            else:
                layers += [nn.Conv2d(width, width * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                           norm_layer(width * 2), nn.ReLU(True)]
        bottleneck = ngf * 2**self.n_downsampling
        layers += [ResnetBlock(bottleneck, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(self.n_downsampling, 0, -1):
            width = ngf * 2**i
            if antialias_up:
                layers += [Upsample(width), nn.Conv2d(width, width // 2, kernel_size=3, padding=1, bias=use_bias)]
            else:
                layers.append(nn.ConvTranspose2d(width, width // 2, kernel_size=3, stride=2, padding=1,
                                                 output_padding=1, bias=use_bias))
            layers += [norm_layer(width // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if checkpointing(self):
            return self._checkpointed_forward(x)
        return self.model(x)

    def _checkpointed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The same computation as `self.model(x)`: stem, groups of residual blocks and head as checkpointed
        segments."""
        layers = list(self.model)
        blocks = [i for i, m in enumerate(layers) if isinstance(m, ResnetBlock)]
        first, last = (blocks[0], blocks[-1] + 1) if blocks else (len(layers), len(layers))
        x = checkpoint_sequence(layers[:first], x)
        for start in range(first, last, self.blocks_per_segment):
            group = layers[start:min(start + self.blocks_per_segment, last)]
            x = checkpoint(_blocks_in_order(group), x, modules=group)
        return checkpoint_sequence(layers[last:], x)


def _blocks_in_order(blocks: list[ResnetBlock]) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        for block in blocks:
            x = block.plain_forward(x)
        return x

    return run


@GENERATORS.register("resnet_9blocks")
def resnet_9blocks(
    input_nc: int, output_nc: int, ngf: int = 64, *, norm_layer: NormLayer, use_dropout: bool = False
) -> ResnetGenerator:
    """ResNet generator with 9 residual blocks (CycleGAN's default, for 256x256 images)."""
    return ResnetGenerator(input_nc, output_nc, ngf, norm_layer=norm_layer, use_dropout=use_dropout, n_blocks=9)


@GENERATORS.register("resnet_6blocks")
def resnet_6blocks(
    input_nc: int, output_nc: int, ngf: int = 64, *, norm_layer: NormLayer, use_dropout: bool = False
) -> ResnetGenerator:
    """ResNet generator with 6 residual blocks (lighter; the CycleGAN paper's choice for 128x128 images)."""
    return ResnetGenerator(input_nc, output_nc, ngf, norm_layer=norm_layer, use_dropout=use_dropout, n_blocks=6)
