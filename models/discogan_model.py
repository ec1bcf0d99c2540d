"""DiscoGAN: unpaired A <-> B with two generators, two discriminators and an L2 reconstruction loss.

Kim et al., "Learning to Discover Cross-Domain Relations with Generative Adversarial Networks", ICML 2017.
G_AB: A -> B, G_BA: B -> A; D_B judges domain B, D_A judges domain A. Generator objective:

    GAN(D_B(G_AB(A))) + GAN(D_A(G_BA(B)))
    + lambda_rec * ( ||G_BA(G_AB(A)) - A||^2 + ||G_AB(G_BA(B)) - B||^2 )      (reconstruction, mean squared)

Unlike CycleGAN, as in the paper: squared reconstruction error, the vanilla GAN loss, no history pool, no
identity term, batch norm, and the discriminators updated first.

Default networks (change them with --netG/--netD/--norm): `unet_upsample`, whose skip connections keep the
shape and position of the input (the paper's generator has none; --netG resnet_6blocks is a skip-free
alternative), and `global`, a discriminator that gives one score per image like the paper's.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch import nn

from util.option_types import number

from . import MODELS
from .base_model import BaseModel
from .losses import GANLoss, gradient_penalty


@MODELS.register("discogan")
class DiscoGANModel(BaseModel):
    """DiscoGAN: unpaired A <-> B with L2 reconstruction and vanilla GAN (G_AB, G_BA, D_A, D_B)."""

    demo_options = dict(name="demo_discogan", ngf=16, ndf=16, load_size=72, crop_size=64,
                        n_epochs=10, n_epochs_decay=10, display_freq=96, print_freq=48, save_epoch_freq=10)

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(netG="unet_upsample", netD="global", norm="batch", dataset_mode="unaligned")
        if is_train:
            parser.set_defaults(gan_mode="vanilla", pool_size=0)
            parser.add_argument("--lambda_rec", type=number(float, at_least=0), default=1.0,
                                help="weight of the L2 reconstruction loss (both directions)")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.loss_names = ["D_A", "G_BA", "rec_A", "D_B", "G_AB", "rec_B"]
        self.visual_names = ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]
        self.model_names = ["G_AB", "G_BA", "D_A", "D_B"] if self.isTrain else ["G_AB", "G_BA"]
        self.netG_AB = self.generator(opt.input_nc, opt.output_nc)
        self.netG_BA = self.generator(opt.output_nc, opt.input_nc)
        if not self.isTrain:
            return
        self.netD_A = self.discriminator(opt.input_nc)
        self.netD_B = self.discriminator(opt.output_nc)
        self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
        self.criterionRec = nn.MSELoss()
        self.optimizer_G = self.adam(self.netG_AB, self.netG_BA)
        self.optimizer_D = self.adam(self.netD_A, self.netD_B)
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    def set_input(self, input: dict[str, Any]) -> None:
        self.set_paired_input(input)

    def forward(self) -> None:
        self.fake_B = self.netG_AB(self.real_A)
        self.rec_A = self.netG_BA(self.fake_B)
        self.fake_A = self.netG_BA(self.real_B)
        self.rec_B = self.netG_AB(self.fake_A)

    def discriminator_loss(self, netD: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        fake = fake.detach()
        loss = self.criterionGAN(netD(real), True) + self.criterionGAN(netD(fake), False)
        if self.criterionGAN.uses_gradient_penalty:
            loss = loss + gradient_penalty(netD, real, fake, scaler=self.grad_scaler)
        return loss

    def generator_loss(self) -> torch.Tensor:
        lambda_rec = self.opt.lambda_rec
        self.loss_G_AB = self.criterionGAN(self.netD_B(self.fake_B), True)
        self.loss_G_BA = self.criterionGAN(self.netD_A(self.fake_A), True)
        self.loss_rec_A = self.criterionRec(self.rec_A, self.real_A) * lambda_rec
        self.loss_rec_B = self.criterionRec(self.rec_B, self.real_B) * lambda_rec
        self.loss_G = self.loss_G_AB + self.loss_G_BA + self.loss_rec_A + self.loss_rec_B
        return self.loss_G

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
        # Discriminators first, on the detached translations.
        self.set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad(set_to_none=True)
        with self.autocast():
            self.loss_D_A = self.discriminator_loss(self.netD_A, self.real_A, self.fake_A)
            self.loss_D_B = self.discriminator_loss(self.netD_B, self.real_B, self.fake_B)
        self.backward(self.loss_D_A + self.loss_D_B)
        self.step(self.optimizer_D)
        # Then both generators together.
        self.set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad(set_to_none=True)
        with self.autocast():
            loss_G = self.generator_loss()
        self.backward(loss_G)
        self.step(self.optimizer_G)
