"""`--model example_denoise`: one generator trained with L1 to remove the noise of `example_noisy` pairs."""

from __future__ import annotations

import argparse

from torch import nn

from models import MODELS
from models.base_model import BaseModel


@MODELS.register("example_denoise")
class DenoiseModel(BaseModel):
    """Example plugin: L1 denoising with one generator (defaults: --netG example_tiny, --dataset_mode example_noisy)."""

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(netG="example_tiny", dataset_mode="example_noisy", norm="instance", no_dropout=True)
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.loss_names = ["L1"]
        self.visual_names = ["noisy", "denoised", "clean"]
        self.model_names = ["G"]
        self.netG = self.generator(opt.input_nc, opt.output_nc)  # --netG (example_tiny by default), on the device
        if self.isTrain:
            self.criterion = nn.L1Loss()
            self.optimizer_G = self.adam(self.netG)
            self.optimizers = [self.optimizer_G]

    def set_input(self, input: dict) -> None:
        self.noisy = input["A"].to(self.device)
        self.clean = input["B"].to(self.device)
        self.image_paths = input["A_paths"]

    def forward(self) -> None:
        self.denoised = self.netG(self.noisy)

    def optimize_parameters(self) -> None:
        self.forward()
        self.optimizer_G.zero_grad(set_to_none=True)
        self.loss_L1 = self.criterion(self.denoised, self.clean)
        self.loss_L1.backward()
        self.optimizer_G.step()
