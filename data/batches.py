"""Forming batches: one clear line instead of a collate traceback, also from inside a loader worker.

`CollateBatch` names two images of one batch whose sizes differ (`--preprocess none` or `scale_width` with
mixed image sizes) and images whose channels do not match `--input_nc`/`--output_nc`, with the options that
fix it; `worker_message` recovers the one-line `I2IError` a DataLoader worker wraps in its traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import default_collate

from util.errors import I2IError

_WORKER_PREFIX = "Caught I2IError in DataLoader worker"


class CollateBatch:
    """`default_collate` after checking sizes and channel counts of the image tensors of a batch (picklable)."""

    def __init__(self, channels: dict[str, tuple[int, str]] | None = None) -> None:
        self.channels = channels or {}  # "A" -> (expected channels, the option that sets them)

    @classmethod
    def from_options(cls, opt: argparse.Namespace) -> CollateBatch:
        if not hasattr(opt, "input_nc"):
            return cls()
        inp, out = (opt.input_nc, "--input_nc"), (opt.output_nc, "--output_nc")
        a, b = (inp, out) if opt.direction == "AtoB" else (out, inp)
        return cls({"A": a, "B": b})

    def __call__(self, items: Sequence[dict[str, Any]]) -> Any:
        if items and isinstance(items[0], dict):
            for key in items[0]:
                tensors = [item[key] for item in items]
                if all(torch.is_tensor(t) for t in tensors):
                    self._check(key, tensors, [item.get(f"{key}_paths", "?") for item in items])
        return default_collate(items)

    def _check(self, key: str, tensors: list[torch.Tensor], paths: list[Any]) -> None:
        expected = self.channels.get(key)
        if expected is not None and tensors[0].dim() == 3 and tensors[0].shape[0] != expected[0]:
            nc, option = expected
            got = tensors[0].shape[0]
            raise I2IError(
                f"{option} {nc}, but '{paths[0]}' ({key} side) loads with {got} channel{'s' * (got != 1)}. The image "
                f"folders give 1 (grayscale) or 3 (RGB) channels: pass {option} 1 or 3 (with --direction BtoA, "
                "--input_nc describes the B images)."
            )
        first = tuple(tensors[0].shape)
        for tensor, path in zip(tensors[1:], paths[1:]):
            if tuple(tensor.shape) != first:
                raise I2IError(
                    f"images of one batch differ in size after preprocessing: '{paths[0]}' is {_size(first)} but "
                    f"'{path}' is {_size(tuple(tensor.shape))}. Use --batch_size 1, or a --preprocess that ends at "
                    "a fixed size (resize_and_crop, crop, scale_width_and_crop), or resize the images to one size."
                )


def _size(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape[-2:][::-1])) if len(shape) >= 2 else str(shape)


def worker_message(exc: I2IError) -> I2IError:
    """The original one-line `I2IError` behind a DataLoader worker's wrapped copy (or `exc` itself)."""
    text = str(exc)
    if not text.startswith(_WORKER_PREFIX):
        return exc
    return I2IError(text.rsplit("I2IError: ", 1)[-1].strip())
