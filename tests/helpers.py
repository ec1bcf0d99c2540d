"""Small shared helpers for the tests: tiny datasets, option namespaces and running the drivers."""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "reference"


def require_fixtures(path: Path) -> None:
    """Skip a test whose reference fixtures are absent, except in CI (CI=true), where their absence fails it:
    the drop-in claim rests on these tests, so CI must never pass them by skipping."""
    if path.exists():
        return
    import pytest

    message = f"reference fixtures not found at {path}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI=true, and CI must run the reference tests (shared/ beside the repository)")
    pytest.skip(message)


def write_images(folder: Path, count: int, size: tuple[int, int] = (32, 32), seed: int = 0, prefix: str = "") -> None:
    """`count` random RGB PNGs of `size` (width, height) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{prefix}{i:03d}.png")


def unaligned_dataset(root: Path, count: int = 2, size: int = 32) -> Path:
    for i, split in enumerate(["trainA", "trainB", "testA", "testB"]):
        write_images(root / split, count, (size, size), seed=i)
    return root


def aligned_dataset(root: Path, count: int = 2, size: int = 32) -> Path:
    for i, split in enumerate(["train", "test"]):
        write_images(root / split, count, (2 * size, size), seed=10 + i)
    return root


def tiny_args(dataroot: Path, tmp: Path, size: int = 32, train: bool = True) -> list[str]:
    """Options for a fast CPU run at width 8."""
    return (["--display_id", "0"] if train else []) + ["--dataroot", str(dataroot), "--checkpoints_dir", str(tmp / "checkpoints"), "--gpu_ids", "-1",
            "--ngf", "8", "--ndf", "8", "--load_size", str(size), "--crop_size", str(size), "--num_threads", "0"]


def after_one_step(opt):
    """The model of `opt` set up on its first batch, after one training step on it."""
    from data import create_dataset
    from models import create_model

    model = create_model(opt)
    batch = next(iter(create_dataset(opt)))
    model.data_dependent_initialize(batch)
    model.setup(opt)
    model.set_input(batch)
    model.optimize_parameters()
    return model


def load_script(name: str):
    """Import train.py or test.py as a module (the stdlib owns the name `test`)."""
    spec = importlib.util.spec_from_file_location(f"i2i_{name}_script", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run a driver in a fresh interpreter, as a user would."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore::FutureWarning"}
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=600)


class ReplicatingParallel(torch.nn.DataParallel):
    """What `nn.DataParallel` over several GPUs does to module state, on the CPU: every call runs on a fresh copy
    of the wrapped module, so whatever a forward creates or accumulates on the module vanishes with the copy."""

    def __init__(self, module: torch.nn.Module) -> None:
        torch.nn.Module.__init__(self)
        self.module, self.device_ids = module, [0, 1]

    def forward(self, *args, **kwargs):
        return copy.deepcopy(self.module)(*args, **kwargs)


def random_fid_inception_weights(path: Path, seed: int = 0) -> Path:
    """A file in the published FID Inception layout with seeded random weights scaled to keep activations near 1
    (He initialisation, identity batch norms), so features differ between images as trained ones do."""
    import torch
    from torchvision.models import inception_v3

    layout = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False).state_dict()
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in layout.items():
        if key.endswith("num_batches_tracked"):
            continue  # the published file predates this buffer
        if key.endswith("conv.weight") or key == "fc.weight":
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=generator) * (2.0 / fan_in) ** 0.5
        elif key.endswith(("bn.weight", "running_var")):
            state[key] = torch.ones_like(value)
        else:  # biases, running means
            state[key] = torch.zeros_like(value)
    torch.save(state, path)
    return path
