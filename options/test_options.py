"""Test options (section 1.4 of the reference's behaviour)."""

from __future__ import annotations

import argparse

from .base_options import BaseOptions


class TestOptions(BaseOptions):
    is_train = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        add = parser.add_argument
        add("--results_dir", type=str, default="./results/", help="saves results here")
        add("--aspect_ratio", type=float, default=1.0,
            help="aspect ratio of saved images: > 1 makes them wider, < 1 taller")
        add("--phase", type=str, default="test", help="train, val, test, etc.")
        add("--eval", action="store_true", help="use eval mode (batch norm statistics, no dropout) at test time")
        add("--num_test", type=int, default=50, help="how many test images to run")
        # The reference fixes --load_size to 256 at test time; i2i defaults it to --crop_size (see parse()).
        parser.set_defaults(model="test", load_size=None)
        return parser

    def finalize(self, opt: argparse.Namespace) -> None:
        if opt.load_size is None:
            opt.load_size = opt.crop_size
        # Testing takes images in order, unflipped, with no visdom (as the reference's test.py).
        opt.serial_batches = True
        opt.no_flip = True
        opt.display_id = -1
