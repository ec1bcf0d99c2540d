"""Models: one file per model, each registered by name in `MODELS` and chosen with `--model`.

How to add one: models/template_model.py and docs/plugins.md (files in the reference's convention,
class `FooModel` in `models/foo_model.py` without a decorator, are found too).
"""

from __future__ import annotations

import argparse

from util.registry import Registry

from .base_model import BaseModel

MODELS = Registry("model", base=BaseModel, option="model", legacy=("models", "model"))

# Built-in models register themselves on import, in the order --help and --list show them.
from . import cycle_gan_model, pix2pix_model, template_model, test_model  # noqa: E402,F401,I001
from . import colorization_model, cut_model, discogan_model  # noqa: E402,F401,I001


def create_model(opt: argparse.Namespace) -> BaseModel:
    """Build the model named by `--model`."""
    model = MODELS.get(opt.model)(opt)
    print(f"model [{type(model).__name__}] was created")
    return model
