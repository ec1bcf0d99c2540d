"""The embedded demo: with no --dataroot, train.py and test.py use data that i2i generates itself.

Each model may declare `demo_options` (small widths and crops, a short schedule, a run name) that apply only
where the user did not set the option. Parsing only chooses the folder (`demo_dataroot`); the drivers draw the
data there (`data.demo.make_demo_data`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from util.errors import I2IError


def apply_demo_defaults(parser: argparse.ArgumentParser, model_class: type, given: set[str],
                        opt: argparse.Namespace) -> dict[str, Any]:
    """Set the model's demo presets as defaults, except for options the user typed; returns those applied.
    A preset may be a function of the options parsed so far (CUT's run name follows --CUT_mode)."""
    known = {action.dest for action in parser._actions}
    presets = dict(getattr(model_class, "demo_options", {}))
    presets.setdefault("display_id", 0)  # a demo should not ask for a visdom server
    applied = {k: v(opt) if callable(v) else v for k, v in presets.items() if k in known and k not in given}
    parser.set_defaults(**applied)
    return applied


def demo_dataroot(opt: argparse.Namespace) -> Path:
    """The --dataroot of the demo data that fits `opt.dataset_mode` (drawn there by the drivers)."""
    from data.demo import DEMO_ALIGNED, DEMO_COLORIZATION, DEMO_UNALIGNED

    roots = {"unaligned": DEMO_UNALIGNED, "aligned": DEMO_ALIGNED, "colorization": DEMO_COLORIZATION}
    if opt.dataset_mode in roots:
        return roots[opt.dataset_mode]
    if opt.dataset_mode == "single":
        side = "B" if opt.direction == "BtoA" else "A"
        return DEMO_UNALIGNED / f"{opt.phase}{side}"
    raise I2IError(f"--dataroot is required for --dataset_mode {opt.dataset_mode} (i2i's demo data covers "
                   "unaligned, aligned, single and colorization). Pass --dataroot PATH to your dataset.")
