"""benchmarks/quality.py and its tasks: unpaired training sets, paired test truth, and the table it prints."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from importlib.metadata import version

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT

pytest.importorskip("skimage")


def benchmark_module(name: str):
    """benchmarks/NAME.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"i2i_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _images(folder):
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]


@pytest.mark.parametrize("transform", ["tone", "cartoon", "recolour", "cartoon_raw"])
def test_a_task_pairs_its_test_crops_and_not_its_training_crops(tmp_path, transform):
    tasks = benchmark_module("quality_tasks")
    root = tasks.make_task(tmp_path / transform, transform, size=32, n_train=6)
    train_a, train_b = _images(root / "trainA"), _images(root / "trainB")
    test_a, test_b = _images(root / "testA"), _images(root / "testB")
    apply = tasks.TRANSFORMS[transform]
    assert len(test_a) == len(test_b) > 0 and len(train_a) == len(train_b) == 6
    for a, b in zip(test_a, test_b):  # the truth of every test crop is its transform
        assert np.array_equal(np.asarray(apply(Image.fromarray(a))), b)
    transformed = [np.asarray(apply(Image.fromarray(a))) for a in train_a]
    assert not any(np.array_equal(t, b) for t in transformed for b in train_b)  # unpaired
    assert not any(np.array_equal(a, t) for a in train_a for t in test_a)  # train and test photographs apart
    assert any(not np.array_equal(a, b) for a, b in zip(test_a, test_b))  # the transform changes something


def test_cartoon_outlines_the_smoothed_image_not_its_noise():
    tasks = benchmark_module("quality_tasks")
    rng = np.random.default_rng(0)
    sky = np.full((32, 32, 3), (70, 120, 170), dtype=np.int16)  # a flat sky with noise, each channel mid-level
    noisy = Image.fromarray(np.clip(sky + rng.integers(-12, 13, sky.shape), 0, 255).astype(np.uint8))
    inner = (slice(2, -2), slice(2, -2))  # the filters' own borders aside
    flat = np.asarray(tasks.cartoon(noisy), dtype=np.float32)[inner].sum(-1)
    assert flat.min() > 0.7 * flat.max()  # no outline inside a flat region
    speckled = np.asarray(tasks.cartoon_raw(noisy), dtype=np.float32)[inner].sum(-1)
    assert speckled.min() < 0.5 * speckled.max()  # the raw photo's edges trace the noise
    photo = np.full((32, 32, 3), 100, dtype=np.uint8)
    photo[:, 16:] = 220  # one real edge, between two flat regions
    outlined = np.asarray(tasks.cartoon(Image.fromarray(photo)), dtype=np.float32).sum(-1)
    darkest_flat = outlined[8:24, 4:12].min()
    assert outlined[8:24, 16].max() < 0.5 * darkest_flat  # FIND_EDGES outlines the edge's bright side


@pytest.mark.parametrize(("option", "a_choice"), [("--tasks", "cartoon_raw"), ("--configs", "fastcut")])
def test_quality_py_names_an_unknown_task_or_method_and_the_choices(option, a_choice):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), option, "bogus"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{option}: unknown bogus; choose from " in result.stderr and a_choice in result.stderr


@pytest.mark.slow
def test_quality_py_prints_the_table_with_the_identity_and_each_method(tmp_path):
    out = tmp_path / "quality.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--quick", "--jobs", "2",
                             "--json", str(out), "--out", str(tmp_path / "samples"), "--picture",
                             str(tmp_path / "picture.png"), "--seen"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| tone | identity | 24.78 | +0.00 |" in result.stdout and "PSNR on training crops |" in result.stdout
    saved = json.loads(out.read_text())
    assert saved["settings"]["torch"] == version("torch")  # the figures depend on the build
    data = saved["results"]["tone"]
    assert set(data) == {"identity", "cyclegan", "recipe"}
    for config in ("cyclegan", "recipe"):
        assert len(data[config]["psnr"]) == 1 and 5 < data[config]["psnr"][0] < 60
        assert len(data[config]["seen_psnr"]) == 1 and 5 < data[config]["seen_psnr"][0] < 60  # --seen: trainA too
        assert data[config]["train_seconds"][0] > 0
        assert f"| tone | {config} |" in result.stdout
    assert (tmp_path / "samples" / "samples" / "tone" / "recipe" / "00.png").is_file()
    with Image.open(tmp_path / "picture.png") as grid:  # input, truth, cyclegan, recipe; 2 crops; drawn at 2x
        assert grid.size == (4 * 64 * 2, 2 * 64 * 2)


def test_the_fitted_global_map_recovers_an_affine_colour_map_and_psnr_is_per_crop():
    bounds = benchmark_module("quality_bounds")
    x = np.random.default_rng(0).random((3, 8, 8, 3))
    matrix, offset = np.array([[0.5, 0.2, 0.0], [0.1, 0.7, 0.1], [0.0, 0.3, 0.5]]), np.array([0.1, 0.1, 0.2])
    truth = x @ matrix.T + offset
    np.testing.assert_allclose(bounds.fitted_global_map(x, truth), truth, atol=1e-9)
    off = truth.copy()
    off[0] -= 0.1  # one crop off by 0.1 everywhere (all within [0, 1]): 20 dB; the other two exact: 120 (the cap)
    assert bounds.psnr(off, truth) == pytest.approx((20 + 120 + 120) / 3)


def test_colour_transfer_matches_the_target_statistics_and_cannot_see_a_turn_of_the_colours():
    bounds = benchmark_module("quality_bounds")
    source = np.random.default_rng(0).normal(size=(20000, 3)) * [0.1, 0.2, 0.3] + 0.5
    stretch = np.array([[1.2, 0.1, 0.0], [0.1, 0.8, 0.0], [0.0, 0.0, 1.0]])  # symmetric, positive: a Monge map itself
    matrix, offset = bounds.colour_transfer(source, source @ stretch.T + 0.1)
    np.testing.assert_allclose(matrix, stretch, atol=1e-6)
    np.testing.assert_allclose(offset, 0.1, atol=1e-6)
    grey_axis = np.ones(3) / np.sqrt(3)  # a half-turn about the grey axis, as recolour's complement nearly is
    half_turn = 2 * np.outer(grey_axis, grey_axis) - np.eye(3)
    round_source = np.random.default_rng(1).normal(size=(200000, 3)) * 0.2 + 0.5  # equal spreads: a turn hides
    matrix, _ = bounds.colour_transfer(round_source, (round_source - 0.5) @ half_turn.T + 0.5)
    np.testing.assert_allclose(matrix, np.eye(3), atol=0.02)  # the identity, not the turn


def test_quality_bounds_scores_the_crops_of_quality_py():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "quality_bounds.py"), "--tasks",
                             "tone,recolour"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {tuple(cell.strip() for cell in line.strip("|").split("|")[:2]): float(line.split("|")[3])
            for line in result.stdout.splitlines()[2:]}
    assert rows["tone", "identity"] == 24.78 and rows["recolour", "identity"] == 13.48  # quality.py's identity rows
    assert rows["tone", "one global affine map, fitted to the truth"] > 35  # tone is nearly one global colour map
    assert (rows["recolour", "the complement, every pixel"] > 30 > rows["recolour", "grey"]
            > rows["recolour", "identity"])
    transfer = "colour transfer, trainA to trainB (unpaired, no training)"
    assert rows["tone", transfer] > rows["tone", "identity"] + 5  # the training sets' statistics show tone's grade
    assert rows["recolour", transfer] < rows["recolour", "identity"] + 2.5  # ...and hardly show recolour's swap
