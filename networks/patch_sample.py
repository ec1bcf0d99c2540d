"""CUT's feature side: a generator's intermediate features, and the head `F` that samples and projects patches.

    feats = encoder_features(netG, images, [0, 4, 8, 12, 16])        # one map per listed layer of netG.model
    keys, ids = netF(feats, num_patches=256)                           # random positions, same for the batch
    queries, _ = netF(encoder_features(netG, fakes, layers), 256, ids)  # the same positions in the other image

`--netF` picks the head (registry `PATCH_SAMPLERS`; each builder's docstring says what it does). The MLPs of
`mlp_sample` are created on the first forward, when the channel counts are known; their state_dict keys are
CUT's (`mlp_{i}.0.weight`, `mlp_{i}.2.bias`, ...). Why F is never wrapped: docs/differences.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from util.errors import I2IError
from util.registry import Registry
from util.runtime import unwrap

from .init import init_weights

PATCH_SAMPLERS = Registry("patch sampler", option="netF")


def encoder_features(generator: nn.Module, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
    """The outputs of `generator.model[i]` for each i in `layers` (ascending), stopping after the last one.

    Works for any generator whose layers form one `nn.Sequential` named `model` (the ResNet generators,
    plain or anti-aliased); index 0 is the first layer's output (for the ResNets: the padded input).
    """
    return EncoderTaps(generator, layers)(x)


class EncoderTaps(nn.Module):
    """`encoder_features` as a module over the generator's own layers (the same parameters, no copy), so that it
    is compiled and spread over GPUs like any network: CUT runs the encoder twice more per step than G itself."""

    def __init__(self, generator: nn.Module, layers: Sequence[int]) -> None:
        super().__init__()
        net = unwrap(generator)
        sequence = getattr(net, "model", None)
        if not isinstance(sequence, nn.Sequential):
            raise I2IError(f"--nce_layers needs a generator whose layers form one nn.Sequential `model` (the ResNet "
                           f"generators); {type(net).__name__} has none. Use --netG resnet_9blocks or resnet_6blocks.")
        wanted = sorted(set(layers))
        if not wanted or wanted[0] < 0 or wanted[-1] >= len(sequence):
            raise I2IError(f"--nce_layers {','.join(map(str, layers))}: indices must lie in 0..{len(sequence) - 1} "
                           f"for this generator ({type(net).__name__} has {len(sequence)} layers).")
        self.model = sequence
        self.layers = wanted

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for index, layer in enumerate(self.model):
            x = layer(x)
            if index in self.layers:
                feats.append(x)
            if index == self.layers[-1]:
                break
        return feats


class PatchSampleF(nn.Module):
    """Sample `num_patches` positions of every feature map, optionally project them with a per-layer MLP.

    forward(feats, num_patches, patch_ids=None) -> (samples, patch_ids): samples[i] is [B * P, C'] with
    the positions `patch_ids[i]` shared by the whole batch (pass the ids back in to sample the same
    positions of another image). With num_patches == 0 every position is kept and the map shape returned.
    """

    def __init__(self, use_mlp: bool = True, nc: int = 256, init_type: str = "normal", init_gain: float = 0.02,
                 pool_size: int | None = None) -> None:
        super().__init__()
        self.use_mlp, self.nc = use_mlp, nc
        self.init_type, self.init_gain = init_type, init_gain
        self.pool_size = pool_size
        self.mlp_init = False

    def create_mlp(self, channels: Sequence[int], device: torch.device | str | None = None) -> None:
        """One MLP per feature layer, `channels[i]` -> nc -> nc, initialised with the init type of the run."""
        for i, in_nc in enumerate(channels):
            mlp = nn.Sequential(nn.Linear(in_nc, self.nc), nn.ReLU(), nn.Linear(self.nc, self.nc))
            setattr(self, f"mlp_{i}", init_weights(mlp, self.init_type, self.init_gain).to(device))
        self.mlp_init = True

    def forward(
        self, feats: Sequence[torch.Tensor], num_patches: int = 64, patch_ids: Sequence[torch.Tensor] | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if self.use_mlp and not self.mlp_init:
            self.create_mlp([f.shape[1] for f in feats], feats[0].device)
        samples, ids = [], []
        for i, feat in enumerate(feats):
            if self.pool_size is not None:
                feat = F.adaptive_avg_pool2d(feat, self.pool_size)
            batch, channels, height, width = feat.shape
            flat = feat.flatten(2).transpose(1, 2)  # B x HW x C
            if num_patches > 0 or self.pool_size is not None:
                if patch_ids is not None:
                    index = patch_ids[i]
                elif self.pool_size is not None:
                    index = torch.arange(height * width, device=feat.device)
                else:
                    index = torch.randperm(height * width, device=feat.device)[: min(num_patches, height * width)]
                sample = flat[:, index, :].flatten(0, 1)  # B*P x C
            else:
                index = torch.empty(0, dtype=torch.long, device=feat.device)
                sample = flat
            if self.use_mlp:
                sample = getattr(self, f"mlp_{i}")(sample)
            sample = sample / (sample.norm(p=2, dim=-1, keepdim=True) + 1e-7)  # L2-normalised
            if index.numel() == 0:  # every position kept: back to B x C' x H x W
                sample = sample.transpose(1, 2).reshape(batch, sample.shape[-1], height, width)
            samples.append(sample)
            ids.append(index)
        return samples, ids

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Create the MLPs from a checkpoint's shapes first, so weights load before any forward pass."""
        if self.use_mlp and not self.mlp_init:
            layers = sorted({int(m.group(1)) for k in state_dict if (m := re.fullmatch(r"mlp_(\d+)\.0\.weight", k))})
            if layers:
                device = state_dict[f"mlp_{layers[0]}.0.weight"].device
                self.create_mlp([state_dict[f"mlp_{i}.0.weight"].shape[1] for i in layers], device)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def extra_repr(self) -> str:
        return f"use_mlp={self.use_mlp}, nc={self.nc}, pool_size={self.pool_size}, mlp_created={self.mlp_init}"


@PATCH_SAMPLERS.register("mlp_sample")
def mlp_sample(nc: int = 256, init_type: str = "normal", init_gain: float = 0.02) -> PatchSampleF:
    """Random patches projected by a per-layer 2-layer MLP and L2-normalised (CUT's default)."""
    return PatchSampleF(True, nc, init_type, init_gain)


@PATCH_SAMPLERS.register("sample")
def sample(nc: int = 256, init_type: str = "normal", init_gain: float = 0.02) -> PatchSampleF:
    """Random patches of the raw features, L2-normalised (no parameters)."""
    return PatchSampleF(False, nc, init_type, init_gain)


@PATCH_SAMPLERS.register("reshape")
def reshape(nc: int = 256, init_type: str = "normal", init_gain: float = 0.02) -> PatchSampleF:
    """Each feature map pooled to 4x4, the 16 cells as patches, L2-normalised (no parameters)."""
    return PatchSampleF(False, nc, init_type, init_gain, pool_size=4)
