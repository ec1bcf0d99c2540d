"""pix2pix: paired translation with a conditional GAN and an L1 term.

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", 2017.
G: A -> B; D judges the pair (A, B) concatenated on the channel axis. Each iteration updates D on
(A, G(A)) as fake and (A, B) as real, then G with GAN(D(A, G(A))) + lambda_L1 * |G(A) - B|.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from util.option_types import number

from . import MODELS
from .base_model import BaseModel
from .losses import GANLoss, gradient_penalty


@MODELS.register("pix2pix")
class Pix2PixModel(BaseModel):
    """pix2pix: paired A -> B with a conditional PatchGAN and L1 (G, D)."""

    demo_options = dict(name="demo_pix2pix", netG="unet_128", ngf=16, ndf=16, load_size=128, crop_size=128,
                        n_epochs=10, n_epochs_decay=10, display_freq=96, print_freq=48, save_epoch_freq=10)
    contract_options = ["--netG", "unet_128", "--load_size", "128", "--crop_size", "128"]  # U-Net: 128-px multiples

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(norm="batch", netG="unet_256", dataset_mode="aligned")
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode="vanilla")
            parser.add_argument("--lambda_L1", type=number(float, at_least=0), default=100.0, help="weight for the L1 loss")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.loss_names = ["G_GAN", "G_L1", "D_real", "D_fake"]
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.model_names = ["G", "D"] if self.isTrain else ["G"]
        self.netG = self.generator(opt.input_nc, opt.output_nc)
        if not self.isTrain:
            return
        self.netD = self.discriminator(opt.input_nc + opt.output_nc)  # conditional: sees A and B
        self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
        self.criterionL1 = nn.L1Loss()
        self.optimizer_G = self.adam(self.netG)
        self.optimizer_D = self.adam(self.netD)
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    def set_input(self, input: dict) -> None:
        self.set_paired_input(input)

    def forward(self) -> None:
        self.fake_B = self.netG(self.real_A)

    def backward_D(self) -> None:
        with self.autocast():
            fake_AB = torch.cat((self.real_A, self.fake_B), 1).detach()
            real_AB = torch.cat((self.real_A, self.real_B), 1)
            self.loss_D_fake = self.criterionGAN(self.netD(fake_AB), False)
            self.loss_D_real = self.criterionGAN(self.netD(real_AB), True)
            self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
            if self.criterionGAN.uses_gradient_penalty:
                self.loss_D = self.loss_D + gradient_penalty(self.netD, real_AB, fake_AB, scaler=self.grad_scaler)
        self.backward(self.loss_D)

    def backward_G(self) -> None:
        with self.autocast():
            fake_AB = torch.cat((self.real_A, self.fake_B), 1)
            self.loss_G_GAN = self.criterionGAN(self.netD(fake_AB), True)
            self.loss_G_L1 = self.criterionL1(self.fake_B, self.real_B) * self.opt.lambda_L1
            self.loss_G = self.loss_G_GAN + self.loss_G_L1
        self.backward(self.loss_G)

    def optimize_parameters(self) -> None:
        with self.autocast():
            self.forward()
        self.set_requires_grad(self.netD, True)
        self.optimizer_D.zero_grad(set_to_none=True)
        self.backward_D()
        self.step(self.optimizer_D)
        self.set_requires_grad(self.netD, False)  # G's step needs no gradient for D's weights
        self.optimizer_G.zero_grad(set_to_none=True)
        self.backward_G()
        self.step(self.optimizer_G)
