"""Command-line options: the reference's names and defaults, with choices read from the registries.

`TrainOptions().parse(argv)` and `TestOptions().parse(argv)` return a plain `argparse.Namespace`.
Models and dataset modes add or change options through their `modify_commandline_options` hook.
"""

from .base_options import BaseOptions
from .test_options import TestOptions
from .train_options import TrainOptions

__all__ = ["BaseOptions", "TestOptions", "TrainOptions"]
