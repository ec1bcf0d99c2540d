"""The speed benchmarks run and print their table (smoke runs at tiny sizes; slow, so not in the default run)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.helpers import ROOT


def run(script: str, *args: str, tmp_path) -> tuple[str, dict]:
    out = tmp_path / f"{script}.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--json", str(out), *args],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text())


@pytest.mark.slow
def test_train_speed_prints_the_table_and_json(tmp_path):
    stdout, data = run("train_speed.py", "--configs", "cycle_gan_128", "--variants", "fp32,amp", tmp_path=tmp_path)
    assert "GFLOP/it" in stdout and "cycle_gan_128" in stdout
    rows = data["results"]
    assert [r["variant"] for r in rows] == ["fp32", "amp"]
    assert all(r["gflop_per_iter"] > 0 and 0 < r["fraction"] and r["peak_mem_gib"] > 0 for r in rows)


@pytest.mark.slow
def test_infer_speed_prints_the_table_and_json(tmp_path):
    stdout, data = run("infer_speed.py", "--configs", "resnet_9blocks_256", "--variants", "fp32", "--batch_sizes", "2",
                       tmp_path=tmp_path)
    assert "img/s" in stdout
    configs = [r["config"] for r in data["results"]]
    assert configs == ["resnet_9blocks_256", "test.py (jpg->png)"]


@pytest.mark.slow
def test_reference_speed_compares_both_sides_in_alternating_processes(tmp_path):
    stdout, data = run("reference_speed.py", "--configs", "pix2pix_256", "--rounds", "2", tmp_path=tmp_path)
    assert "speed-up" in stdout
    (row,) = data["results"]
    assert row["config"] == "pix2pix_256" and len(row["pairs"]) == 2 and row["speedup"] > 0
    assert all(pair["reference"]["conv_peak_gflops"] > 0 and pair["i2i"]["median_s"] > 0 for pair in row["pairs"])


def test_the_reference_side_runs_with_pytorchs_default_runtime():
    """The reference side must not get i2i's allocator tuning: benchmarks/common.py skips it when told to."""
    probe = ("import os, sys; os.environ['I2I_BENCH_PLAIN_RUNTIME'] = '1'; sys.path.insert(0, 'benchmarks'); "
             "import common; print('util.cpu_setup' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_infer_speed_times_the_onnxruntime_backend_too(tmp_path):
    pytest.importorskip("onnxruntime")
    _, data = run("infer_speed.py", "--configs", "unet_256", "--variants", "fp32", "--batch_sizes", "1", "--images",
                  "0", "--onnxruntime", tmp_path=tmp_path)
    assert [r["variant"] for r in data["results"]] == ["fp32", "onnxruntime"]
    assert all(r["img_per_s"] > 0 and r["gflop_per_img"] > 0 for r in data["results"])  # FLOPs: the torch network's


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("script", ["train_speed.py", "scaling.py"])
def test_device_cuda_without_a_gpu_is_one_clear_line(script):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--device", "cuda"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --device cuda: no CUDA GPU is usable here"), result.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_speed_on_a_gpu_prints_the_table_and_json(tmp_path):
    stdout, data = run("train_speed.py", "--device", "cuda", "--configs", "pix2pix_256", "--variants", "fp32,amp",
                       "--no_scaling", tmp_path=tmp_path)
    assert [(r["variant"], r["batch"]) for r in data["results"]] == [("fp32", 1), ("amp", 1), ("fp32", 8), ("amp", 8)]
    assert all(r["device"] == "cuda" and r["median_s"] > 0 and r["peak_mem_gib"] > 0 for r in data["results"])


@pytest.mark.slow
def test_train_speed_sweep_reports_step_memory_and_ratios(tmp_path):
    """--sweep: with and without --checkpoint_activations, each row with the steps' own memory (from just before the
    first step) next to the process's peak, and each +ckpt row with its ratios to the plain one."""
    stdout, data = run("train_speed.py", "--sweep", "--sweep_sizes", "256", tmp_path=tmp_path)  # --quick: 32 px
    assert "step GiB" in stdout and "time x eq. rate" in stdout
    plain, ckpt = data["results"]
    assert (plain["variant"], ckpt["variant"]) == ("fp32", "fp32+ckpt")
    for r in (plain, ckpt):
        assert 0 <= r["step_mem_gib"] < r["peak_mem_gib"]
    assert ckpt["peak_ratio"] == pytest.approx(ckpt["peak_mem_gib"] / plain["peak_mem_gib"])
    assert ckpt.get("step_ratio", 1) == pytest.approx(ckpt["step_mem_gib"] / plain["step_mem_gib"]
                                                      if plain["step_mem_gib"] else 1)
    assert ckpt["time_ratio_equal_rate"] > 0 and "step_ratio" not in plain
