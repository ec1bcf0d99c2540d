"""Colorization: pix2pix from the lightness of a photo (L) to its colour (ab), in CIE L*a*b* space.

Same networks, losses and update order as pix2pix (G: L -> ab, conditional D on (L, ab), GAN + lambda_L1 L1);
only the data differ (`--dataset_mode colorization`: A = L / 50 - 1, B = ab / 110). The visuals show the
colours converted back to RGB.
"""

from __future__ import annotations

import argparse

import torch

from util.color import lab_to_rgb

from . import MODELS
from .pix2pix_model import Pix2PixModel


def lab_batch_to_rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Normalised L ([-1, 1], N x 1 x H x W) and ab (/110, N x 2 x H x W) -> RGB in [-1, 1], N x 3 x H x W."""
    lab = torch.cat([(L.detach() + 1.0) * 50.0, ab.detach() * 110.0], dim=1).float()
    return lab_to_rgb(lab) * 2.0 - 1.0


@MODELS.register("colorization")
class ColorizationModel(Pix2PixModel):
    """Colorization: pix2pix from lightness L to colour ab (Lab space); visuals shown in RGB."""

    demo_options = dict(Pix2PixModel.demo_options, name="demo_colorization")
    contract_options = ["--netG", "unet_128", "--load_size", "128", "--crop_size", "128"]

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser = super().modify_commandline_options(parser, is_train)
        parser.set_defaults(dataset_mode="colorization")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.visual_names = ["real_A", "real_B_rgb", "fake_B_rgb"]

    @property
    def real_B_rgb(self) -> torch.Tensor:
        """The true colours, as RGB in [-1, 1]."""
        return lab_batch_to_rgb(self.real_A, self.real_B)

    @property
    def fake_B_rgb(self) -> torch.Tensor:
        """The predicted colours on the true lightness, as RGB in [-1, 1]."""
        return lab_batch_to_rgb(self.real_A, self.fake_B)
