"""One-direction inference with one generator, `<epoch>_net_G<model_suffix>.pth` (the reference's `--model test`)."""

from __future__ import annotations

import argparse

from util.errors import I2IError

from . import MODELS
from .base_model import BaseModel


@MODELS.register("test")
class TestModel(BaseModel):
    """Single-direction inference: one generator on a folder of images (test.py only)."""

    # The demo's test run translates with the demo CycleGAN's G_A.
    demo_options = dict(name="demo_cycle_gan", model_suffix="_A", no_dropout=True, ngf=16, load_size=64,
                        crop_size=64)

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        if is_train:
            raise I2IError("--model test only runs in test.py; train with --model cycle_gan or pix2pix, then test "
                           "one direction with test.py --model test.")
        parser.set_defaults(dataset_mode="single")
        parser.add_argument("--model_suffix", type=str, default="",
                            help="load <epoch>_net_G<model_suffix>.pth, e.g. _A for a CycleGAN's G_A")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.loss_names = []
        self.visual_names = ["real", "fake"]
        self.model_names = ["G" + opt.model_suffix]
        self.netG = self.generator(opt.input_nc, opt.output_nc)
        setattr(self, "netG" + opt.model_suffix, self.netG)  # so the checkpoint name carries the suffix

    def set_input(self, input: dict) -> None:
        self.real = input["A"].to(self.device, non_blocking=True)
        self.image_paths = input["A_paths"]

    def forward(self) -> None:
        self.fake = self.netG(self.real)

    def optimize_parameters(self) -> None:
        raise I2IError("--model test cannot be trained.")
