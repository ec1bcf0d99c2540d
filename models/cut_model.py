"""CUT and FastCUT: one-sided unpaired translation with a patchwise contrastive loss.

Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV 2020. One generator
G: A -> B and one PatchGAN D judging domain B. G keeps the content by PatchNCE (models/patchnce.py) on the
features of its encoder at `--nce_layers`, sampled and projected by a small head F. Objective of G and F:

    lambda_GAN * GAN(D(G(A)))  +  lambda_NCE * PatchNCE(A, G(A))                     (FastCUT)
    lambda_GAN * GAN(D(G(A)))  +  lambda_NCE * (PatchNCE(A, G(A)) + PatchNCE(B, G(B))) / 2   (CUT)

`--CUT_mode` sets the defaults in `MODE_PRESETS`. The option names and defaults are CUT's; how i2i differs
from taesungp/contrastive-unpaired-translation (anti-aliased networks, F's creation): docs/differences.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from networks import build_discriminator, get_norm_layer, identity_start, identity_start_arguments, init_weights
from networks.cut_resnet import AntialiasResnetGenerator
from networks.patch_sample import PATCH_SAMPLERS, EncoderTaps, encoder_features
from util import runtime
from util.errors import I2IError
from util.option_types import number

from . import MODELS
from .base_model import BaseModel
from .losses import GANLoss, gradient_penalty
from .patchnce import PatchNCELoss

MODE_PRESETS: dict[str, dict[str, Any]] = {
    "CUT": dict(nce_idt=True, lambda_NCE=1.0, flip_equivariance=False, n_epochs=200, n_epochs_decay=200),
    "FastCUT": dict(nce_idt=False, lambda_NCE=10.0, flip_equivariance=True, n_epochs=150, n_epochs_decay=50),
}
_RESNET_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6}
_PATCHGAN_NAMES = ("basic", "n_layers")  # the PatchGANs CUT anti-aliases


def str2bool(value: str | bool) -> bool:
    """CUT's boolean options: `--nce_idt`, `--nce_idt True`, `--nce_idt false`, `--nce_idt 0`."""
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got '{value}'")


def cut_mode(value: str) -> str:
    """`--CUT_mode` is case-insensitive, as in CUT: cut, CUT, fastcut, FastCUT."""
    for mode in MODE_PRESETS:
        if value.lower() == mode.lower():
            return mode
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(MODE_PRESETS)} (any case), got '{value}'")


def _cut_or_fastcut(cut: Any, fastcut: Any) -> Callable[[argparse.Namespace], Any]:
    """A demo preset with one value for --CUT_mode CUT and another for FastCUT."""
    return lambda opt: cut if opt.CUT_mode == "CUT" else fastcut


@MODELS.register("cut")
class CUTModel(BaseModel):
    """CUT / FastCUT: one-sided unpaired A -> B with PatchNCE (G, F, D); --CUT_mode picks the preset."""

    # The CUT demo shows the recipe, with plain (not anti-aliased) layers and twice the epochs of CycleGAN's demo,
    # which keep the shapes on every seed measured (docs/quality.md); FastCUT has no recipe yet.
    demo_options = dict(name=lambda opt: f"demo_{opt.CUT_mode.lower()}", ngf=16, ndf=16, load_size=72, crop_size=64,
                        netF_nc=64, num_patches=64,
                        preset=_cut_or_fastcut("recommended", "none"), no_antialias=_cut_or_fastcut(True, False),
                        no_antialias_up=_cut_or_fastcut(True, False), n_epochs=_cut_or_fastcut(20, 10),
                        n_epochs_decay=_cut_or_fastcut(20, 10),
                        display_freq=96, print_freq=48, save_epoch_freq=10)
    contract_options = ["--num_patches", "16", "--netF_nc", "16"]
    architecture_options = ("no_antialias", "no_antialias_up")

    @staticmethod
    def recommended_options(opt: argparse.Namespace) -> dict[str, Any]:
        """--preset recommended, for --CUT_mode CUT: the affine colour output and a tenth of PatchNCE's weight,
        which ends the figure-ground swap on the demo (docs/quality.md); FastCUT: none yet."""
        return dict(affine_output=True, lambda_NCE=0.1) if opt.CUT_mode == "CUT" else {}

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        add = parser.add_argument
        add("--CUT_mode", type=cut_mode, default="CUT", choices=list(MODE_PRESETS),
            help="CUT (identity NCE, lambda_NCE 1) or FastCUT (no identity NCE, lambda_NCE 10, flip equivariance); "
                 "sets the defaults of those options")
        add("--lambda_GAN", type=number(float, at_least=0), default=1.0, help="weight for the GAN loss: GAN(G(X))")
        add("--lambda_NCE", type=number(float, at_least=0), default=1.0, help="weight for the NCE loss: NCE(G(X), X) (preset: 1 for CUT, 10 for FastCUT)")
        add("--nce_idt", type=str2bool, nargs="?", const=True, default=False,
            help="use the identity NCE loss NCE(G(Y), Y) (preset: on for CUT, off for FastCUT)")
        add("--nce_layers", type=str, default="0,4,8,12,16", help="compute the NCE loss on these layers of G")
        add("--nce_includes_all_negatives_from_minibatch", type=str2bool, nargs="?", const=True, default=False,
            help="take negatives from every image of the batch, not only the same image (for single-image "
                 "translation)")
        add("--netF", type=str, default="mlp_sample", choices=PATCH_SAMPLERS.names(), help="how to sample and "
            "project the feature patches")
        add("--netF_nc", type=number(int, at_least=1), default=256, help="width of F's MLP")
        add("--nce_T", type=number(float, above=0), default=0.07, help="temperature of the NCE loss")
        add("--num_patches", type=number(int, at_least=1), default=256, help="number of patches per layer")
        add("--flip_equivariance", type=str2bool, nargs="?", const=True, default=False,
            help="flip the input horizontally half the time and ask G to commute with the flip "
                 "(preset: on for FastCUT)")
        add("--no_antialias", action="store_true", help="plain stride-2 convolutions instead of anti-aliased "
            "downsampling (the reference's layout)")
        add("--no_antialias_up", action="store_true", help="transposed convolutions instead of anti-aliased "
            "upsampling (the reference's layout)")
        parser.set_defaults(no_dropout=True, init_type="xavier", pool_size=0)
        return parser

    @classmethod
    def generator_architecture(cls, saved: dict[str, Any]) -> dict[str, Any]:
        """CUT builds --netG resnet_* anti-aliased: for another model that is --netG antialias_resnet_*."""
        netG = saved.get("netG")
        if netG not in _RESNET_BLOCKS or saved.get("no_antialias") and saved.get("no_antialias_up"):
            return {}
        if saved.get("no_antialias") or saved.get("no_antialias_up"):
            raise I2IError("this CUT run's generator is anti-aliased on one side only (--no_antialias or "
                           "--no_antialias_up), which only --model cut rebuilds: test it with --model cut.")
        return {"netG": f"antialias_{netG}"}

    @classmethod
    def preset_defaults(cls, opt: argparse.Namespace) -> dict[str, Any]:
        return dict(MODE_PRESETS[opt.CUT_mode])

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        self.nce_idt = self.isTrain and opt.nce_idt
        self.loss_names = ["G_GAN", "D_real", "D_fake", "G", "NCE"] + (["NCE_Y"] if self.nce_idt else [])
        self.visual_names = ["real_A", "fake_B", "real_B"] + (["idt_B"] if self.nce_idt else [])
        self.model_names = ["G", "F", "D"] if self.isTrain else ["G"]
        try:
            self.nce_layers = [int(x) for x in opt.nce_layers.split(",") if x.strip()]
        except ValueError:
            self.nce_layers = []
        if not self.nce_layers:
            raise I2IError(f"--nce_layers '{opt.nce_layers}': expected comma-separated layer indices such as "
                           "0,4,8,12,16.")
        self.netG = self.place(self._cut_generator())
        self.flipped_for_equivariance = False
        if not self.isTrain:
            return
        if self.nce_idt and opt.input_nc != opt.output_nc:
            raise I2IError(f"--nce_idt needs --input_nc == --output_nc (got {opt.input_nc} and {opt.output_nc}); "
                           "pass --nce_idt False or --CUT_mode FastCUT.")
        # F stays a plain module, never wrapped (why: docs/differences.md); G's encoder is placed as G is.
        self.netF = PATCH_SAMPLERS.get(opt.netF)(opt.netF_nc, opt.init_type, opt.init_gain).to(self.device)
        self.encoder = runtime.prepare_network(EncoderTaps(self.netG, self.nce_layers), self.device,
                                               compile=opt.compile, device_ids=self.gpu_ids)
        self.netD = self.place(self._cut_discriminator())
        self.criterionGAN = GANLoss(opt.gan_mode).to(self.device)
        self.criterionNCE = PatchNCELoss(opt.nce_T, opt.nce_includes_all_negatives_from_minibatch)
        self.optimizer_G = self.adam(self.netG)
        self.optimizer_D = self.adam(self.netD, lr=opt.lr_D or None)
        self.optimizer_F: torch.optim.Optimizer | None = None  # made by data_dependent_initialize
        self.f_ready = False
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    # -- building -------------------------------------------------------------------------------------

    def _cut_generator(self) -> nn.Module:
        """--netG resnet_* is built anti-aliased as CUT does (unless --no_antialias[_up]); other names as usual."""
        opt = self.opt
        if opt.netG not in _RESNET_BLOCKS:
            return self.generator(opt.input_nc, opt.output_nc)
        net = AntialiasResnetGenerator(opt.input_nc, opt.output_nc, opt.ngf, norm_layer=get_norm_layer(opt.norm),
                                       use_dropout=not opt.no_dropout, n_blocks=_RESNET_BLOCKS[opt.netG],
                                       antialias=not opt.no_antialias, antialias_up=not opt.no_antialias_up)
        net = init_weights(net, opt.init_type, opt.init_gain)
        return identity_start(net, **identity_start_arguments(vars(opt)))

    def _cut_discriminator(self) -> nn.Module:
        """--netD, with CUT's anti-aliased PatchGAN (the registry's antialias_basic/antialias_n_layers) for basic
        and n_layers unless --no_antialias."""
        opt = self.opt
        name = opt.netD if opt.no_antialias or opt.netD not in _PATCHGAN_NAMES else f"antialias_{opt.netD}"
        return build_discriminator(name, opt.output_nc, opt.ndf, n_layers_D=opt.n_layers_D, norm=opt.norm,
                                   init_type=opt.init_type, init_gain=opt.init_gain, spectral_norm=opt.spectral_norm)

    def data_dependent_initialize(self, data: dict[str, Any]) -> None:
        """Create F's MLPs from the features of the first batch, then F's optimizer (with its LR scheduler)."""
        if self.isTrain and not self.f_ready:
            self.set_input(data)
            self._build_F()

    def _build_F(self) -> None:
        with torch.no_grad():
            self.netF(encoder_features(self.netG, self.real_A, self.nce_layers), self.opt.num_patches)
        if any(p.requires_grad for p in self.netF.parameters()):  # `sample` and `reshape` have no parameters
            self.optimizer_F = self.adam(self.netF)
            self.add_optimizer(self.optimizer_F)
        self.f_ready = True

    # -- one iteration --------------------------------------------------------------------------------

    def set_input(self, input: dict[str, Any]) -> None:
        self.set_paired_input(input)

    def forward(self) -> None:
        both = self.nce_idt and self.isTrain
        real = torch.cat((self.real_A, self.real_B), dim=0) if both else self.real_A
        self.flipped_for_equivariance = self.isTrain and self.opt.flip_equivariance and bool(torch.rand(()) < 0.5)
        if self.flipped_for_equivariance:
            real = torch.flip(real, [3])
        fake = self.netG(real)
        self.fake_B = fake[: self.real_A.size(0)]
        if both:
            self.idt_B = fake[self.real_A.size(0):]

    def compute_D_loss(self) -> torch.Tensor:
        fake = self.fake_B.detach()
        self.loss_D_fake = self.criterionGAN(self.netD(self.augment_for_D(fake)), False)
        self.loss_D_real = self.criterionGAN(self.netD(self.augment_for_D(self.real_B)), True)
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
        if self.criterionGAN.uses_gradient_penalty:
            self.loss_D = self.loss_D + gradient_penalty(self.netD, self.real_B, fake, scaler=self.grad_scaler)
        return self.loss_D

    def compute_G_loss(self) -> torch.Tensor:
        opt = self.opt
        if opt.lambda_GAN > 0:
            self.loss_G_GAN = self.criterionGAN(self.netD(self.augment_for_D(self.fake_B)), True) * opt.lambda_GAN
        else:
            self.loss_G_GAN = torch.zeros((), device=self.device)
        if opt.lambda_NCE > 0:
            self.loss_NCE = self.calculate_NCE_loss(self.real_A, self.fake_B)
        else:
            self.loss_NCE = torch.zeros((), device=self.device)
        nce = self.loss_NCE
        if self.nce_idt and opt.lambda_NCE > 0:
            self.loss_NCE_Y = self.calculate_NCE_loss(self.real_B, self.idt_B)
            nce = (self.loss_NCE + self.loss_NCE_Y) * 0.5
        elif self.nce_idt:  # --lambda_NCE 0: reported as 0 (the reference fails here, on the unset loss)
            self.loss_NCE_Y = torch.zeros((), device=self.device)
        self.loss_G = self.loss_G_GAN + nce
        return self.loss_G

    def calculate_NCE_loss(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """lambda_NCE times the PatchNCE loss of tgt's patches (queries) against src's (keys), averaged over layers."""
        feat_q = self.encoder(tgt)
        if self.flipped_for_equivariance:
            feat_q = [torch.flip(f, [3]) for f in feat_q]
        feat_k = self.encoder(src)
        samples_k, patch_ids = self.netF(feat_k, self.opt.num_patches)
        samples_q, _ = self.netF(feat_q, self.opt.num_patches, patch_ids)
        total = torch.zeros((), device=src.device)
        for q, k in zip(samples_q, samples_k):
            total = total + self.criterionNCE(q, k, src.size(0)).mean() * self.opt.lambda_NCE
        return total / len(self.nce_layers)

    def optimize_parameters(self) -> None:
        if not self.f_ready:  # train.py calls data_dependent_initialize first; other callers may not
            self._build_F()
        with self.autocast():
            self.forward()
        # D first, on the detached output.
        self.set_requires_grad(self.netD, True)
        self.optimizer_D.zero_grad(set_to_none=True)
        with self.autocast():
            loss_D = self.compute_D_loss()
        self.backward(loss_D)
        self.step(self.optimizer_D)
        # Then G and F together; D's weights need no gradient for that.
        self.set_requires_grad(self.netD, False)
        self.optimizer_G.zero_grad(set_to_none=True)
        if self.optimizer_F is not None:
            self.optimizer_F.zero_grad(set_to_none=True)
        with self.autocast():
            loss_G = self.compute_G_loss()
        self.backward(loss_G)
        self.step(self.optimizer_G)
        if self.optimizer_F is not None:
            self.step(self.optimizer_F)
