"""evaluate.py: results folders in both layouts, two folders, JSON output, messages for missing weights."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT, load_script, write_images


def _flat_results(root, count=3, size=(24, 20)):
    images = root / "images"
    rng = np.random.default_rng(0)
    for i in range(count):
        real = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        for visual, pixels in (("real_A", real), ("rec_A", 255 - real), ("fake_B", real), ("real_B", real)):
            images.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(images / f"img_{i}_{visual}.png")
    return root


def test_flat_and_per_visual_results_give_the_same_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "empty_cache"))
    evaluate = load_script("evaluate")
    flat = _flat_results(tmp_path / "flat")
    nested = tmp_path / "nested"
    for path in (flat / "images").iterdir():
        stem, visual = path.stem.rsplit("_", 2)[0], "_".join(path.stem.rsplit("_", 2)[1:])
        (nested / "images" / visual).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, nested / "images" / visual / f"{stem}.png")
    reports = [evaluate.main([str(root), "--paired", "--metrics", "psnr,ssim"]) for root in (flat, nested)]
    assert reports[0]["rows"] == reports[1]["rows"]
    rows = {r["compare"]: r for r in reports[0]["rows"]}
    assert rows["fake_B ~ real_B (pairs)"]["psnr"] == float("inf")  # identical images
    assert rows["rec_A ~ real_A (pairs)"]["ssim"] < 0.5 and rows["rec_A ~ real_A (pairs)"]["count"] == 3
    saved = json.loads((flat / "metrics.json").read_text())
    assert saved["rows"][0]["compare"] == reports[0]["rows"][0]["compare"]


def test_default_metrics_skip_what_has_no_weights_and_say_where_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "empty_cache"))
    evaluate = load_script("evaluate")
    write_images(tmp_path / "a", 3, (16, 16), seed=1)
    write_images(tmp_path / "b", 3, (16, 16), seed=2)
    report = evaluate.main(["--fake", str(tmp_path / "a"), "--real", str(tmp_path / "b"), "--paired",
                            "--json", str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert "skipped fid" in err and "pt_inception-2015-12-05-6726825d.pth" in err
    assert set(report["metrics"]) == {"psnr", "ssim"} and report["rows"][0]["count"] == 3
    assert (tmp_path / "out.json").is_file()
    with pytest.raises(Exception, match="pt_inception"):
        evaluate.main(["--fake", str(tmp_path / "a"), "--real", str(tmp_path / "b"), "--metrics", "fid"])


def test_fid_without_torchmetrics_is_skipped_with_the_install_line(tmp_path, monkeypatch, capsys):
    import importlib.util

    from tests.helpers import random_fid_inception_weights

    evaluate = load_script("evaluate")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchmetrics"
                        else real_find_spec(name, *a))
    weights = random_fid_inception_weights(tmp_path / "inception.pth")  # the weights are there, the library not
    write_images(tmp_path / "a", 2, (16, 16), seed=1)
    write_images(tmp_path / "b", 2, (16, 16), seed=2)
    report = evaluate.main(["--fake", str(tmp_path / "a"), "--real", str(tmp_path / "b"), "--paired",
                            "--inception_weights", str(weights), "--json", str(tmp_path / "out.json")])
    assert "skipped fid: FID and KID need the `torchmetrics`" in capsys.readouterr().err
    assert "fid" not in report["metrics"]


@pytest.mark.slow  # the Inception on the CPU, in evaluate.py and in torch-fidelity: ~1-2 min on 2 loaded cores
def test_fid_equals_torch_fidelitys_own_command_on_generated_images(tmp_path):
    """With one local weights file (seeded random values in the published layout), evaluate.py's FID on a folder
    of generated images equals torch-fidelity's `fidelity --fid` to 1e-3, and its KID with whole-set subsets."""
    pytest.importorskip("torch_fidelity")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fid_agreement.py"), "--count", "12",
                             "--size", "32", "--json", str(tmp_path / "agreement.json")],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    numbers = json.loads((tmp_path / "agreement.json").read_text())
    assert numbers["fid_difference"] < 1e-3 and numbers["i2i_fid"] > 0.01  # two different sets, one number
    assert numbers["kid_difference"] < 1e-6


def test_paired_metrics_on_unpaired_comparisons_say_to_pass_paired(tmp_path, monkeypatch):
    from util.errors import I2IError

    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "empty_cache"))
    results = _flat_results(tmp_path / "p2p")
    for path in (results / "images").glob("*_rec_A.png"):  # pix2pix results: fake_B and real_B only
        path.unlink()
    for path in (results / "images").glob("*_real_A.png"):
        path.unlink()
    with pytest.raises(I2IError, match="pass --paired"):
        load_script("evaluate").main([str(results), "--metrics", "psnr,ssim"])
