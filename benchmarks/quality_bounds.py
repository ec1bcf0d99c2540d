"""What each quality task rewards, without training: PSNR of fixed or fitted outputs against the test truth.

    python benchmarks/quality_bounds.py                    # every task of benchmarks/quality.py
    python benchmarks/quality_bounds.py --tasks recolour

The rows put `benchmarks/quality.py`'s figures in scale: doing nothing (identity), the input in grey (every
pixel at its channels' mean: what a translation that only desaturates tends to), the input taken part of the way
to grey, and one affine colour map for all test crops fitted to their truth by least squares (in [0, 1] RGB; the
best that any single global colour map reaches, an upper bound no unpaired method is given). For `recolour` it adds
the colour complement (max + min - c per pixel, the hue turned half a circle at every saturation) and the straight
path from the input to it: its middle is grey, the singular map that an interpolation between the input's colours
and their complement passes through. The crops are those of quality.py (same photographs, size and grid).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

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


def bounds(task: str, crops: list[Image.Image]) -> dict[str, float]:
    """{row name: PSNR in dB} for one task's test crops (quality_tasks.grid_crops of the test photographs)."""
    apply = quality_tasks.TRANSFORMS[task]
    x = np.stack([np.asarray(c, dtype=np.float64) / 255 for c in crops])
    y = np.stack([np.asarray(apply(c), dtype=np.float64) / 255 for c in crops])
    grey = np.broadcast_to(x.mean(-1, keepdims=True), x.shape)
    rows = {"identity": psnr(x, y)}
    rows |= {f"{share:.0%} of the way to grey": psnr(x + share * (grey - x), y) for share in (0.25, 0.5)}
    rows |= {"grey": psnr(grey, y), "one global affine map, fitted to the truth": psnr(fitted_global_map(x, y), y)}
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
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",")
    quality_tasks.reject_unknown(parser, "--tasks", tasks, quality_tasks.TRANSFORMS)
    crops = quality_tasks.grid_crops(quality_tasks.photographs()[1], args.size)
    print("| task | output | PSNR (dB) |\n|---|---|---|")
    for task in tasks:
        for name, value in bounds(task, crops).items():
            print(f"| {task} | {name} | {value:.2f} |")


if __name__ == "__main__":
    main()
