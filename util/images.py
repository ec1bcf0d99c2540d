"""Tensors in [-1, 1] to 8-bit images, and writing them to disk (grayscale stays 1-channel)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .files import atomic_write

_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _to_uint8(batch: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float N x C x H x W -> uint8 N x H x W x C on the tensor's own device.

    Same float32 arithmetic and truncation as the reference, so in-range pixels come out identical;
    out-of-range values are clamped instead of wrapping around."""
    scaled = (batch.detach().float().clamp(-1.0, 1.0) + 1) / 2.0 * 255.0
    return scaled.to(torch.uint8).permute(0, 2, 3, 1)


def tensors2ims(t: torch.Tensor) -> list[np.ndarray]:
    """Every image of a N x C x H x W batch as an H x W x C uint8 array (one device-to-host copy)."""
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4:
        raise ValueError(f"expected an N x C x H x W image batch, got shape {tuple(t.shape)}")
    return list(_to_uint8(t).cpu().numpy())


def tensor2im(t: torch.Tensor | np.ndarray, index: int = 0) -> np.ndarray:
    """Image `index` of a batch (or a single C x H x W image) as an H x W x C uint8 array; a numpy array as it is."""
    if isinstance(t, np.ndarray):
        return t
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4:
        raise ValueError(f"expected an N x C x H x W image batch, got shape {tuple(t.shape)}")
    return _to_uint8(t[index : index + 1]).cpu().numpy()[0]


def to_pil(image: np.ndarray) -> Image.Image:
    """H x W x C (C in 1, 3, 4) or H x W uint8 array -> PIL image in mode L, RGB or RGBA."""
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}; convert it with tensor2im first")
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if image.ndim != 3 or channels not in _PIL_MODES:
        raise ValueError(f"cannot save an image of shape {image.shape}: expected 1, 3 or 4 channels")
    array = image[:, :, 0] if channels == 1 else image
    return Image.fromarray(np.ascontiguousarray(array))  # uint8 2-D -> L, x3 -> RGB, x4 -> RGBA


def save_image(image: np.ndarray, path: str | os.PathLike, aspect_ratio: float = 1.0) -> None:
    """Write an H x W x C uint8 image atomically, in the format of the file extension (PNG when unknown)."""
    path = Path(path)
    img = to_pil(image)
    w, h = img.size
    if aspect_ratio > 1.0:  # wider: width * ratio
        img = img.resize((int(round(w * aspect_ratio)), h), Image.BICUBIC)
    elif aspect_ratio < 1.0:  # taller: height / ratio
        img = img.resize((w, int(round(h / aspect_ratio))), Image.BICUBIC)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    # zlib level 1: a 256 px PNG encodes in a third of the time of Pillow's default (level 6), ~7 % larger, the
    # same pixels; test.py writes two per input, which on a small CPU is a tenth of a resnet's time per image.
    options = {"compress_level": 1} if fmt == "PNG" else {}
    atomic_write(path, lambda f: img.save(f, format=fmt, **options), durable=False)
