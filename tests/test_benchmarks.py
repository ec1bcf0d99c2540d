"""The speed benchmarks run and print their table (smoke runs at tiny sizes; slow, so not in the default run)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
