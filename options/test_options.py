"""Test options."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from util.option_types import number
from util.saved_options import ARCHITECTURE, read_saved_options

from .base_options import BaseOptions


class TestOptions(BaseOptions):
    __test__ = False  # not a pytest class
    is_train = False

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        add = parser.add_argument
        add("--results_dir", type=str, default="./results/", help="saves results here")
        add("--aspect_ratio", type=number(float, above=0), default=1.0,
            help="aspect ratio of saved images: > 1 makes them wider, < 1 taller")
        add("--phase", type=str, default="test", help="train, val, test, etc.")
        add("--eval", action="store_true", help="use eval mode (batch norm statistics, no dropout) at test time")
        add("--num_test", type=number(int, at_least=1), default=50, help="how many test images to run")
        # inference: any size, tiles, exported models (inference/translator.py)
        add("--backend", default="torch", choices=["torch", "onnxruntime", "onnxruntime_int8"],
            help="run the PyTorch checkpoints, the ONNX files export.py wrote (<epoch>_net_<name>.onnx), or the "
            "checkpoints quantised to int8 by onnxruntime (cached as <epoch>_net_<name>.int8.onnx; prints the error)")
        add("--calibration_dir", default=None,
            help="onnxruntime_int8: images that calibrate the quantisation (default: <dataroot>/trainA or trainB)")
        add("--calibration_images", type=number(int, at_least=1), default=32,
            help="onnxruntime_int8: how many calibration images (the first, sorted)")
        add("--tile", type=number(int, at_least=0), default=0, help="translate images larger than N pixels in N x N tiles (0: whole)")
        add("--tile_overlap", type=number(int, at_least=0), default=32, help="pixels shared by neighbouring tiles, blended linearly")
        add("--tile_stat_passes", type=number(int, at_least=0), default=2,
            help="passes over the tiles that gather whole-image statistics for instance-norm layers")
        add("--fast_convs", action="store_true",
            help="torch backend on the CPU: the slowest convolutions by faster algorithms, same weights, output within "
            "about 1e-5: 3x3 of 256+ channels (the ResNet blocks) by Winograd's F(4x4, 3x3), and a 5x5+ convolution to "
            "at most 4 channels (the ResNets' last) by kernel rows; with or without --compile")
        # --load_size follows --crop_size at test time (finalize).
        parser.set_defaults(model="test", load_size=None)
        return parser

    def finalize(self, opt: argparse.Namespace) -> None:
        if opt.load_size is None:
            opt.load_size = opt.crop_size
        # Testing takes images in order, unflipped, with no visdom (as the reference's test.py).
        opt.serial_batches = True
        opt.no_flip = True
        opt.display_id = -1

    def check(self, opt: argparse.Namespace) -> None:
        super().check(opt)
        if opt.fast_convs:
            from networks.fast_convs import check_backend, check_precision

            check_backend(opt.backend)
            check_precision(opt)

    def gather_options(self, argv: list[str]) -> argparse.Namespace:
        """Parse as usual, then default the architecture options to those the run was trained with."""
        opt = super().gather_options(argv)
        saved = saved_architecture(opt)
        changed = {k: v for k, v in saved.items() if self.parser.get_default(k) != v}
        if not changed:
            return opt
        self.parser.set_defaults(**changed)  # options given on the command line still win
        opt = self.parser.parse_args(argv)
        self.notes.append(f"architecture from {Path(opt.checkpoints_dir) / opt.name / 'train_opt.json'}: "
                          + " ".join(f"--{k} {v}" for k, v in changed.items() if getattr(opt, k) == v))
        return opt


def saved_architecture(opt: argparse.Namespace) -> dict[str, Any]:
    """The architecture options in `<checkpoints_dir>/<name>/train_opt.json` ({} for a reference checkpoint).

    `--model test --model_suffix _B` loads G_B, which maps output_nc -> input_nc: the channels swap."""
    from models import MODELS

    if not (Path(opt.checkpoints_dir) / opt.name / "train_opt.json").is_file():
        return {}
    saved = read_saved_options(Path(opt.checkpoints_dir) / opt.name)
    arch = {k: saved[k] for k in ARCHITECTURE if k in saved}
    if saved.get("model", opt.model) == opt.model and opt.model in MODELS:  # e.g. CUT's --no_antialias
        arch |= {k: saved[k] for k in MODELS.get(opt.model).architecture_options if k in saved}
    if saved.get("model", opt.model) != opt.model and saved.get("model") in MODELS:
        arch |= MODELS.get(saved["model"]).generator_architecture(saved)  # e.g. a CUT run tested with --model test
    if getattr(opt, "model_suffix", "") == "_B" and "input_nc" in arch and "output_nc" in arch:
        arch["input_nc"], arch["output_nc"] = arch["output_nc"], arch["input_nc"]
    return arch
