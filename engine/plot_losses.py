"""Loss curves from `loss_log.jsonl`, drawn to a PNG with Pillow.

    python -m engine.plot_losses checkpoints/NAME            # -> checkpoints/NAME/loss_curves.png
    python -m engine.plot_losses checkpoints/NAME -o out.png --width 1200

One small panel per loss, each with its own y-scale (a cycle loss near 3 and a discriminator loss near
0.25 would flatten each other on one axis): the logged values faint, a moving average bold, so the
trend stays readable at thousands of points. The x-axis is the epoch (epoch + fraction, as Visdom
shows it) when the log records the dataset size, otherwise the samples seen.

Pillow rather than matplotlib: Pillow is already required for images, the drawing needed here is
lines, boxes and labels, and the training page redraws this image at every save, where a fixed-size
raster drawn from binned data costs the same at 100 or 100,000 points.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from util.errors import I2IError
from util.option_types import number

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
PANEL_H = 170
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 52, 12, 22, 28


class LossHistory:
    """The logged steps as columns: x positions and one list of values per loss name (NaN where absent)."""

    def __init__(self) -> None:
        self.x: list[float] = []
        self.values: dict[str, list[float]] = {}
        self.x_label = "epoch"

    def add(self, x: float, losses: Mapping[str, float]) -> None:
        """Append one step; a loss first seen now gets NaN for the earlier steps."""
        for name in losses:
            if name not in self.values:
                self.values[name] = [math.nan] * len(self.x)
        self.x.append(float(x))
        for name, column in self.values.items():
            column.append(float(losses.get(name, math.nan)))

    def __len__(self) -> int:
        return len(self.x)

    @classmethod
    def from_jsonl(cls, path: str | os.PathLike) -> LossHistory:
        """Read loss_log.jsonl; a truncated last line (a run killed mid-write) is skipped."""
        history = cls()
        records = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        if records and not all("dataset_size" in r for r in records):
            history.x_label = "samples seen" if all("total_iters" in r for r in records) else "logged step"
        for i, record in enumerate(records):
            history.add(record_x(record, history.x_label, i), record.get("losses", {}))
        return history


def record_x(record: Mapping[str, Any], x_label: str = "epoch", index: int = 0) -> float:
    """Where a logged step goes on the x-axis: epoch + iters / dataset_size (Visdom's x), or samples seen."""
    if x_label == "epoch" and record.get("dataset_size"):
        return record["epoch"] + record["iters"] / record["dataset_size"]
    if x_label == "samples seen" and "total_iters" in record:
        return float(record["total_iters"])
    return float(index)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round-numbered ticks covering [lo, hi]."""
    if not hi > lo:
        return [lo]
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= step * m)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:.4g}"


def _segments(x: np.ndarray) -> list[slice]:
    """Runs where x keeps growing; a new run starts where x goes back (a rerun under the same name)."""
    cuts = [0, *(np.nonzero(np.diff(x) < 0)[0] + 1).tolist(), len(x)]
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _binned(x: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `bins` points: the mean of x and y within consecutive groups (NaNs ignored)."""
    keep = np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) <= bins:
        return x, y
    edges = np.linspace(0, len(x), bins + 1).astype(int)
    sums_x, sums_y = np.add.reduceat(x, edges[:-1]), np.add.reduceat(y, edges[:-1])
    counts = np.diff(edges)
    return sums_x / counts, sums_y / counts


def _smoothed(y: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over `window` points (shorter at the ends), ignoring NaNs."""
    if window <= 1:
        return y
    finite = np.isfinite(y)
    values = np.where(finite, y, 0.0)
    kernel = np.ones(window)
    total = np.convolve(values, kernel, mode="same")
    count = np.convolve(finite.astype(float), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def render_losses(history: LossHistory, path: str | os.PathLike | None = None, width: int = 900,
                  title: str = "", columns: int = 2) -> Image.Image:
    """Draw one panel per loss (a grid of `columns`); write a PNG to `path` when given. Cost is bounded
    by the image size: each panel draws at most one point per pixel column."""
    names = list(history.values) or ["(no losses logged yet)"]
    columns = max(1, min(columns, len(names)))
    rows = math.ceil(len(names) / columns)
    header = 26 if title else 0
    image = Image.new("RGB", (width, header + rows * PANEL_H), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((8, 5), title, fill="black", font=_font(15))
    panel_w = width // columns
    x = np.asarray(history.x, dtype=float)
    for k, name in enumerate(names):
        left, top = (k % columns) * panel_w, header + (k // columns) * PANEL_H
        values = np.asarray(history.values.get(name, []), dtype=float)
        _panel(draw, (left, top, left + panel_w, top + PANEL_H), name, x, values, PALETTE[k % len(PALETTE)],
               history.x_label)
    if path is not None:
        from util.images import save_image  # atomic write: a browser reloading the page never sees half a PNG

        save_image(np.asarray(image), path)
    return image


def _panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], name: str, x: np.ndarray,
           y: np.ndarray, color: tuple[int, int, int], x_label: str) -> None:
    left, top, right, bottom = box
    plot = (left + MARGIN_L, top + MARGIN_T, right - MARGIN_R, bottom - MARGIN_B)
    small = _font(11)
    draw.text((plot[0], top + 4), name, fill=color, font=_font(13))
    draw.rectangle(plot, outline=(160, 160, 160))
    finite = np.isfinite(y) if len(y) else np.zeros(0, bool)
    if not finite.any():
        draw.text((plot[0] + 8, plot[1] + 8), "no values yet", fill=(120, 120, 120), font=small)
        return
    xs, ys = x[finite], y[finite]
    # A single spike should not flatten the rest: the y range covers the 0.5..99.5 percentiles.
    y_lo, y_hi = (np.percentile(ys, [0.5, 99.5]) if len(ys) > 200 else (ys.min(), ys.max()))
    x_lo, x_hi = float(xs.min()), float(xs.max())
    if y_hi - y_lo < 1e-12:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    pad = (y_hi - y_lo) * 0.05
    y_lo, y_hi = float(y_lo - pad), float(y_hi + pad)
    if x_hi - x_lo < 1e-12:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    w, h = plot[2] - plot[0], plot[3] - plot[1]

    def to_px(px: np.ndarray, py: np.ndarray) -> list[tuple[float, float]]:
        u = plot[0] + (px - x_lo) / (x_hi - x_lo) * w
        v = plot[3] - (np.clip(py, y_lo, y_hi) - y_lo) / (y_hi - y_lo) * h
        return list(zip(u.tolist(), v.tolist()))

    for tick in _ticks(y_lo, y_hi, 4):
        (_, v), = to_px(np.array([x_lo]), np.array([tick]))
        draw.line((plot[0], v, plot[2], v), fill=(235, 235, 235))
        draw.text((left + 4, v - 6), _label(tick), fill=(90, 90, 90), font=small)
    for tick in _ticks(x_lo, x_hi, 5):
        (u, _), = to_px(np.array([tick]), np.array([y_lo]))
        draw.line((u, plot[3], u, plot[3] + 3), fill=(120, 120, 120))
        draw.text((u - 10, plot[3] + 4), _label(tick), fill=(90, 90, 90), font=small)
    draw.text((plot[2] - 70, bottom - 13), x_label, fill=(90, 90, 90), font=small)
    faint = tuple(int(c + (255 - c) * 0.65) for c in color)
    for part in _segments(x):
        bx, by = _binned(x[part], y[part], max(2, w))
        if len(bx) == 0:
            continue
        if len(bx) == 1:
            (u, v), = to_px(bx, by)
            draw.ellipse((u - 2, v - 2, u + 2, v + 2), fill=color)
            continue
        draw.line(to_px(bx, by), fill=faint, width=1)
        window = max(1, len(by) // 25)
        draw.line(to_px(bx, _smoothed(by, window)), fill=color, width=2)


def plot_run(run_dir: str | os.PathLike, output: str | os.PathLike | None = None, width: int = 900) -> Path:
    """Draw `run_dir/loss_log.jsonl` to `output` (default `run_dir/loss_curves.png`); returns the PNG's path."""
    run_dir = Path(run_dir)
    log = run_dir / "loss_log.jsonl" if run_dir.is_dir() else run_dir
    if not log.is_file():
        raise I2IError(f"{log}: no loss log there; give the checkpoint folder of a run "
                       "(checkpoints/NAME, where train.py writes loss_log.jsonl)")
    history = LossHistory.from_jsonl(log)
    if not len(history):
        raise I2IError(f"{log} holds no logged steps yet; losses are logged every --print_freq samples")
    out = Path(output) if output is not None else log.parent / "loss_curves.png"
    render_losses(history, out, width=width, title=f"{log.parent.name}: {len(history)} logged steps")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.plot_losses", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="checkpoints/NAME (or a loss_log.jsonl file)")
    parser.add_argument("-o", "--output", help="PNG to write (default: RUN_DIR/loss_curves.png)")
    parser.add_argument("--width", type=number(int, at_least=200), default=900, help="image width in pixels")
    args = parser.parse_args(argv)
    print(plot_run(args.run_dir, args.output, width=args.width))


if __name__ == "__main__":
    from util.cli import run_main

    run_main(lambda argv: main(argv if argv is not None else sys.argv[1:]))
