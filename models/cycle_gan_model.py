"""CycleGAN: unpaired translation with two generators, two discriminators and cycle consistency.

Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks", 2017.
G_A: A -> B, G_B: B -> A; D_A judges domain B, D_B judges domain A. Generator objective:

    GAN(D_A(G_A(A))) + GAN(D_B(G_B(B)))
    + lambda_A * |G_B(G_A(A)) - A| + lambda_B * |G_A(G_B(B)) - B|                    (cycle)
    + lambda_identity * (lambda_B * |G_A(B) - B| + lambda_A * |G_B(A) - A|)           (identity)
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from models.image_pool import ImagePool
from util.errors import I2IError
from util.option_types import number

from . import MODELS
from .base_model import BaseModel
from .losses import GANLoss, gradient_penalty

#: on the CPU, generator calls of this many pixels (batch x height x width) or more run the identity images apart
CPU_IDENTITY_BATCH_PIXELS = 2 * 256 * 256


@MODELS.register("cycle_gan")
class CycleGANModel(BaseModel):
    """CycleGAN: unpaired A <-> B with cycle-consistency (G_A, G_B, D_A, D_B)."""

    recommended_options = dict(affine_output=True, affine_smooth=5, affine_edge_sigma=0.1, ema_decay=0.999,
                               lambda_A=2.0, lambda_B=2.0, lambda_identity=0.0)
    # The demo shows i2i's recipe (--preset none: the reference's CycleGAN, which hides the shapes on some seeds).
    demo_options = dict(name="demo_cycle_gan", preset="recommended", ngf=16, ndf=16, load_size=72, crop_size=64,
                        n_epochs=10, n_epochs_decay=10, display_freq=96, print_freq=48, save_epoch_freq=10)

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(no_dropout=True)  # the published CycleGAN models use no dropout
        if is_train:
            parser.add_argument("--lambda_A", type=number(float, at_least=0), default=10.0, help="weight for cycle loss (A -> B -> A)")
            parser.add_argument("--lambda_B", type=number(float, at_least=0), default=10.0, help="weight for cycle loss (B -> A -> B)")
            parser.add_argument("--lambda_identity", type=number(float, at_least=0), default=0.5,
                                help="weight of the identity loss, relative to lambda_A/lambda_B; 0 disables it")
            parser.add_argument("--lambda_warmup", type=number(int, at_least=0), default=0,
                                help="epochs over which the cycle and identity weights rise linearly to lambda_A/"
                                     "lambda_B (epoch E of N trains at E/N of them); 0: full weights from the start")
            parser.add_argument("--lambda_R1", type=number(float, at_least=0), default=0.0,
                                help="R1 penalty: each D's loss gains lambda_R1 / 2 times the squared norm of the "
                                     "gradient of its summed output on real images (Mescheder et al., 2018); 0: off")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.loss_names = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"]
        use_identity = self.isTrain and opt.lambda_identity > 0.0
        visual_names_A = ["real_A", "fake_B", "rec_A"] + (["idt_B"] if use_identity else [])
        visual_names_B = ["real_B", "fake_A", "rec_B"] + (["idt_A"] if use_identity else [])
        self.visual_names = visual_names_A + visual_names_B
        self.model_names = ["G_A", "G_B", "D_A", "D_B"] if self.isTrain else ["G_A", "G_B"]
        self.identity_done = False  # whether this iteration's forward made the identity images already

        self.netG_A = self.generator(opt.input_nc, opt.output_nc)
        self.netG_B = self.generator(opt.output_nc, opt.input_nc)
        if not self.isTrain:
            return
        if use_identity and opt.input_nc != opt.output_nc:
            raise I2IError(f"--lambda_identity {opt.lambda_identity} needs --input_nc == --output_nc (got "
                           f"{opt.input_nc} and {opt.output_nc}); pass --lambda_identity 0 for different channels.")
        self.netD_A = self.discriminator(opt.output_nc)
        self.netD_B = self.discriminator(opt.input_nc)
        self.fake_A_pool = ImagePool(opt.pool_size)
        self.fake_B_pool = ImagePool(opt.pool_size)
        self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
        self.criterionCycle = nn.L1Loss()
        self.criterionIdt = nn.L1Loss()
        self.optimizer_G = self.adam(self.netG_A, self.netG_B)
        self.optimizer_D = self.adam(self.netD_A, self.netD_B, lr=opt.lr_D or None)
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    def set_input(self, input: dict) -> None:
        self.set_paired_input(input)

    def forward(self) -> None:
        self.fake_B = self.netG_A(self.real_A)
        self.rec_A = self.netG_B(self.fake_B)
        self.fake_A = self.netG_B(self.real_B)
        self.rec_B = self.netG_A(self.fake_A)

    def forward_with_identity(self) -> None:
        """forward() and the identity images, each generator run once on [its input, the other domain's image]:
        the same numbers as separate calls (no batch statistics in the generators) at two calls fewer."""
        self.fake_B, self.idt_A = self.netG_A(torch.cat([self.real_A, self.real_B])).chunk(2)
        self.fake_A, self.idt_B = self.netG_B(torch.cat([self.real_B, self.real_A])).chunk(2)
        self.rec_A = self.netG_B(self.fake_B)
        self.rec_B = self.netG_A(self.fake_A)

    def batches_identity(self) -> bool:
        """Whether the identity passes share the generators' calls: per-image normalisation only (batch norm would
        mix the two halves' statistics), A and B images of one size, and on the CPU only for small batches, where
        fewer calls pay; from 2 x 256 x 256 pixels on, separate calls keep each call's activations in the caches
        and are as fast or faster (CycleGAN 256 px on AVX2: 1.02-1.07x; docs/scaling.md)."""
        same_size = self.real_A.shape == self.real_B.shape
        small = self.device.type != "cpu" or 2 * self.real_A[:, 0].numel() < CPU_IDENTITY_BATCH_PIXELS
        return self.opt.lambda_identity > 0 and self.per_image_norm and same_size and small

    @property
    def per_image_norm(self) -> bool:
        return self.opt.norm in ("instance", "none")

    def cycle_weight(self) -> float:
        """The share of lambda_A/lambda_B this epoch trains at: E/N in epoch E of --lambda_warmup N, then 1. Why:
        a generator at the identity (--residual_output, --affine_output) sits where the cycle and identity L1 losses have a kink,
        and their pull back, lambda per unit, outweighs the adversarial push at the full weight of 10."""
        warmup = self.opt.lambda_warmup
        if not warmup or not getattr(self, "schedulers", None):
            return 1.0
        epoch = self.opt.epoch_count + self.schedulers[0].last_epoch  # restored on resume, so resume is exact
        return min(1.0, epoch / warmup)

    def backward_G(self) -> None:
        opt = self.opt
        weight = self.cycle_weight()
        lambda_A, lambda_B = opt.lambda_A * weight, opt.lambda_B * weight
        with self.autocast():
            if opt.lambda_identity > 0:
                if not self.identity_done:
                    self.idt_A = self.netG_A(self.real_B)
                    self.idt_B = self.netG_B(self.real_A)
                self.loss_idt_A = self.criterionIdt(self.idt_A, self.real_B) * lambda_B * opt.lambda_identity
                self.loss_idt_B = self.criterionIdt(self.idt_B, self.real_A) * lambda_A * opt.lambda_identity
            else:
                self.loss_idt_A = self.loss_idt_B = torch.zeros((), device=self.device)
            self.loss_G_A = self.criterionGAN(self.netD_A(self.augment_for_D(self.fake_B)), True)
            self.loss_G_B = self.criterionGAN(self.netD_B(self.augment_for_D(self.fake_A)), True)
            self.loss_cycle_A = self.criterionCycle(self.rec_A, self.real_A) * lambda_A
            self.loss_cycle_B = self.criterionCycle(self.rec_B, self.real_B) * lambda_B
            self.loss_G = (self.loss_G_A + self.loss_G_B + self.loss_cycle_A + self.loss_cycle_B
                           + self.loss_idt_A + self.loss_idt_B)
        self.backward(self.loss_G)

    def backward_D_basic(self, netD: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Half the sum of the real and fake GAN losses (plus the gradient penalty for wgangp)."""
        fake = fake.detach()
        with self.autocast():
            if self.per_image_norm and real.shape == fake.shape:  # one call, the same numbers as two
                pred_real, pred_fake = netD(self.augment_for_D(torch.cat([real, fake]))).chunk(2)
            else:
                pred_real, pred_fake = netD(self.augment_for_D(real)), netD(self.augment_for_D(fake))
            loss = 0.5 * (self.criterionGAN(pred_real, True) + self.criterionGAN(pred_fake, False))
            if self.criterionGAN.uses_gradient_penalty:
                loss = loss + gradient_penalty(netD, real, fake, scaler=self.grad_scaler)
            if self.opt.lambda_R1 > 0:  # R1: the squared gradient norm on real images, the WGAN-GP code at target 0
                loss = loss + gradient_penalty(netD, self.augment_for_D(real), real, kind="real", constant=0.0,
                                               lambda_gp=self.opt.lambda_R1 / 2, scaler=self.grad_scaler)
        self.backward(loss)
        return loss

    def optimize_parameters(self) -> None:
        self.identity_done = self.batches_identity()
        with self.autocast():
            self.forward_with_identity() if self.identity_done else self.forward()
        # Generators first, with the discriminators frozen so no gradient is spent on them.
        self.set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad(set_to_none=True)
        self.backward_G()
        self.step(self.optimizer_G)
        # Then the discriminators, on fakes drawn from the history pools.
        self.set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad(set_to_none=True)
        self.loss_D_A = self.backward_D_basic(self.netD_A, self.real_B, self.fake_B_pool.query(self.fake_B))
        self.loss_D_B = self.backward_D_basic(self.netD_B, self.real_A, self.fake_A_pool.query(self.fake_A))
        self.step(self.optimizer_D)
