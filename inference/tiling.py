"""Translate images larger than memory allows, tile by tile, with blended seams and whole-image normalisation.

    out = translate_tiled(net, image, tile=512, overlap=64)      # image: 1 x C x H x W in [-1, 1]

Cut up naively, each tile would get its own colours: an InstanceNorm layer (and a BatchNorm in training mode)
normalises with the statistics of what it sees. Here every such layer uses the whole image's statistics,
gathered over the tiles in `stat_passes` passes before the final one:

- pass 1 runs each tile with its own statistics and accumulates, per norm layer, the sums of its inputs over
  the tile's own share of the image (its "core": overlaps are split in the middle, so every pixel counts once);
- each further pass runs with the previous pass's statistics (frozen) and accumulates them again; norm layer
  k's statistics are exact after k passes, and later layers converge quickly;
- the final pass runs with the frozen statistics and blends the tiles with weights that ramp linearly across
  the middle half of each overlap (a tile's outer edge, disturbed by its own border, gets no weight).

Memory holds one tile's activations plus the input, output and weight images. Tile positions are multiples of
the generator's size multiple, so tiles see the same pixel grid as the whole image would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from util.runtime import replace_modules

from .sizing import pad_to_multiple, size_multiple


class _GlobalNorm(nn.Module):
    """Stands in for a per-instance norm layer: normalises with given statistics (or the input's own) and
    accumulates the sums of its inputs over the current tile's core region."""

    def __init__(self, norm: nn.modules.batchnorm._NormBase) -> None:
        super().__init__()
        self.norm = norm
        self.mean: torch.Tensor | None = None  # frozen statistics (C,), or None: use the tile's own
        self.var: torch.Tensor | None = None
        self.core: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)  # y0, y1, x0, x1 as fractions
        self.reset_sums()

    def reset_sums(self) -> None:
        self.total = self.total_sq = None
        self.count = 0

    def statistics(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.total / self.count
        return mean.float(), (self.total_sq / self.count - mean**2).clamp_min(0).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y0, y1, x0, x1 = self.core
        region = x[..., round(y0 * h):round(y1 * h), round(x0 * w):round(x1 * w)].double()
        sums, sums_sq = region.sum(dim=(0, 2, 3)), (region**2).sum(dim=(0, 2, 3))
        self.total = sums if self.total is None else self.total + sums
        self.total_sq = sums_sq if self.total_sq is None else self.total_sq + sums_sq
        self.count += region.shape[0] * region.shape[2] * region.shape[3]
        if self.mean is None:
            mean = x.mean(dim=(2, 3), keepdim=True)
            var = x.var(dim=(2, 3), keepdim=True, unbiased=False)
        else:
            mean, var = self.mean.view(1, -1, 1, 1), self.var.view(1, -1, 1, 1)
        out = (x - mean) / torch.sqrt(var + self.norm.eps)
        if self.norm.affine:
            out = out * self.norm.weight.view(1, -1, 1, 1) + self.norm.bias.view(1, -1, 1, 1)
        return out


def _per_instance(module: nn.Module) -> bool:
    """Does this layer normalise with the statistics of its own input?"""
    if isinstance(module, nn.InstanceNorm2d):
        return not (module.track_running_stats and not module.training)
    return isinstance(module, nn.BatchNorm2d) and (module.training or not module.track_running_stats)


@contextlib.contextmanager
def global_norms(net: nn.Module) -> Iterator[list[_GlobalNorm]]:
    """Swap `net`'s per-instance norm layers for `_GlobalNorm`s for the duration of the block."""
    swapped = replace_modules(net, _per_instance, _GlobalNorm)
    try:
        yield [getattr(parent, name) for parent, name, _ in swapped]
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def tile_starts(size: int, tile: int, overlap: int, multiple: int) -> list[int]:
    """Start positions along one axis: steps of tile - overlap, the last tile flush with the end."""
    if size <= tile:
        return [0]
    step = max(multiple, (tile - overlap) // multiple * multiple)
    starts = list(range(0, size - tile, step)) + [size - tile]
    return sorted(set(starts))


def _cores(starts: list[int], tile: int, size: int, multiple: int) -> list[tuple[int, int]]:
    """Each tile's share of the axis: neighbouring tiles split their overlap in the middle."""
    bounds = [0]
    for a, b in zip(starts, starts[1:]):
        bounds.append(((b + min(a + tile, size)) // 2) // multiple * multiple)
    bounds.append(size)
    return [(bounds[i], bounds[i + 1]) for i in range(len(starts))]


def _ramp(length: int, overlap: int, before: bool, after: bool) -> torch.Tensor:
    """Blend weights along one axis of a tile: 0 over the outer quarter of each overlap with a neighbour (where
    the tile's edge disturbs its output), then linear up to 1 at three quarters, so two neighbours sum to 1."""
    w = torch.ones(length)
    if overlap > 0:
        margin = overlap / 4
        ramp = ((torch.arange(length, dtype=torch.float32) + 0.5 - margin) / (overlap - 2 * margin)).clamp(0, 1)
        if before:
            w = torch.minimum(w, ramp)
        if after:
            w = torch.minimum(w, ramp.flip(0))
    return w


@torch.inference_mode()
def translate_tiled(net: nn.Module, image: torch.Tensor, tile: int, overlap: int = 32,
                    stat_passes: int = 2) -> torch.Tensor:
    """`net(image)` for a 1 x C x H x W image, computed tile by tile (see the module docstring)."""
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"translate_tiled takes one image (1 x C x H x W), got shape {tuple(image.shape)}")
    multiple = size_multiple(net)
    height, width = image.shape[-2:]
    padded = pad_to_multiple(image, multiple)
    big_h, big_w = padded.shape[-2:]
    tile = max(multiple, -(-tile // multiple) * multiple)
    overlap = min(overlap // multiple * multiple, tile - multiple)
    tile_h, tile_w = min(tile, big_h), min(tile, big_w)
    ys, xs = tile_starts(big_h, tile_h, overlap, multiple), tile_starts(big_w, tile_w, overlap, multiple)
    cores_y, cores_x = _cores(ys, tile_h, big_h, multiple), _cores(xs, tile_w, big_w, multiple)
    tiles = [(y, x, cy, cx) for y, cy in zip(ys, cores_y) for x, cx in zip(xs, cores_x)]

    with global_norms(net) as norms:
        for _ in range(stat_passes if norms else 0):
            for norm in norms:
                norm.reset_sums()
            for y, x, (cy0, cy1), (cx0, cx1) in tiles:
                core = ((cy0 - y) / tile_h, (cy1 - y) / tile_h, (cx0 - x) / tile_w, (cx1 - x) / tile_w)
                for norm in norms:
                    norm.core = core
                net(padded[..., y:y + tile_h, x:x + tile_w])
            for norm in norms:
                norm.mean, norm.var = norm.statistics()
        out = weight = None
        for y, x, _, _ in tiles:
            result = net(padded[..., y:y + tile_h, x:x + tile_w]).float()
            if out is None:
                out = torch.zeros(1, result.shape[1], big_h, big_w, device=result.device)
                weight = torch.zeros(1, 1, big_h, big_w, device=result.device)
            w = (_ramp(tile_h, overlap, y > 0, y + tile_h < big_h)[:, None]
                 * _ramp(tile_w, overlap, x > 0, x + tile_w < big_w)[None, :]).to(result.device)
            out[..., y:y + tile_h, x:x + tile_w] += result * w
            weight[..., y:y + tile_h, x:x + tile_w] += w
    return (out / weight.clamp_min(1e-6))[..., :height, :width]
