"""engine/plot_losses.py: loss_log.jsonl to a PNG of one panel per loss (matplotlib, Agg)."""

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from engine.plot_losses import PANEL_H, LossHistory, plot_run, render_losses  # noqa: E402
from util.errors import I2IError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _write_log(path: Path, epochs: int = 3, per_epoch: int = 4, with_size: bool = True) -> None:
    with open(path, "w") as f:
        for e in range(1, epochs + 1):
            for k in range(1, per_epoch + 1):
                record = {"epoch": e, "iters": 10 * k, "total_iters": (e - 1) * 40 + 10 * k, "time": 0.1, "data": 0.0,
                          "losses": {"G": 2.0 / (e + k), "D": 0.25}}
                if with_size:
                    record["dataset_size"] = 40
                f.write(json.dumps(record) + "\n")
        f.write('{"epoch": 9, "iters"')  # a run killed mid-write


def _palette(k: int) -> tuple[int, int, int]:
    from matplotlib.colors import to_rgb

    return tuple(round(255 * c) for c in to_rgb(f"C{k}"))


def _colour_pixels(image: Image.Image, colour, panel: int, columns: int = 2, header: int = 0) -> int:
    """Pixels within a few levels of `colour` (the bold curve's interior) inside panel `panel`'s area."""
    width = image.width // columns
    left, top = (panel % columns) * width, header + (panel // columns) * PANEL_H
    box = np.asarray(image.convert("RGB")).astype(int)[top + 25 : top + PANEL_H, left : left + width]
    return int((np.abs(box - np.array(colour)).max(axis=2) <= 8).sum())


def test_history_reads_epoch_fractions_and_skips_a_torn_line(tmp_path):
    _write_log(tmp_path / "loss_log.jsonl")
    history = LossHistory.from_jsonl(tmp_path / "loss_log.jsonl")
    assert len(history) == 12 and history.x_label == "epoch"
    assert history.x[:2] == [1.25, 1.5] and history.values["G"][0] == pytest.approx(1.0)


def test_history_falls_back_to_samples_without_dataset_size(tmp_path):
    _write_log(tmp_path / "loss_log.jsonl", with_size=False)
    history = LossHistory.from_jsonl(tmp_path / "loss_log.jsonl")
    assert history.x_label == "samples seen" and history.x[-1] == 120.0


def test_render_draws_one_coloured_panel_per_loss():
    history = LossHistory()
    for i in range(500):
        history.add(1 + i / 100, {"G": 1 + np.sin(i / 20), "D": 0.25})
    history.add(6.0, {"G": 1.0, "idt": 0.5})  # a loss that appears late
    image = render_losses(history, width=600)
    assert image.size == (600, 2 * 170)  # 3 panels in 2 columns
    for k in range(3):
        assert _colour_pixels(image, _palette(k), k) > 20, f"panel {k} drew no curve"
    assert np.asarray(image).std() > 10


def test_cli_writes_png_next_to_the_log(tmp_path):
    _write_log(tmp_path / "loss_log.jsonl")
    result = subprocess.run([sys.executable, "-m", "engine.plot_losses", str(tmp_path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "loss_curves.png"
    assert result.stdout.strip() == str(out)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width == 900
        assert image.height == 26 + 170  # the title, then G and D side by side
        assert _colour_pixels(image, _palette(0), 0, header=26) > 20
        assert _colour_pixels(image, _palette(1), 1, header=26) > 20


def test_missing_or_empty_log_is_a_user_error(tmp_path):
    with pytest.raises(I2IError, match="no loss log"):
        plot_run(tmp_path)
    (tmp_path / "loss_log.jsonl").write_text("")
    with pytest.raises(I2IError, match="--print_freq"):
        plot_run(tmp_path)
    result = subprocess.run([sys.executable, "-m", "engine.plot_losses", str(tmp_path / "nope")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
