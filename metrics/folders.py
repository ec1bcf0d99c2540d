"""Find the images to compare: two folders, or the visuals of a test results folder, whose images are either
per visual (`images/<visual>/<stem>.png`) or flat (`images/<stem>_<visual>.png`, the reference's names).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.utils.data
from PIL import Image

from data.image_folder import is_image_file
from util.errors import I2IError

_FLAT_NAME = re.compile(r"^(?P<stem>.+)_(?P<visual>(?:real|fake|rec|idt)(?:_[A-Za-z0-9]+)?)$")


def list_images(folder: Path) -> list[Path]:
    """The image files directly in `folder`, sorted by name."""
    if not folder.is_dir():
        raise I2IError(f"{folder} is not a folder of images.")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p.name))
    if not paths:
        raise I2IError(f"{folder} holds no images.")
    return paths


def result_visuals(results_dir: str | os.PathLike) -> dict[str, dict[str, Path]]:
    """{visual: {stem: path}} of a test results folder (the folder holding `images/`, or `images/` itself)."""
    root = Path(results_dir)
    images = root / "images" if (root / "images").is_dir() else root
    if not images.is_dir():
        raise I2IError(f"{root} is not a results folder: expected {root / 'images'} (written by test.py).")
    visuals: dict[str, dict[str, Path]] = {}
    for entry in sorted(images.iterdir()):
        if entry.is_dir():
            files = {p.stem: p for p in entry.iterdir() if p.is_file() and is_image_file(p.name)}
            if files:
                visuals.setdefault(entry.name, {}).update(files)
        elif is_image_file(entry.name):
            match = _FLAT_NAME.match(entry.stem)
            if match:
                visuals.setdefault(match["visual"], {})[match["stem"]] = entry
    if not visuals:
        raise I2IError(f"{images} holds no result images (images/<visual>/<name>.png or images/<name>_<visual>.png).")
    return visuals


def read_uint8(path: Path) -> torch.Tensor:
    """An image file as a uint8 C x H x W tensor (grayscale stays 1 channel, anything else becomes RGB)."""
    with Image.open(path) as img:
        img = img.convert("L" if img.mode in ("L", "I", "I;16", "1") else "RGB")
        array = np.asarray(img)
    tensor = torch.from_numpy(array.copy())
    return tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)


class _Files(torch.utils.data.Dataset):
    def __init__(self, rows: list[tuple[Path, ...]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(read_uint8(p) for p in self.rows[index])


def _as_list(batch: list[tuple[torch.Tensor, ...]]) -> list[tuple[torch.Tensor, ...]]:
    return batch


def file_batches(rows: list[tuple[Path, ...]], batch_size: int) -> tuple[Iterator, int]:
    """Batches (lists of tuples of uint8 images) over `rows`, decoded in a background worker."""
    # A background decoder pays off on many batches only; starting one costs more than a few images.
    workers = min(2, os.cpu_count() or 1) if len(rows) > 4 * batch_size else 0
    loader = torch.utils.data.DataLoader(_Files(rows), batch_size=batch_size, num_workers=workers,
                                         collate_fn=_as_list)
    return iter(loader), len(loader)


def paired_rows(folder_a: Path, folder_b: Path) -> list[tuple[Path, Path]]:
    """(a, b) files with the same stem in both folders; an error lists what is missing."""
    a = {p.stem: p for p in list_images(folder_a)}
    b = {p.stem: p for p in list_images(folder_b)}
    common = sorted(a.keys() & b.keys())
    if not common:
        raise I2IError(f"{folder_a} and {folder_b} share no file names, so they cannot be compared as pairs "
                       "(leave out --paired to compare them as distributions).")
    return [(a[s], b[s]) for s in common]
