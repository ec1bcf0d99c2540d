"""Tiny demo datasets drawn on the fly: no download, same bytes on every machine, written in well under a second.

    make_unaligned_demo(DEMO_UNALIGNED)   # trainA/ trainB/ testA/ testB/  (CycleGAN layout)
    make_aligned_demo(DEMO_ALIGNED)       # train/ test/ of A|B side-by-side images (pix2pix layout)
    make_colorization_demo()              # train/ test/ of the unaligned scenes (both domains), for colorization

Unaligned: scenes of circles, boxes and triangles in warm colours (A) and cool colours (B), a recolouring a
small CycleGAN learns in a few hundred iterations. Aligned: a label map of the shapes (A) and a shaded "photo"
of the same layout (B).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

DEMO_ROOT_DEFAULT = Path("datasets/demo")
DEMO_UNALIGNED = DEMO_ROOT_DEFAULT / "demo_unaligned"
DEMO_ALIGNED = DEMO_ROOT_DEFAULT / "demo_aligned"
DEMO_COLORIZATION = DEMO_ROOT_DEFAULT / "demo_colorization"

N_TRAIN, N_TEST, SIZE = 48, 8, 128
_VERSION = 1  # bump when the drawing changes, so old folders are redrawn
_MARKER = ".demo_complete.json"
_SHAPES = ("circle", "box", "triangle")

_WARM = {"background": (250, 238, 190), "shapes": ((232, 84, 30), (250, 150, 25), (200, 30, 35))}
_COOL = {"background": (14, 24, 62), "shapes": ((40, 110, 235), (20, 175, 170), (80, 70, 210))}
_LABEL_COLOURS = {"circle": (255, 0, 0), "box": (0, 255, 0), "triangle": (0, 0, 255)}
_PHOTO_COLOURS = {"circle": (235, 140, 40), "box": (150, 95, 55), "triangle": (70, 170, 80)}


def make_unaligned_demo(root: Path = DEMO_UNALIGNED, *, n_train: int = N_TRAIN, n_test: int = N_TEST,
                        size: int = SIZE) -> Path:
    """Write `root/{trainA,trainB,testA,testB}` of `size`x`size` PNGs (warm A, cool B); skip if already complete."""
    root = Path(root)
    counts = {"train": n_train, "test": n_test}
    files = {f"{split}{d}/{i:03d}.png": (d, split, i) for split, n in counts.items() for d in "AB" for i in range(n)}
    config = {"kind": "unaligned", "version": _VERSION, "n_train": n_train, "n_test": n_test, "size": size}
    if _complete(root, config, files):
        return root
    for name, (domain, split, i) in files.items():
        rng = _rng("unaligned", domain, split, i)
        image = _scene(rng, size, _WARM if domain == "A" else _COOL)
        _save(image, root / name)
    _mark(root, config)
    return root


def make_aligned_demo(root: Path = DEMO_ALIGNED, *, n_train: int = N_TRAIN, n_test: int = N_TEST,
                      size: int = SIZE) -> Path:
    """Write `root/{train,test}` of (2*`size`)x`size` A|B PNGs (label map | photo); skip if already complete."""
    root = Path(root)
    counts = {"train": n_train, "test": n_test}
    files = {f"{split}/{i:03d}.png": (split, i) for split, n in counts.items() for i in range(n)}
    config = {"kind": "aligned", "version": _VERSION, "n_train": n_train, "n_test": n_test, "size": size}
    if _complete(root, config, files):
        return root
    for name, (split, i) in files.items():
        rng = _rng("aligned", split, i)
        label, photo = _label_and_photo(rng, size)
        pair = Image.new("RGB", (2 * size, size))
        pair.paste(label, (0, 0))
        pair.paste(photo, (size, 0))
        _save(pair, root / name)
    _mark(root, config)
    return root


def make_colorization_demo(root: Path = DEMO_COLORIZATION, *, source: Path = DEMO_UNALIGNED) -> Path:
    """Write `root/{train,test}`: the unaligned demo's colour scenes of both domains, for `--model colorization`."""
    root, source = Path(root), make_unaligned_demo(source)
    files = {f"{split}/{domain}_{p.name}": p for split in ("train", "test") for domain in "AB"
             for p in sorted((source / f"{split}{domain}").glob("*.png"))}
    config = {"kind": "colorization", "version": _VERSION, "files": len(files)}
    if _complete(root, config, files):
        return root
    for name, path in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / name)
    _mark(root, config)
    return root


def _rng(*key: str | int) -> np.random.Generator:
    """A generator seeded by a stable key (not Python's randomised `hash`)."""
    return np.random.default_rng([ord(c) for c in "".join(map(str, key))] + [len(key)])


def _random_shapes(rng: np.random.Generator, size: int) -> list[tuple[str, list[tuple[float, float]]]]:
    """2-5 shapes as (kind, points): circle/box by bounding box corners, triangle by three vertices."""
    shapes = []
    for _ in range(int(rng.integers(2, 6))):
        kind = _SHAPES[int(rng.integers(len(_SHAPES)))]
        r = rng.uniform(0.1, 0.22) * size
        cx, cy = rng.uniform(r, size - r, 2)
        if kind == "triangle":
            angle = rng.uniform(0, 2 * np.pi)
            points = [(cx + r * np.cos(angle + k * 2 * np.pi / 3), cy + r * np.sin(angle + k * 2 * np.pi / 3))
                      for k in range(3)]
        else:
            aspect = rng.uniform(0.7, 1.3)
            points = [(cx - r * aspect, cy - r / aspect), (cx + r * aspect, cy + r / aspect)]
        shapes.append((kind, points))
    return shapes


def _draw(draw: ImageDraw.ImageDraw, kind: str, points: list[tuple[float, float]], fill: int | tuple) -> None:
    if kind == "circle":
        draw.ellipse(points, fill=fill)
    elif kind == "box":
        draw.rectangle(points, fill=fill)
    else:
        draw.polygon(points, fill=fill)


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int], amount: int) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def _scene(rng: np.random.Generator, size: int, palette: dict) -> Image.Image:
    """Flat shapes in the palette's colours on its background colour."""
    image = Image.new("RGB", (size, size), _jitter(rng, palette["background"], 6))
    draw = ImageDraw.Draw(image)
    for kind, points in _random_shapes(rng, size):
        colour = palette["shapes"][int(rng.integers(len(palette["shapes"])))]
        _draw(draw, kind, points, _jitter(rng, colour, 15))
    return image


def _label_and_photo(rng: np.random.Generator, size: int) -> tuple[Image.Image, Image.Image]:
    """One layout drawn twice: flat class colours on black, and shaded shapes on a textured background."""
    label = Image.new("RGB", (size, size))
    label_draw = ImageDraw.Draw(label)
    photo = _textured_background(rng, size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for kind, points in _random_shapes(rng, size):
        _draw(label_draw, kind, points, _LABEL_COLOURS[kind])
        mask_image = Image.new("L", (size, size))
        _draw(ImageDraw.Draw(mask_image), kind, points, 255)
        mask = np.asarray(mask_image) > 0
        photo[mask] = _shaded(kind, points, xx, yy, size)[mask]
    return label, Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))


def _textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A grey-blue wall: a vertical light gradient, blotches (upsampled noise) and fine grain; float (h, w, 3)."""
    gradient = np.linspace(1.1, 0.8, size, dtype=np.float32)[:, None, None]
    blotches = rng.uniform(-1, 1, (8, 8)).astype(np.float32)
    blotches = np.asarray(Image.fromarray(blotches).resize((size, size), Image.Resampling.BICUBIC))
    grain = rng.normal(0, 6, (size, size, 1)).astype(np.float32)
    base = np.array([120, 130, 140], dtype=np.float32)
    return base * gradient + 18 * blotches[..., None] + grain


def _shaded(kind: str, points: list, xx: np.ndarray, yy: np.ndarray, size: int) -> np.ndarray:
    """The shape's colour lit from the top left: radial for circles, linear for boxes and triangles."""
    xs, ys = [p[0] / size for p in points], [p[1] / size for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if kind == "circle":
        hx, hy = x0 + 0.35 * (x1 - x0), y0 + 0.35 * (y1 - y0)
        distance = np.hypot(xx - hx, yy - hy) / max(x1 - x0, y1 - y0, 1e-6)
        light = 1.25 - 0.9 * distance
    else:
        t = ((xx - x0) + (yy - y0)) / max((x1 - x0) + (y1 - y0), 1e-6)
        light = 1.15 - 0.5 * t
    return np.array(_PHOTO_COLOURS[kind], dtype=np.float32) * light[..., None]


def _complete(root: Path, config: dict, files: dict) -> bool:
    marker = root / _MARKER
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return recorded == config and all((root / name).is_file() for name in files)


def _mark(root: Path, config: dict) -> None:
    (root / _MARKER).write_text(json.dumps(config, sort_keys=True))


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")


def foreground(image: np.ndarray, domain: str, threshold: float = 60.0) -> np.ndarray:
    """The shapes of an unaligned-demo image (H x W x 3 uint8) of `domain` "A" or "B": the pixels further than
    `threshold` (RGB distance) from the domain's background colour."""
    background = np.array((_WARM if domain == "A" else _COOL)["background"], dtype=np.float32)
    return np.linalg.norm(image[..., :3].astype(np.float32) - background, axis=-1) > threshold


def shape_iou(source: np.ndarray, source_domain: str, translated: np.ndarray, translated_domain: str) -> float:
    """How well a translation keeps the shapes: the IoU of the foreground masks of the input and the output."""
    a, b = foreground(source, source_domain), foreground(translated, translated_domain)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


class ShapeKeeping:
    """The mean shape IoU of a demo run's translations, both ways: `add` each batch of visuals (name -> list of
    H x W x 3 uint8 images), then `summary()`. `a_domain` is the domain of real_A ("B" with --direction BtoA)."""

    PAIRS = (("real_A", "fake_B"), ("real_B", "fake_A"))

    def __init__(self, a_domain: str = "A") -> None:
        self.domains = {"real_A": a_domain, "fake_B": "B" if a_domain == "A" else "A"}
        self.domains |= {"real_B": self.domains["fake_B"], "fake_A": a_domain}
        self.ious: dict[tuple[str, str], list[float]] = {}

    def add(self, visuals: dict[str, list[np.ndarray]]) -> None:
        for source, translated in self.PAIRS:
            if source in visuals and translated in visuals:
                self.ious.setdefault((source, translated), []).extend(
                    shape_iou(a, self.domains[source], b, self.domains[translated])
                    for a, b in zip(visuals[source], visuals[translated]))

    def add_results(self, images: Path) -> None:
        """`add` the PNGs of a results folder (`results/NAME/test_latest/images`: one subfolder per visual)."""
        self.add({visual.name: [np.asarray(Image.open(p).convert("RGB")) for p in sorted(visual.glob("*.png"))]
                  for visual in Path(images).iterdir() if visual.is_dir()})

    def means(self) -> dict[str, float]:
        """{"real_A->fake_B": mean IoU, ...} for the pairs seen."""
        return {f"{s}->{t}": float(np.mean(v)) for (s, t), v in self.ious.items()}

    def summary(self) -> str | None:
        if not self.ious:
            return None
        parts = [f"{s} -> {t} {np.mean(v):.2f}" for (s, t), v in self.ious.items()]
        return "shapes kept (IoU of the foreground masks of input and translation, 1 = every shape kept): " + \
            ", ".join(parts)


def make_demo_data(dataset_mode: str) -> Path:
    """Draw (once) the demo dataset that `--dataset_mode` reads; returns its root."""
    makers = {"unaligned": make_unaligned_demo, "single": make_unaligned_demo, "aligned": make_aligned_demo,
              "colorization": make_colorization_demo}
    return makers[dataset_mode]()
