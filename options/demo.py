"""The embedded demo: with no --dataroot, i2i trains and tests on data it generates itself.

Each model may declare `demo_options` (small widths and crops, a short schedule, a run name) that
apply only where the user did not set the option; the dataset mode decides which demo data to make.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from util.errors import I2IError


def apply_demo_defaults(parser: argparse.ArgumentParser, model_class: type, is_train: bool, given: set[str]) -> None:
    known = {action.dest for action in parser._actions}
    presets = dict(getattr(model_class, "demo_options", {}))
    presets.setdefault("display_id", 0)  # a demo should not ask for a visdom server
    parser.set_defaults(**{k: v for k, v in presets.items() if k in known and k not in given})


def prepare_demo_data(opt: argparse.Namespace) -> Path:
    """Generate (once) the demo dataset that fits `opt.dataset_mode` and return its --dataroot."""
    from data.demo import make_aligned_demo, make_colorization_demo, make_unaligned_demo

    if opt.dataset_mode == "unaligned":
        return make_unaligned_demo()
    if opt.dataset_mode == "aligned":
        return make_aligned_demo()
    if opt.dataset_mode == "colorization":
        return make_colorization_demo()
    if opt.dataset_mode == "single":
        side = "B" if opt.direction == "BtoA" else "A"
        return make_unaligned_demo() / f"{opt.phase}{side}"
    raise I2IError(f"--dataroot is required for --dataset_mode {opt.dataset_mode} (i2i's demo data covers "
                   "unaligned, aligned, single and colorization). Pass --dataroot PATH to your dataset.")
