"""Differentiable augmentation of the discriminator's inputs (Zhao et al., "Differentiable Augmentation for
Data-Efficient GAN Training", 2020), for `--diff_augment color,translation,cutout`.

With few training images a discriminator memorises them and its gradients stop teaching the generator. The
same random, differentiable transforms are applied to every image D sees, real or generated, in D's step and in
the generators' step, so D learns from more varied images while G's gradients pass through the transforms.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from util.errors import I2IError


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5), per image; values in [-1, 1]."""
    n = x.size(0)
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size in each direction, filling with zeros."""
    n, _, h, w = x.shape
    shift = torch.stack([torch.randint(-int(h * ratio + 0.5), int(h * ratio + 0.5) + 1, (n,), device=x.device),
                         torch.randint(-int(w * ratio + 0.5), int(w * ratio + 0.5) + 1, (n,), device=x.device)], 1)
    rows = (torch.arange(h, device=x.device)[None, :] - shift[:, :1]).clamp(-1, h)  # -1 and h: the zero border
    cols = (torch.arange(w, device=x.device)[None, :] - shift[:, 1:]).clamp(-1, w)
    padded = F.pad(x, [1, 1, 1, 1])
    index_rows = (rows + 1)[:, None, :, None].expand(-1, x.size(1), -1, w + 2)
    x = padded.gather(2, index_rows)
    index_cols = (cols + 1)[:, None, None, :].expand(-1, x.size(1), h, -1)
    return x.gather(3, index_cols)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random square of `ratio` of the image's side in each image."""
    n, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h - size_h + 1, (n, 1, 1), device=x.device)
    left = torch.randint(0, w - size_w + 1, (n, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    keep = ~((rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w))
    return x * keep[:, None].to(x.dtype)


AUGMENTATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color, "translation": translation, "cutout": cutout}


def parse_policy(text: str) -> list[str]:
    """`--diff_augment color,translation` -> ["color", "translation"]; "" -> []."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise I2IError(f"--diff_augment {text}: unknown augmentation {unknown[0]!r}; choose from "
                       f"{', '.join(AUGMENTATIONS)} (comma-separated), or leave it empty.")
    return names


def diff_augment(x: torch.Tensor, policy: list[str]) -> torch.Tensor:
    for name in policy:
        x = AUGMENTATIONS[name](x)
    return x
