"""A starting point for your own model: copy this file, rename the class and the registered name, edit.

It works as shipped (the test suite trains and tests it through the CLI) and does the simplest useful
thing: one generator learns to map A to B with an L1 loss, on any paired data, e.g. the `template`
dataset mode (A = a blurred copy of a photo, B = the photo) or `aligned` pix2pix folders:

    python train.py --model template --dataroot ./my_photos --name my_template
    python test.py  --model template --dataroot ./my_photos --name my_template

What i2i asks of a model (checked at setup and when losses/visuals are read; see docs/plugins.md):

- subclass `BaseModel` and register with `@MODELS.register("name")` (or name the file `<name>_model.py`
  and the class `<Name>Model`, the reference's convention);
- in `__init__`: call `super().__init__(opt)`, then fill four lists:
    `loss_names`   -> attribute `loss_<name>` (a scalar tensor) for each, set in `optimize_parameters`;
    `visual_names` -> attribute `<name>` (an image batch in [-1, 1]) for each, set in `forward`;
    `model_names`  -> attribute `net<name>` for each: saved as `<epoch>_net_<name>.pth`, loaded at test time;
    `optimizers`   -> one LR scheduler (`--lr_policy`) is made for each, stepped at the end of every epoch;
- `set_input(batch)`, `forward()`, `optimize_parameters()`;
- optionally the classmethod `modify_commandline_options(parser, is_train)` to add options or change defaults.
"""

from __future__ import annotations

import argparse

from torch import nn

from util.option_types import number

from . import MODELS
from .base_model import BaseModel


@MODELS.register("template")
class TemplateModel(BaseModel):
    """Template: one generator regressing A -> B with L1 (a documented starting point for new models)."""

    # Extra options for tests/test_model_contract.py (tiny and fast on the CPU).
    contract_options = ["--netG", "resnet_6blocks"]

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        """Change defaults of existing options, and add this model's own (here: only when training)."""
        parser.set_defaults(dataset_mode="template", no_dropout=True)
        if is_train:
            parser.add_argument("--lambda_regression", type=number(float, at_least=0), default=1.0, help="weight of the L1 loss")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)  # sets self.opt, self.device, self.isTrain, self.save_dir and the empty lists
        self.loss_names = ["G"]  # logged as "G"; the value lives in self.loss_G
        self.visual_names = ["real_A", "fake_B", "real_B"]
        self.model_names = ["G"]  # saved as <epoch>_net_G.pth; the network lives in self.netG
        # The --netG generator with --ngf, --norm, --no_dropout, --init_type and --init_gain, on --gpu_ids
        # (self.discriminator(input_nc) does the same for --netD; networks.build_generator for other choices).
        self.netG = self.generator(opt.input_nc, opt.output_nc)
        if self.isTrain:  # training-only parts: losses and optimizers
            self.criterion = nn.L1Loss()
            self.optimizer = self.adam(self.netG)  # Adam with --lr and --beta1
            self.optimizers = [self.optimizer]

    def set_input(self, input: dict) -> None:
        """Take one batch from the data loader: self.real_A, self.real_B on the device (swapped by --direction
        BtoA) and self.image_paths, which test.py names the saved images after."""
        self.set_paired_input(input)

    def forward(self) -> None:
        """Compute every visual that is not an input (also what test.py runs, without gradients)."""
        self.fake_B = self.netG(self.real_A)

    def optimize_parameters(self) -> None:
        """One training iteration: forward, loss, backward, step. `self.autocast()`, `self.backward(loss)` and
        `self.step(optimizer)` are what make --amp work (plain `loss.backward()`/`optimizer.step()` also train,
        in float32, and under torchrun too)."""
        with self.autocast():
            self.forward()
            self.loss_G = self.criterion(self.fake_B, self.real_B) * self.opt.lambda_regression
        self.optimizer.zero_grad(set_to_none=True)
        self.backward(self.loss_G)
        self.step(self.optimizer)
