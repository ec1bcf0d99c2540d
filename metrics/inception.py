"""The Inception-v3 variant that FID and KID are defined with, so i2i's numbers match published ones.

FID as published (Heusel et al.) uses the 2015-12-05 TensorFlow Inception graph. Its PyTorch port (the
network of pytorch-fid and torch-fidelity's FID mode, weights `pt_inception-2015-12-05-6726825d.pth`) is
torchvision's Inception3 with 1008 classes and four behavioural changes, written here from that description:

- the average-pool branch of the A, C and first E blocks does not count the zero padding
  (`count_include_pad=False`);
- the last E block (Mixed_7c) uses a max-pool branch instead of an average pool;
- inputs in [0, 1] are resized to 299x299 (bilinear) and mapped to [-1, 1];
- the features are the 2048 global-average-pooled activations after Mixed_7c.

The module subclasses torchvision's `Inception3`, so its state_dict has exactly that layout
(`Conv2d_1a_3x3.conv.weight`, ..., `fc.weight` of 1008 x 2048) and the published file loads strictly.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torchvision.models.inception import (
    BasicConv2d,
    Inception3,
    InceptionA,
    InceptionAux,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
)

from util.checkpoint import load_state_dict
from util.errors import I2IError

from .weights import INCEPTION_FID, resolve_weights

FEATURE_DIM = 2048
INPUT_SIZE = 299


def _avg_pool_no_pad(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(InceptionA):
    """InceptionA whose pool branch averages over real pixels only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        pool = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b5, b3, pool], 1)


class FIDInceptionC(InceptionC):
    """InceptionC whose pool branch averages over real pixels only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            d = layer(d)
        pool = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b7, d, pool], 1)


class FIDInceptionE(InceptionE):
    """InceptionE with the TF graph's pooling: average without padding (Mixed_7b) or max (Mixed_7c)."""

    def __init__(self, in_channels: int, *, max_pool: bool = False) -> None:
        super().__init__(in_channels)
        self.max_pool = max_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool_no_pad(x)
        return torch.cat([b1, b3, d, self.branch_pool(pooled)], 1)


class FIDInceptionV3(Inception3):
    """Inception-v3 in the FID variant; `forward(images in [0, 1], N x 3 x H x W)` -> N x 2048 features."""

    def __init__(self) -> None:
        # B and D (the stride-2 reductions) are torchvision's own: the FID graph does not change them.
        blocks = [BasicConv2d, FIDInceptionA, InceptionB, FIDInceptionC, InceptionD, FIDInceptionE, InceptionAux]
        super().__init__(num_classes=1008, aux_logits=False, transform_input=False, inception_blocks=blocks,
                         init_weights=False)
        self.Mixed_7c = FIDInceptionE(2048, max_pool=True)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if x.dim() != 4 or x.size(1) != 3:
            raise ValueError(f"expected N x 3 x H x W images in [0, 1], got shape {tuple(x.shape)}")
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                     "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
                     "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool"):
            x = getattr(self, name)(x)
        return torch.flatten(x, 1)


def load_fid_inception(weights: str | os.PathLike | None = None, *, download: bool = False,
                       device: torch.device | str = "cpu") -> FIDInceptionV3:
    """The FID Inception with the published weights (see metrics.weights for where they are looked for)."""
    path = resolve_weights(INCEPTION_FID, weights, option="--inception_weights", download=download)
    net = FIDInceptionV3()
    state = load_state_dict(path)
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise I2IError(f"{path} is not the FID Inception-v3 weights file ({INCEPTION_FID.filename}): "
                       f"{len(missing)} missing keys (e.g. {missing[:2]}), {len(unexpected)} unexpected "
                       f"(e.g. {unexpected[:2]}). Fetch {INCEPTION_FID.url}.")
    return net.to(device).eval().requires_grad_(False)

