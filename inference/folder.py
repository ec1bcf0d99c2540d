"""Translating many files: DataLoader workers decode the next images, consecutive images of one size go through
the generator as one batch, and a background thread encodes and writes the PNGs, so the three overlap."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from util.background import BackgroundWorker
from util.images import tensor2im, to_pil

from .translator import Translator, image_tensor


class ImageFiles(Dataset):
    """Item i: (the C x H x W tensor of file i, as a translator takes it, and i)."""

    def __init__(self, paths: Sequence[Path], input_nc: int) -> None:
        self.paths, self.input_nc = list(paths), input_nc

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from data.image_folder import load_image

        return image_tensor(load_image(self.paths[index]), self.input_nc), index


def same_size_batches(items: Iterable[tuple[torch.Tensor, int]], batch_size: int) \
        -> Iterator[tuple[torch.Tensor, list[int]]]:
    """Consecutive items stacked into batches of up to `batch_size` images that share one size."""
    tensors: list[torch.Tensor] = []
    indices: list[int] = []
    for tensor, index in items:
        if tensors and (len(tensors) == batch_size or tensor.shape != tensors[0].shape):
            yield torch.stack(tensors), indices
            tensors, indices = [], []
        tensors.append(tensor)
        indices.append(int(index))
    if tensors:
        yield torch.stack(tensors), indices


def write_pngs(batch: torch.Tensor, targets: Sequence[Path]) -> None:
    for image, target in zip(batch, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        to_pil(tensor2im(image[None])).save(target)


def translate_files(translator: Translator, sources: Sequence[Path], targets: Sequence[Path], *, batch_size: int = 4,
                    workers: int = 2, progress=None) -> None:
    """Translate file sources[i] into the PNG targets[i]; `progress(n)` after each batch."""
    loader = DataLoader(ImageFiles(sources, translator.input_nc), batch_size=None, num_workers=workers,
                        prefetch_factor=2 * batch_size if workers else None)
    with BackgroundWorker() as writer:
        for batch, indices in same_size_batches(loader, batch_size):
            writer.submit(write_pngs, translator.translate_batch(batch), [targets[i] for i in indices])
            if progress is not None:
                progress(len(indices))
