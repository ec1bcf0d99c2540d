"""CPU defaults set before torch is imported (util/cpu_setup.py): glibc keeps freed memory; OpenMP waiting left alone."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

PROBE = "import util.cpu_setup, os, torch; print(os.environ.get('OMP_WAIT_POLICY'))"


@pytest.mark.parametrize("given, expected", [(None, "None"), ("PASSIVE", "PASSIVE")])
def test_wait_policy_is_the_users_choice(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


@pytest.mark.parametrize("driver", ["train.py", "test.py", "evaluate.py", "export.py", "translate.py"])
def test_drivers_apply_it_before_anything_imports_torch(driver):
    tree = ast.parse((ROOT / driver).read_text())
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
               and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")]
    first = imports[0]
    assert isinstance(first, ast.Import) and first.names[0].name == "util.cpu_setup", ast.dump(first)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_glibc_allocator_accepts_the_settings():
    from util import cpu_setup

    assert cpu_setup.tune_glibc_malloc(), "mallopt refused a setting"
