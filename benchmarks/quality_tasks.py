"""The tasks of benchmarks/quality.py: real photographs (shipped inside pip packages) and known transforms of them.

Domain A is crops of the photographs; domain B is a known transform of domain A, so every test crop has its
ground truth. The training sets are unpaired (the B crops are transforms of *other* crops than the A crops) and
each photograph gives train crops or test crops, never both. The aligned folders (A|B pairs of the same crops)
feed pix2pix, the paired upper bound.

Three transforms that stand for real uses:
- `tone`: a global colour grade (warm, lifted shadows, softer highlights), the same for every pixel;
- `cartoon`: a local stylisation (edge-preserving smoothing, flattened colours, dark outlines at the smoothed
  image's edges; `cartoon_raw`, not run by default, is the first version, outlined at the raw photo's edges);
- `recolour`: a change of content that keeps the geometry (saturated objects take the opposite hue).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SKIMAGE_TRAIN = ("astronaut.png", "coffee.png", "motorcycle_left.png", "rocket.jpg")
SKIMAGE_TEST = ("chelsea.png",)
SHORT_SIDE = 192  # photographs are scaled so that their shorter side has this many pixels, then cropped


def photographs() -> tuple[list[Image.Image], list[Image.Image]]:
    """(train photographs, test photographs) from scikit-image's data and matplotlib's sample data."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    train = [Image.open(folder / name).convert("RGB") for name in SKIMAGE_TRAIN]
    test = [Image.open(folder / name).convert("RGB") for name in SKIMAGE_TEST]
    try:
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            test.append(Image.open(f).convert("RGB"))
    except (ImportError, OSError, ValueError):
        pass  # one test photograph fewer
    return [_scaled(p) for p in train], [_scaled(p) for p in test]


def _scaled(photo: Image.Image) -> Image.Image:
    ratio = SHORT_SIDE / min(photo.size)
    return photo.resize((round(photo.width * ratio), round(photo.height * ratio)), Image.Resampling.LANCZOS)


def random_crops(photos: list[Image.Image], count: int, size: int, rng: np.random.Generator) -> list[Image.Image]:
    crops = []
    for i in range(count):
        photo = photos[i % len(photos)]
        x, y = rng.integers(0, photo.width - size + 1), rng.integers(0, photo.height - size + 1)
        crops.append(photo.crop((int(x), int(y), int(x) + size, int(y) + size)))
    return crops


def grid_crops(photos: list[Image.Image], size: int) -> list[Image.Image]:
    """Non-overlapping crops covering each test photograph."""
    return [p.crop((x, y, x + size, y + size)) for p in photos
            for y in range(0, p.height - size + 1, size) for x in range(0, p.width - size + 1, size)]


# -- the transforms: uint8 RGB image in, uint8 RGB image out ---------------------------------------------------

def tone(image: Image.Image) -> Image.Image:
    x = np.asarray(image, dtype=np.float32) / 255
    x = x ** np.array([0.85, 0.95, 1.15], dtype=np.float32)  # warmer: red and green lifted, blue lowered
    x = 0.06 + 0.9 * x  # lifted blacks, softer highlights
    x = x + 0.25 * (x - x.mean(axis=-1, keepdims=True))  # a little more saturation
    return Image.fromarray(np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8))


def cartoon(image: Image.Image) -> Image.Image:
    """Median-filtered, posterised, outlined where the *smoothed* image has edges (as cartoon filters draw them)."""
    return _cartoon(image, outlines_of_smoothed=True)


def cartoon_raw(image: Image.Image) -> Image.Image:
    """The first `cartoon` (until 2026-12-07): outlines from the unsmoothed photo, so they trace its fur, fine
    texture and JPEG noise (a flat sky turns speckled), which no translation can place; kept to compare with."""
    return _cartoon(image, outlines_of_smoothed=False)


def _cartoon(image: Image.Image, outlines_of_smoothed: bool) -> Image.Image:
    smooth = image.filter(ImageFilter.MedianFilter(5))
    flat = (np.asarray(smooth, dtype=np.int32) // 48 * 48 + 24).astype(np.float32)  # a few levels per channel
    edges_of = smooth if outlines_of_smoothed else image
    edges = np.asarray(edges_of.convert("L").filter(ImageFilter.FIND_EDGES), dtype=np.float32)
    outline = np.clip(1 - edges / 96, 0.2, 1)[..., None]
    return Image.fromarray(np.clip(flat * outline, 0, 255).astype(np.uint8))


def recolour(image: Image.Image) -> Image.Image:
    hsv = np.asarray(image.convert("HSV"), dtype=np.int32)
    saturated = hsv[..., 1] > 70
    hsv[..., 0] = np.where(saturated, (hsv[..., 0] + 128) % 256, hsv[..., 0])
    return Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB")


TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {"tone": tone, "cartoon": cartoon, "recolour": recolour,
                                                               "cartoon_raw": cartoon_raw}
DEFAULT_TASKS = ("tone", "cartoon", "recolour")


def reject_unknown(parser: argparse.ArgumentParser, option: str, names: list[str], known: Collection[str]) -> None:
    """End in one usage error naming `option`, the unknown names and the choices, if any of `names` is unknown."""
    if unknown := [name for name in names if name not in known]:
        parser.error(f"{option}: unknown {', '.join(unknown)}; choose from {','.join(known)}")


def task_crops(transform: str, size: int, n_train: int, seed: int = 0,
               photos: tuple[list[Image.Image], list[Image.Image]] | None = None) -> dict[str, list[Image.Image]]:
    """{"trainA", "trainB", "testA", "testB": crops} of one task (testB is testA's ground truth; the B training
    crops are transforms of other crops than trainA's: unpaired). The crops depend on `seed` only."""
    apply = TRANSFORMS[transform]
    train_photos, test_photos = photos or photographs()
    crops = random_crops(train_photos, 2 * n_train, size, np.random.default_rng(seed))
    a_crops, b_sources = crops[:n_train], crops[n_train:]
    tests = grid_crops(test_photos, size)
    return {"trainA": a_crops, "trainB": [apply(c) for c in b_sources], "testA": tests,
            "testB": [apply(c) for c in tests]}


def make_task(root: Path, transform: str, size: int, n_train: int, seed: int = 0) -> Path:
    """Write `root/{trainA,trainB,testA,testB}` (task_crops) and `root/aligned/{train,test}` (A|B pairs) for one
    transform; returns root."""
    folders = task_crops(transform, size, n_train, seed)
    for folder, images in folders.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            image.save(root / folder / f"{i:04d}.png")
    train_truth = [TRANSFORMS[transform](c) for c in folders["trainA"]]  # trainB holds other crops' transforms
    for split, sources, truths in (("train", folders["trainA"], train_truth),
                                   ("test", folders["testA"], folders["testB"])):
        (root / "aligned" / split).mkdir(parents=True, exist_ok=True)
        for i, (image, truth) in enumerate(zip(sources, truths)):
            pair = Image.new("RGB", (2 * size, size))
            pair.paste(image, (0, 0))
            pair.paste(truth, (size, 0))
            pair.save(root / "aligned" / split / f"{i:04d}.png")
    return root
