"""The dataset contract and the shared preprocessing pipeline (`--preprocess`, `--no_flip`).

`get_params` draws the random choices of one item (crop position, flip) so that paired images can share
them; `get_transform` turns the options (and, for paired data, those choices) into a transform:

    Grayscale(1) (1-channel side)  ->  resize / scale_width  ->  crop  ->  round to a multiple of 4 (`none` only)
    ->  horizontal flip  ->  ToTensor + Normalize(0.5, 0.5), i.e. values in [-1, 1]

Every step is a torchvision transform or a small module-level class, so a transform pickles and works with
`spawn` DataLoader workers (Windows, macOS). An image smaller than `--crop_size` raises `I2IError` naming it.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import torch
import torch.utils.data as data
import torchvision.transforms as T
from PIL import Image
from torchvision.transforms import InterpolationMode

from util.errors import I2IError

logger = logging.getLogger(__name__)

#: the valid values of `--preprocess` (feeds the option's choices=)
PREPROCESS_MODES: tuple[str, ...] = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")

#: `--preprocess none` rounds each side to the nearest multiple of this (as the reference does; a UNet needs
#: multiples of 128 or 256, so pick crop sizes yourself for `unet_*` generators)
NONE_MULTIPLE = 4

_PIL_TO_MODE = {
    Image.Resampling.NEAREST: InterpolationMode.NEAREST,
    Image.Resampling.BILINEAR: InterpolationMode.BILINEAR,
    Image.Resampling.BICUBIC: InterpolationMode.BICUBIC,
    Image.Resampling.LANCZOS: InterpolationMode.LANCZOS,
    Image.Resampling.BOX: InterpolationMode.BOX,
    Image.Resampling.HAMMING: InterpolationMode.HAMMING,
}


class BaseDataset(data.Dataset):
    """A dataset mode: subclass it, register it in `data.DATASETS`, implement `__len__` and `__getitem__`.

    `__getitem__` returns a dict of tensors and paths, e.g. `{'A', 'B', 'A_paths', 'B_paths'}`.
    """

    def __init__(self, opt: argparse.Namespace) -> None:
        self.opt = opt
        self.root = opt.dataroot

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        """Add dataset-specific options or change defaults of existing ones; return the parser."""
        return parser

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        raise NotImplementedError


def validate_preprocess(opt: argparse.Namespace) -> None:
    """Raise `I2IError` for an unknown `--preprocess` or a `--load_size` below `--crop_size` where both are used."""
    if opt.preprocess not in PREPROCESS_MODES:
        raise I2IError(f"unknown --preprocess '{opt.preprocess}'. Valid values: {', '.join(PREPROCESS_MODES)}.")
    uses_load_size = "resize" in opt.preprocess or "scale_width" in opt.preprocess
    if uses_load_size and "crop" in opt.preprocess and opt.load_size < opt.crop_size:
        raise I2IError(
            f"--load_size {opt.load_size} is smaller than --crop_size {opt.crop_size} with --preprocess "
            f"{opt.preprocess}: images are resized to load_size and then cropped to crop_size. "
            "Set --load_size >= --crop_size."
        )


def get_params(opt: argparse.Namespace, size: tuple[int, int]) -> dict[str, Any]:
    """Draw one item's random choices for an image of `size` (w, h): crop position and flip.

    Pass the result to `get_transform(opt, params)` for every image of a pair so they get the same crop and flip.
    """
    new_w, new_h = size  # after the resize step of `opt.preprocess`, before cropping
    if "resize" in opt.preprocess:
        new_w, new_h = opt.load_size, opt.load_size
    elif "scale_width" in opt.preprocess:
        new_w, new_h = ScaleWidth.target(size, opt.load_size, opt.crop_size)
    x = int(torch.randint(0, max(0, new_w - opt.crop_size) + 1, ()).item())
    y = int(torch.randint(0, max(0, new_h - opt.crop_size) + 1, ()).item())
    flip = bool(torch.rand(()).item() > 0.5)
    return {"crop_pos": (x, y), "flip": flip}


def get_transform(
    opt: argparse.Namespace,
    params: dict[str, Any] | None = None,
    grayscale: bool = False,
    method: InterpolationMode | int = InterpolationMode.BICUBIC,
    convert: bool = True,
) -> T.Compose:
    """Build the preprocessing transform of `opt.preprocess` (see the module docstring for the order).

    params   -- None: random crop and flip drawn per call (unpaired data); a `get_params` dict: fixed ones (pairs)
    grayscale -- convert to 1 channel first
    convert  -- finish with ToTensor + Normalize to [-1, 1]; False returns a PIL image
    """
    validate_preprocess(opt)
    if not isinstance(method, InterpolationMode):  # a PIL resampling constant, as older dataset code passes
        try:
            method = _PIL_TO_MODE[Image.Resampling(method)]
        except (ValueError, KeyError):
            raise I2IError(f"unknown interpolation method {method!r}; pass a torchvision InterpolationMode.") from None
    steps: list[Any] = []
    if grayscale:
        steps.append(T.Grayscale(1))
    if "resize" in opt.preprocess:
        steps.append(T.Resize([opt.load_size, opt.load_size], interpolation=method))
    elif "scale_width" in opt.preprocess:
        steps.append(ScaleWidth(opt.load_size, opt.crop_size, method))
    if "crop" in opt.preprocess:
        steps.append(Crop(opt.crop_size, None if params is None else params["crop_pos"]))
    if opt.preprocess == "none" and opt.isTrain:
        # training batches need one size; at test time the model pads and crops instead (inference/sizing.py),
        # so results keep the input's exact size
        steps.append(RoundToMultiple(NONE_MULTIPLE, method))
    if not opt.no_flip:
        if params is None:
            steps.append(T.RandomHorizontalFlip())
        elif params["flip"]:
            steps.append(Flip())
    if convert:
        channels = 1 if grayscale else 3
        steps += [T.ToTensor(), T.Normalize((0.5,) * channels, (0.5,) * channels)]
    return T.Compose(steps)


def apply_transform(transform: Any, img: Image.Image, path: str) -> Any:
    """Run `transform` on `img`, adding the image's path to any `I2IError` (e.g. an image below --crop_size)."""
    try:
        return transform(img)
    except I2IError as exc:
        raise I2IError(f"image '{path}': {exc}") from None


class ScaleWidth:
    """Resize to width `width`, keeping the aspect ratio but never going below `min_height` (`scale_width`)."""

    def __init__(self, width: int, min_height: int, method: InterpolationMode = InterpolationMode.BICUBIC) -> None:
        self.width, self.min_height, self.method = width, min_height, method

    @staticmethod
    def target(size: tuple[int, int], width: int, min_height: int) -> tuple[int, int]:
        w, h = size
        if w == width and h >= min_height:
            return w, h
        return width, int(max(width * h / w, min_height))

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = self.target(img.size, self.width, self.min_height)
        if (w, h) == img.size:
            return img
        return T.functional.resize(img, [h, w], interpolation=self.method)

    def __repr__(self) -> str:
        return f"ScaleWidth(width={self.width}, min_height={self.min_height}, method={self.method.value})"


class Crop:
    """Crop a `size` x `size` square at `pos` (x, y), or at a random position when `pos` is None."""

    def __init__(self, size: int, pos: tuple[int, int] | None = None) -> None:
        self.size, self.pos = size, pos

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        s = self.size
        if w < s or h < s:
            raise I2IError(
                f"the image is {w}x{h} after resizing, smaller than --crop_size {s}. "
                "Lower --crop_size, raise --load_size, or use --preprocess scale_width / none."
            )
        if self.pos is None:
            x = int(torch.randint(0, w - s + 1, ()).item())
            y = int(torch.randint(0, h - s + 1, ()).item())
        else:  # a position drawn for the pair; clamp so the box stays inside the image
            x, y = min(self.pos[0], w - s), min(self.pos[1], h - s)
        if (x, y, w, h) == (0, 0, s, s):
            return img
        return img.crop((x, y, x + s, y + s))

    def __repr__(self) -> str:
        return f"Crop(size={self.size}, pos={self.pos})"


class RoundToMultiple:
    """Resize each side to the nearest multiple of `base` (at least `base`); `--preprocess none`."""

    _warned = False

    def __init__(self, base: int = NONE_MULTIPLE, method: InterpolationMode = InterpolationMode.BICUBIC) -> None:
        self.base, self.method = base, method

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        new_w = max(self.base, int(round(w / self.base) * self.base))
        new_h = max(self.base, int(round(h / self.base) * self.base))
        if (new_w, new_h) == (w, h):
            return img
        if not RoundToMultiple._warned:
            RoundToMultiple._warned = True
            logger.warning(
                "--preprocess none: image size %dx%d is not a multiple of %d; resizing to %dx%d "
                "(this warning is shown once)", w, h, self.base, new_w, new_h,
            )
        return T.functional.resize(img, [new_h, new_w], interpolation=self.method)

    def __repr__(self) -> str:
        return f"RoundToMultiple(base={self.base}, method={self.method.value})"


class Flip:
    """Always flip horizontally (the flip of a pair was already drawn by `get_params`)."""

    def __call__(self, img: Image.Image) -> Image.Image:
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    def __repr__(self) -> str:
        return "Flip()"
