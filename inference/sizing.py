"""Any image size in, the same size out: pad to what a generator needs, translate, crop back.

The multiple is the generator's `size_multiple` (4 for ResNets, 2**num_downs for U-Nets), else inferred from
its stride-2 convolutions. Padding repeats the edge pixels, at the bottom and right only, so cropping back is a
plain slice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def size_multiple(net: nn.Module) -> int:
    """The multiple that `net`'s input height and width must be."""
    declared = getattr(net, "size_multiple", None)
    if declared:
        return int(declared)
    strided = sum(1 for m in net.modules() if isinstance(m, nn.Conv2d) and max(m.stride) > 1)
    return 2**strided


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right of an N x C x H x W batch (edge pixels repeated) to multiples of `multiple`."""
    pad_h = (multiple - x.shape[-2] % multiple) % multiple
    pad_w = (multiple - x.shape[-1] % multiple) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")


class SizeAdapter(nn.Module):
    """`net` made to take any H x W: pads to its size multiple, runs it, crops the result to H x W.

    Written with shape arithmetic only, so TorchScript scripting and ONNX tracing keep H and W dynamic.
    """

    def __init__(self, net: nn.Module, multiple: int | None = None) -> None:
        super().__init__()
        self.net = net
        self.multiple = int(multiple or size_multiple(net))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        pad_h = (self.multiple - h % self.multiple) % self.multiple
        pad_w = (self.multiple - w % self.multiple) % self.multiple
        x = F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")
        return self.net(x)[:, :, :h, :w]
