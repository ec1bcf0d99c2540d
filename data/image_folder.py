"""Finding and opening image files.

Images load as a viewer shows them (EXIF orientation applied, transparency over white, 16-bit and float
grayscale scaled to 8 bits; docs/differences.md, "Data"); a missing or empty folder or an unreadable file
raises `I2IError` naming the path, so training stops rather than silently learning from fewer images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from util.errors import I2IError

#: image file extensions, matched case-insensitively
IMG_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff", ".webp")

_16BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_EXIF_ORIENTATION = 0x0112


def is_image_file(filename: str | os.PathLike) -> bool:
    """True if the name ends with one of `IMG_EXTENSIONS` (any case)."""
    return str(filename).lower().endswith(IMG_EXTENSIONS)


def make_dataset(
    dir: str | os.PathLike, max_dataset_size: float = float("inf"), *, hint: str = ""
) -> list[str]:
    """All image paths under `dir` (recursive), sorted, then cut to the first `max_dataset_size`.

    hint -- appended to the error message when the folder is missing or holds no images, to say what should be
            there (e.g. "--dataset_mode unaligned reads <dataroot>/trainA and <dataroot>/trainB").
    """
    folder = Path(dir)
    suffix = f" {hint}" if hint else ""
    if not folder.is_dir():
        raise I2IError(f"image folder '{folder}' does not exist.{suffix}")
    paths = sorted(
        os.path.join(root, name)
        for root, _dirs, files in os.walk(folder)
        for name in files
        if is_image_file(name)
    )
    if not paths:
        raise I2IError(
            f"image folder '{folder}' holds no images ({' '.join(IMG_EXTENSIONS)}, any case).{suffix}"
        )
    if max_dataset_size < len(paths):
        paths = paths[: int(max_dataset_size)]
    return paths


def load_image(path: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    """Open an image with PIL and convert it to `mode` ("RGB" or "L"); `I2IError` naming the file if unreadable.

    16-bit grayscale is scaled to 8 bits first (PIL's own conversion would clip it to white)."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.getexif().get(_EXIF_ORIENTATION, 1) != 1:
                img = ImageOps.exif_transpose(img)
            if img.mode in _16BIT_MODES:
                img = _to_8bit(img)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")  # transparent pixels laid over white
                img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
            return img.convert(mode)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise I2IError(
            f"cannot read image '{path}' ({type(exc).__name__}: {exc}). The file is corrupt or not an image: "
            "replace it, or delete it from the dataset folder."
        ) from None


def _to_8bit(img: Image.Image) -> Image.Image:
    array = np.asarray(img).astype(np.float64)
    if img.mode == "F" and array.max(initial=0) <= 1.0:  # float images in [0, 1]
        array = array * 255.0
    # "I;16*" modes are 16-bit for sure; plain "I" (32-bit) is 16-bit data only if values exceed 8 bits
    if img.mode.startswith("I;16") or array.max(initial=0) > 255:
        array = array / 257.0
    return Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8))
