"""What each quality task rewards, without training: PSNR of fixed or fitted outputs against the test truth.

    python benchmarks/quality_bounds.py                    # every task of benchmarks/quality.py
    python benchmarks/quality_bounds.py --tasks recolour

The rows put `benchmarks/quality.py`'s figures in scale: doing nothing (identity), the input in grey (every
pixel at its channels' mean: what a translation that only desaturates tends to), the input taken part of the way
to grey, and one affine colour map for all test crops fitted to their truth by least squares (in [0, 1] RGB; the
best that any single global colour map reaches, an upper bound no unpaired method is given). One row uses what an
unpaired method is given, the training crops: the colour transfer from trainA to trainB (the affine map that
matches the mean and covariance of trainB's colours while moving trainA's least, Monge's map between Gaussians),
applied to the test crops; it says where the training sets' colour statistics point. For `recolour` it adds
the colour complement (max + min - c per pixel, the hue turned half a circle at every saturation) and the straight
path from the input to it: its middle is grey, the singular map that an interpolation between the input's colours
and their complement passes through. The crops are those of quality.py (same photographs, size, grid and
training crops).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.linalg import sqrtm

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_tasks  # noqa: E402


def psnr(outputs: np.ndarray, truth: np.ndarray) -> float:
    """Mean over crops of the PSNR (range 1) of `outputs` against `truth`, N x H x W x 3 arrays in [0, 1]."""
    errors = np.clip(outputs, 0, 1) - truth
    return float(np.mean([10 * np.log10(1 / max(np.mean(e**2), 1e-12)) for e in errors]))


def fitted_global_map(inputs: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The one affine colour map (3 x 3 matrix and offset) that fits truth from inputs best, applied to inputs."""
    design = np.c_[inputs.reshape(-1, 3), np.ones(inputs.size // 3)]
    coefficients = np.linalg.lstsq(design, truth.reshape(-1, 3), rcond=None)[0]
    return (design @ coefficients).reshape(inputs.shape)


def colour_transfer(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, b): the affine map x -> M x + b that takes the mean and covariance of `source`'s colours to `target`'s
    and, of all such maps, moves the colours least (the optimal transport map between the two Gaussians)."""
    source, target = source.reshape(-1, 3), target.reshape(-1, 3)
    root = np.real(sqrtm(np.cov(source.T)))
    inverse_root = np.linalg.inv(root)
    matrix = inverse_root @ np.real(sqrtm(root @ np.cov(target.T) @ root)) @ inverse_root
    return matrix, target.mean(0) - matrix @ source.mean(0)


def as_array(images: list[Image.Image]) -> np.ndarray:
    return np.stack([np.asarray(image, dtype=np.float64) / 255 for image in images])


def bounds(task: str, crops: dict[str, list[Image.Image]]) -> dict[str, float]:
    """{row name: PSNR in dB} on one task's test crops; `crops` is quality_tasks.task_crops(task, ...)."""
    x, y = as_array(crops["testA"]), as_array(crops["testB"])
    grey = np.broadcast_to(x.mean(-1, keepdims=True), x.shape)
    rows = {"identity": psnr(x, y)}
    rows |= {f"{share:.0%} of the way to grey": psnr(x + share * (grey - x), y) for share in (0.25, 0.5)}
    rows |= {"grey": psnr(grey, y), "one global affine map, fitted to the truth": psnr(fitted_global_map(x, y), y)}
    matrix, offset = colour_transfer(as_array(crops["trainA"]), as_array(crops["trainB"]))
    rows["colour transfer, trainA to trainB (unpaired, no training)"] = psnr(x @ matrix.T + offset, y)
    if task == "recolour":
        complement = x.max(-1, keepdims=True) + x.min(-1, keepdims=True) - x
        rows |= {f"{share:.0%} of the way to the complement": psnr(x + share * (complement - x), y)
                 for share in (0.25, 0.5, 0.75)}
        rows["the complement, every pixel"] = psnr(complement, y)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(quality_tasks.DEFAULT_TASKS),
                        help=f"of {','.join(quality_tasks.TRANSFORMS)}")
    parser.add_argument("--size", type=int, default=64, help="crop size (quality.py's)")
    parser.add_argument("--n_train", type=int, default=100, help="training crops per domain (quality.py's)")
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",")
    quality_tasks.reject_unknown(parser, "--tasks", tasks, quality_tasks.TRANSFORMS)
    photos = quality_tasks.photographs()
    print("| task | output | PSNR (dB) |\n|---|---|---|")
    for task in tasks:
        crops = quality_tasks.task_crops(task, args.size, args.n_train, photos=photos)
        for name, value in bounds(task, crops).items():
            print(f"| {task} | {name} | {value:.2f} |")


if __name__ == "__main__":
    main()
