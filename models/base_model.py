"""The model contract (the reference's BaseModel, so its users' models keep working).

What a model defines: models/template_model.py and docs/plugins.md.
"""

from __future__ import annotations

import argparse
import contextlib
import warnings
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from networks import build_discriminator, build_generator, identity_start_arguments
from networks.activation_checkpointing import CheckpointableBlock, set_activation_checkpointing
from networks.fast_convs import apply_fast_convs
from util import collectives, precision, runtime
from util.cli import write_line
from util.errors import I2IError

from .checkpointing import CheckpointMixin
from .diffaugment import diff_augment, parse_policy
from .weight_average import WeightAverage
from .schedulers import build_scheduler, current_lr, step_scheduler


class BaseModel(CheckpointMixin, ABC):
    demo_options: ClassVar[dict[str, Any]] = {}
    #: the option defaults `--preset recommended` sets (README, Quality); or a function of the options parsed so far
    recommended_options: ClassVar[dict[str, Any] | Any] = {}
    architecture_options: ClassVar[tuple[str, ...]] = ()  #: own options shaping G, read back by test.py
    #: extra command-line arguments the contract test (tests/test_model_contract.py) needs; see docs/plugins.md
    contract_options: ClassVar[list[str]] = []

    def __init__(self, opt: argparse.Namespace) -> None:
        self.opt = opt
        self.gpu_ids: list[int] = list(opt.gpu_ids)
        self.isTrain: bool = opt.isTrain
        self.device = torch.device(f"cuda:{self.gpu_ids[0]}") if self.gpu_ids else torch.device("cpu")
        self.save_dir = str(Path(opt.checkpoints_dir) / opt.name)
        self.loss_names: list[str] = []
        self.model_names: list[str] = []
        self.visual_names: list[str] = []
        self.optimizers: list[torch.optim.Optimizer] = []
        self.image_paths: list[str] = []
        self.metric = 0.0  # what the plateau LR policy watches; train.py sets it each epoch
        # cuDNN autotuning pays off for one input size; it would search again for every new size (--preprocess
        # none or scale_width, e.g. test.py on whole images), and --seed asks for reproducible kernels
        fixed_size = "crop" in getattr(opt, "preprocess", "crop")
        runtime.configure_backends(self.device, tf32=not opt.no_tf32, autotune=opt.seed is None and fixed_size)
        self.amp_dtype = precision.amp_dtype(opt.amp, opt.amp_dtype, self.device)
        self.grad_scaler = precision.grad_scaler(self.device, self.amp_dtype) if self.isTrain else None
        self._scaler_update_due = False
        self._autocast_used = False
        self.weight_average: WeightAverage | None = None  # --ema_decay: made in prepare_training
        self.d_augment = parse_policy(opt.diff_augment) if self.isTrain else []

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        """Add model-specific options or change defaults of existing ones."""
        return parser

    @classmethod
    def generator_architecture(cls, saved: dict[str, Any]) -> dict[str, Any]:
        """The architecture options under which a plain generator (`--model test`, translate.py) rebuilds this
        model's generator from the options it was trained with (`saved`); a model that builds its generator
        its own way maps them here."""
        return {}

    @classmethod
    def preset_defaults(cls, opt: argparse.Namespace) -> dict[str, Any]:
        """Option defaults that depend on other parsed options (CUT's --CUT_mode presets); typed values win."""
        return {}

    def data_dependent_initialize(self, data: dict[str, Any]) -> None:
        """Called once by train.py with the first batch, before the first `optimize_parameters`: build what
        needs the data's shapes (CUT's F head) and register its optimizer with `add_optimizer`."""

    @abstractmethod
    def set_input(self, input: dict[str, Any]) -> None:
        """Unpack one batch from the data loader (and move it to the device)."""

    @abstractmethod
    def forward(self) -> None:
        """Run the forward pass; called by `optimize_parameters` and `test`."""

    @abstractmethod
    def optimize_parameters(self) -> None:
        """One training iteration: losses, gradients, optimizer steps."""

    # -- building -------------------------------------------------------------------------------------

    def place(self, net: nn.Module) -> nn.Module:
        """Move a network to this model's device with --sync_bn/--channels_last/--fast_convs (training:
        --checkpoint_activations), then wrap it in DataParallel over several --gpu_ids (as the reference) or
        --compile."""
        opt = self.opt
        if self.isTrain and opt.checkpoint_activations:
            set_activation_checkpointing(net)  # a plain attribute per block: the state_dict keys stay the same
        apply_fast_convs(net, opt, self.device, training=self.isTrain)
        return runtime.prepare_network(net.to(self.device), self.device, sync_bn=self.isTrain and opt.sync_bn,
                                       channels_last=opt.channels_last, compile=opt.compile, training=self.isTrain,
                                       device_ids=self.gpu_ids)

    def generator(self, input_nc: int, output_nc: int) -> nn.Module:
        """The --netG generator with the run's --ngf/--norm/--no_dropout/--init_type, on this model's device."""
        opt = self.opt
        net = build_generator(opt.netG, input_nc, output_nc, opt.ngf, norm=opt.norm, use_dropout=not opt.no_dropout,
                              init_type=opt.init_type, init_gain=opt.init_gain, **identity_start_arguments(vars(opt)))
        if self.isTrain and opt.checkpoint_activations and not any(isinstance(m, CheckpointableBlock)
                                                                   for m in net.modules()):
            warnings.warn(f"--checkpoint_activations: --netG {opt.netG} has no blocks that recompute their activations "
                          "(the ResNets and U-Nets have), so it stores them as without the flag.", stacklevel=2)
        return self.place(net)

    def discriminator(self, input_nc: int) -> nn.Module:
        """The --netD discriminator (the run's --ndf/--n_layers_D/--norm/--init_type/--spectral_norm), on the device."""
        opt = self.opt
        return self.place(build_discriminator(opt.netD, input_nc, opt.ndf, n_layers_D=opt.n_layers_D, norm=opt.norm,
                                              init_type=opt.init_type, init_gain=opt.init_gain,
                                              spectral_norm=opt.spectral_norm))

    def set_paired_input(self, input: dict[str, Any]) -> None:
        """real_A/real_B (swapped by --direction BtoA) on the device, and the paths of the source side."""
        a, b = ("A", "B") if self.opt.direction == "AtoB" else ("B", "A")
        layout = torch.channels_last if self.opt.channels_last else torch.preserve_format
        self.real_A = input[a].to(self.device, non_blocking=True, memory_format=layout)
        self.real_B = input[b].to(self.device, non_blocking=True, memory_format=layout)
        self.image_paths = input[f"{a}_paths"]

    def adam(self, *nets: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
        """Adam over the parameters of `nets`, with `lr` (default --lr) and betas (--beta1, 0.999) as the reference
        (its fused kernel where available: same update, one pass over memory; see --optimizer_impl)."""
        params = [p for net in nets for p in net.parameters()]
        return torch.optim.Adam(params, lr=lr or self.opt.lr, betas=(self.opt.beta1, 0.999),
                                **runtime.optimizer_kwargs(self.opt.optimizer_impl, self.device))

    def add_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Add an optimizer made after `setup` (e.g. in `data_dependent_initialize`), with its LR scheduler."""
        self.optimizers.append(optimizer)
        if hasattr(self, "schedulers"):
            self.schedulers.append(build_scheduler(optimizer, self.opt))

    def setup(self, opt: argparse.Namespace | None = None) -> None:
        """Check the name lists, make schedulers, load weights for testing or --continue_train."""
        opt = opt or self.opt
        self.check_names()
        if self.isTrain:
            self.schedulers = [build_scheduler(optimizer, opt) for optimizer in self.optimizers]
        if not self.isTrain or opt.continue_train:
            self.load_networks(f"iter_{opt.load_iter}" if opt.load_iter > 0 else opt.epoch)
        if self.isTrain:
            self.prepare_training()
        self.print_networks(opt.verbose)

    def prepare_training(self) -> None:
        """Under torchrun: every rank starts from rank 0's weights (optimizer steps then average gradients,
        see util/collectives.py). With --amp: a warning if the model never enters `autocast()`."""
        collectives.broadcast_modules(self.networks())
        self.start_weight_average()
        if self.amp_dtype is not None:
            for optimizer in self.optimizers:
                optimizer.register_step_pre_hook(self._check_autocast_used)

    def _check_autocast_used(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not self._autocast_used and not getattr(self, "_warned_no_autocast", False):
            self._warned_no_autocast = True
            warnings.warn(f"--amp: model {type(self).__name__} runs its networks outside BaseModel.autocast(), so "
                          "it trains in float32; wrap its forward pass and losses in `with self.autocast():`.",
                          stacklevel=2)

    def check_names(self) -> None:
        """Fail at setup, not mid-epoch, when a network listed in model_names has no attribute behind it.
        (Losses and visuals exist only after the first step; they are checked where they are read.)"""
        missing = [f"net{name}" for name in self.model_names if not hasattr(self, f"net{name}")]
        if missing:
            raise I2IError(f"model {type(self).__name__} lists networks with no attribute: {', '.join(missing)}. "
                           "Each model_names entry X needs self.netX.")

    # -- running --------------------------------------------------------------------------------------

    def eval(self) -> None:
        for net in self.networks():
            net.eval()

    def train(self) -> None:
        for net in self.networks():
            net.train()

    def test(self) -> None:
        """Forward pass for inference: no autograd bookkeeping (under --amp autocast), then `compute_visuals`."""
        with torch.inference_mode():
            with self.autocast():
                self.forward()
            self.compute_visuals()

    # -- training steps: mixed precision and multi-process -------------------------------------------
    # A model's optimize_parameters uses these three so --amp and torchrun work without model-specific code:
    #     with self.autocast(): losses...;  self.backward(loss);  self.step(optimizer)
    # Models calling loss.backward() / optimizer.step() directly (the reference's API) still train correctly
    # under torchrun (gradients are averaged inside every optimizer step) but stay in float32 under --amp.

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for forward passes and losses: bf16/fp16 autocast under --amp, else nothing."""
        self._autocast_used = True
        return precision.autocast(self.device, self.amp_dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """`loss.backward()`, scaled by the fp16 gradient scaler where there is one."""
        if self.grad_scaler is None:
            loss.backward()
            return
        if self._scaler_update_due:  # after the previous step(s), before new gradients are scaled
            self.grad_scaler.update()
            self._scaler_update_due = False
        self.grad_scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """`optimizer.step()`; with the fp16 scaler: unscale, skip the step on inf/NaN gradients, adapt the scale.
        Under torchrun the gradients are averaged over all ranks first, so every rank takes the same decision."""
        if self.grad_scaler is None:
            optimizer.step()
            return
        collectives.sync_optimizer(optimizer)
        try:
            self.grad_scaler.step(optimizer)
        finally:
            collectives.forget_sync(optimizer)  # the step may have been skipped, leaving the mark unused
        self._scaler_update_due = True

    def augment_for_D(self, images: torch.Tensor) -> torch.Tensor:
        """What a discriminator sees of `images`: with --diff_augment, randomly and differentiably transformed."""
        return diff_augment(images, self.d_augment) if self.d_augment else images

    def compute_visuals(self) -> None:
        """Compute extra images for display (optional)."""

    def get_image_paths(self) -> list[str]:
        return self.image_paths

    def update_learning_rate(self, metric: float | None = None) -> None:
        """Step every scheduler once, at the end of an epoch (i2i's order; see docs/differences.md)."""
        old_lr = current_lr(self.optimizers[0])
        if metric is not None:
            self.metric = metric
        for scheduler in self.schedulers:
            step_scheduler(scheduler, self.metric)
        write_line(f"learning rate {old_lr:.7f} -> {current_lr(self.optimizers[0]):.7f}")  # above a bar; rank 0

    def get_current_visuals(self) -> OrderedDict[str, torch.Tensor]:
        return OrderedDict((name, self._named_attribute(name, "visual_names")) for name in self.visual_names)

    def get_current_losses(self) -> OrderedDict[str, float]:
        """Current losses as Python floats (one device sync; call at print time, not every iteration)."""
        return OrderedDict((name, float(value)) for name, value in self.current_loss_tensors().items())

    def current_loss_tensors(self) -> OrderedDict[str, torch.Tensor]:
        """Current losses as detached tensors on this model's device (no sync). A plain number (the reference's
        CycleGAN sets `self.loss_idt_A = 0`) becomes a tensor there too, so losses stack with each other."""
        losses = OrderedDict()
        for name in self.loss_names:
            value = self._named_attribute(f"loss_{name}", "loss_names")
            if torch.is_tensor(value):
                losses[name] = value.detach().to(self.device, non_blocking=True)
            else:
                losses[name] = torch.tensor(float(value), device=self.device)
        return losses

    def _named_attribute(self, attribute: str, listed_in: str):
        try:
            return getattr(self, attribute)
        except AttributeError:
            raise I2IError(f"model {type(self).__name__}: {listed_in} names '{attribute}', but the model has no "
                           f"attribute self.{attribute} (set it in forward/optimize_parameters).") from None

    # -- reporting ----------------------------------------------------------------------------------

    def print_networks(self, verbose: bool) -> None:
        print("---------- Networks initialized -------------")
        for name in self.model_names:
            net = getattr(self, f"net{name}")
            if verbose:
                print(net)
            count = sum(p.numel() for p in net.parameters())
            print(f"[Network {name}] Total number of parameters : {count / 1e6:.3f} M")
        print("-----------------------------------------------")

    @staticmethod
    def set_requires_grad(nets: nn.Module | list[nn.Module], requires_grad: bool = False) -> None:
        for net in nets if isinstance(nets, list) else [nets]:
            if net is not None:
                for param in net.parameters():
                    param.requires_grad = requires_grad

