"""Read the options a run was trained with (`checkpoints/NAME/train_opt.json`), so inference needs no flags."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import I2IError

#: the options that shape the networks' weights (and so their state_dicts), with the reference's defaults
ARCHITECTURE = {"netG": "resnet_9blocks", "ngf": 64, "netD": "basic", "ndf": 64, "n_layers_D": 3, "norm": "instance",
                "no_dropout": False, "input_nc": 3, "output_nc": 3, "residual_output": False,
                "affine_output": False, "affine_smooth": 1, "affine_edge_sigma": 0.0}


def read_saved_options(checkpoint_dir: str | os.PathLike, phase: str = "train") -> dict[str, Any]:
    """The options saved in `<checkpoint_dir>/<phase>_opt.json` as a dict."""
    path = Path(checkpoint_dir) / f"{phase}_opt.json"
    if not path.is_file():
        raise I2IError(f"{path} does not exist, so the network's architecture is unknown. Point at a folder that "
                       "i2i trained (it writes train_opt.json), or give the network options (--netG, --ngf, --norm, "
                       "--no_dropout, --input_nc, --output_nc) with test.py.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise I2IError(f"could not read {path}: {exc}. Restore it or give the network options explicitly.") from None


def architecture(saved: dict[str, Any]) -> dict[str, Any]:
    """The architecture options among saved ones (the reference's defaults where an old file lacks one)."""
    return {key: saved.get(key, default) for key, default in ARCHITECTURE.items()}
