"""Loss curves from `loss_log.jsonl`, drawn to a PNG with matplotlib (headless: the Agg canvas, no pyplot).

    python -m engine.plot_losses checkpoints/NAME            # -> checkpoints/NAME/loss_curves.png
    python -m engine.plot_losses checkpoints/NAME -o out.png --width 1200

One panel per loss with its own y-scale (a cycle loss near 3 would flatten a discriminator loss near 0.25),
the logged values faint and a moving average bold; x is the epoch (with fractions) when the log records the
dataset size, else the samples seen. Each curve is first reduced to at most one point per pixel column, so the
training page's redraw at every save costs the same at 100 or 100,000 steps.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from util.errors import I2IError
from util.option_types import number

PANEL_H = 170  # pixels per row of panels
DPI = 100


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
        for i, record in enumerate(records):  # x: epoch + iters / dataset_size (Visdom's x), or samples seen
            if history.x_label == "epoch" and record.get("dataset_size"):
                x = record["epoch"] + record["iters"] / record["dataset_size"]
            elif history.x_label == "samples seen" and "total_iters" in record:
                x = float(record["total_iters"])
            else:
                x = float(i)
            history.add(x, record.get("losses", {}))
        return history


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


def loss_figure(history: LossHistory, width: int = 900, title: str = "", columns: int = 2):
    """A matplotlib Figure of one panel per loss (a grid of `columns`), `width` pixels wide, PANEL_H per row."""
    from matplotlib.figure import Figure

    names = list(history.values) or ["(no losses logged yet)"]
    columns = max(1, min(columns, len(names)))
    rows = math.ceil(len(names) / columns)
    header = 26 if title else 0
    figure = Figure(figsize=(width / DPI, (header + rows * PANEL_H) / DPI), dpi=DPI, layout="constrained")
    if title:
        figure.suptitle(title, fontsize=11, x=0.01, ha="left")
    axes = figure.subplots(rows, columns, squeeze=False)
    x = np.asarray(history.x, dtype=float)
    colours = [f"C{k % 10}" for k in range(len(names))]  # matplotlib's default cycle (tab10)
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.set_axis_off()
            continue
        values = np.asarray(history.values.get(names[k], []), dtype=float)
        _panel(ax, names[k], x, values, colours[k], history.x_label, max(2, width // columns))
    return figure


def render_losses(history: LossHistory, path: str | os.PathLike | None = None, width: int = 900,
                  title: str = "", columns: int = 2) -> Image.Image:
    """Draw `loss_figure` to an image; write it as a PNG to `path` (atomically) when given."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(loss_figure(history, width, title, columns))
    canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())
    if path is not None:
        from util.images import save_image  # atomic write: a browser reloading the page never sees half a PNG

        save_image(np.asarray(image), path)
    return image


def _panel(ax, name: str, x: np.ndarray, y: np.ndarray, colour: str, x_label: str, bins: int) -> None:
    ax.set_title(name, color=colour, fontsize=10, loc="left")
    ax.tick_params(labelsize=8)
    ax.set_xlabel(x_label, fontsize=8)
    ax.grid(True, color="0.92")
    finite = np.isfinite(y) if len(y) else np.zeros(0, bool)
    if not finite.any():
        ax.text(0.03, 0.85, "no values yet", transform=ax.transAxes, color="0.5", fontsize=8)
        return
    ys = y[finite]
    # A single spike should not flatten the rest: the y range covers the 0.5..99.5 percentiles.
    lo, hi = np.percentile(ys, [0.5, 99.5]) if len(ys) > 200 else (ys.min(), ys.max())
    pad = (hi - lo) * 0.05 if hi - lo > 1e-9 * max(1.0, abs(hi)) else 0.5  # a constant loss: +-0.5 around it
    ax.set_ylim(lo - pad, hi + pad)
    ax.ticklabel_format(axis="y", useOffset=False)
    cuts = [0, *(np.nonzero(np.diff(x) < 0)[0] + 1).tolist(), len(x)]  # x goes back where a rerun starts
    for start, stop in zip(cuts[:-1], cuts[1:]):  # one curve per run
        bx, by = _binned(x[start:stop], y[start:stop], bins)
        if len(bx) == 1:
            ax.plot(bx, by, "o", color=colour, markersize=3)
        elif len(bx) > 1:
            ax.plot(bx, by, color=colour, alpha=0.35, linewidth=1)
            ax.plot(bx, _smoothed(by, max(1, len(by) // 25)), color=colour, linewidth=2)


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
