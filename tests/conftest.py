"""Put the repository root on sys.path so tests import the project's packages without installing them."""

import os
import sys
from pathlib import Path

import pytest

# Plugins installed in this environment (entry points "i2i.plugins") would change the registries under test;
# tests that need the entry-point channel turn it back on in their own subprocess.
os.environ.setdefault("I2I_DISABLE_PLUGIN_AUTOLOAD", "1")

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def float64():
    """Tensors default to float64 for the test (exactness checks far below float32 rounding)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
