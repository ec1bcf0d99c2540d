"""The reference's own run replays through i2i's test.py: same file names, pixels within 1."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from tests.helpers import FIXTURES, require_fixtures, run_script

RUN = FIXTURES / "run"
COMMANDS = {
    "tiny_G": "--dataroot datasets/tiny/testA --name tiny_G --model test --no_dropout --ngf 8 "
              "--load_size 64 --crop_size 64",
    "tiny_cyclegan": "--dataroot datasets/tiny --name tiny_cyclegan --model cycle_gan --ngf 8 --ndf 8 "
                     "--load_size 64 --crop_size 64",
}


@pytest.fixture(scope="module")
def run_copy(tmp_path_factory):
    require_fixtures(RUN)  # skips where absent, fails under CI=true
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


def test_absent_fixtures_skip_locally_and_fail_in_ci(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_fixtures(tmp_path / "absent")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_fixtures(tmp_path / "absent")
    require_fixtures(tmp_path)  # present: nothing happens
