"""The reference's own training step and inference, imported from a checkout of its repository.

Used by reference_speed.py's `--reference_checkout PATH` in the reference's child process: the checkout's
`models`, `options`, `data` and `util` packages take the place of i2i's (which share those names), so this
module must be imported before anything of i2i is, and imports nothing of i2i itself.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

REFERENCE_PACKAGES = ("models", "options", "data", "util")


def use_checkout(checkout: str | Path, repository_root: Path) -> None:
    """Put the checkout first on sys.path and i2i's folder off it, so `import models` is the reference's."""
    checkout = Path(checkout).resolve()
    if not (checkout / "models" / "cycle_gan_model.py").is_file():
        raise SystemExit(f"error: --reference_checkout {checkout}: no models/cycle_gan_model.py there; give a "
                         "checkout of pytorch-CycleGAN-and-pix2pix.")
    clashing = [name for name in REFERENCE_PACKAGES if name in sys.modules]
    if clashing:
        raise RuntimeError(f"i2i's {clashing} already imported: the reference's packages would not load")
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != repository_root.resolve()]
    sys.path.insert(0, str(checkout))


def checkout_commit(checkout: str | Path) -> str:
    """The checkout's git commit, or "unknown" for a plain copy of the files."""
    result = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def reference_options(argv: list[str]):
    """The reference's TrainOptions parsed from `argv` as its train.py would (its option table silenced)."""
    from options.train_options import TrainOptions

    saved = sys.argv
    sys.argv = ["train.py", *argv]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return TrainOptions().parse()
    finally:
        sys.argv = saved


def training_step(argv: list[str], data: dict) -> Callable[[], None]:
    """One call of the reference's `model.set_input(data); model.optimize_parameters()`, as its train.py runs it."""
    import models

    opt = reference_options(argv)
    assert Path(models.__file__).resolve().is_relative_to(Path(sys.path[0]).resolve()), models.__file__
    torch.manual_seed(0)
    with contextlib.redirect_stdout(io.StringIO()):
        model = models.create_model(opt)
        model.setup(opt)

    def step() -> None:
        model.set_input(data)
        model.optimize_parameters()

    return step


def inference_step(netG: str, norm: str, ngf: int, image: torch.Tensor) -> Callable[[], None]:
    """The reference's generator (its `networks.define_G`, no dropout) on `image` under torch.no_grad()."""
    from models import networks

    torch.manual_seed(0)
    net = networks.define_G(3, 3, ngf, netG, norm=norm, use_dropout=False, gpu_ids=[]).eval()

    def step() -> None:
        with torch.no_grad():
            net(image)

    return step
