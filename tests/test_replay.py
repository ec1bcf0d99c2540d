"""The reference's own run replays through i2i's test.py: same file names, pixels within 1."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from tests.helpers import FIXTURES, run_script

RUN = FIXTURES / "run"
COMMANDS = {
    "tiny_G": "--dataroot datasets/tiny/testA --name tiny_G --model test --no_dropout --ngf 8 "
              "--load_size 64 --crop_size 64",
    "tiny_cyclegan": "--dataroot datasets/tiny --name tiny_cyclegan --model cycle_gan --ngf 8 --ndf 8 "
                     "--load_size 64 --crop_size 64",
}


@pytest.fixture(scope="module")
def run_copy(tmp_path_factory):
    if not RUN.is_dir():
        pytest.skip(f"reference fixtures not found at {RUN}")
    target = tmp_path_factory.mktemp("replay") / "run"
    shutil.copytree(RUN, target)  # test.py writes test_opt.txt beside the checkpoints
    return target


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_replay_matches_reference_outputs(run_copy, name):
    result = run_script("test.py", COMMANDS[name].split() + ["--checkpoints_dir", "./checkpoints"], cwd=run_copy)
    assert result.returncode == 0, result.stderr
    expected = sorted(p.name for p in (run_copy / "expected" / name).glob("*.png"))
    produced_dir = run_copy / "results" / name / "test_latest" / "images"
    produced = sorted(p.name for p in produced_dir.glob("*.png"))
    assert expected and set(expected) <= set(produced), (expected, produced)
    for file_name in expected:
        want = np.asarray(Image.open(run_copy / "expected" / name / file_name), dtype=np.int16)
        got = np.asarray(Image.open(produced_dir / file_name), dtype=np.int16)
        assert want.shape == got.shape, file_name
        assert np.abs(want - got).max() <= 1, f"{file_name}: max difference {np.abs(want - got).max()}"
