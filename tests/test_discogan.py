"""DiscoGAN: the paper's defaults, the L2 reconstruction loss, one training step."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from data import create_dataset
from models import create_model
from options.train_options import TrainOptions
from tests.helpers import tiny_args, unaligned_dataset


def discogan(tmp_path, *extra: str):
    root = unaligned_dataset(tmp_path / "data", size=32)
    opt = TrainOptions().parse(tiny_args(root, tmp_path, 32) + ["--model", "discogan", "--seed", "0",
                                                                 "--batch_size", "2", *extra])
    model = create_model(opt)
    model.setup(opt)
    return model, opt, next(iter(create_dataset(opt)))


def test_defaults_follow_the_paper(tmp_path):
    model, opt, _ = discogan(tmp_path)
    assert (opt.netG, opt.netD, opt.norm, opt.gan_mode, opt.pool_size, opt.lambda_rec) == (
        "unet_upsample", "global", "batch", "vanilla", 0, 1.0)
    assert model.model_names == ["G_AB", "G_BA", "D_A", "D_B"]


def test_one_step_uses_squared_reconstruction_error(tmp_path):
    model, _, batch = discogan(tmp_path, "--lambda_rec", "2")
    model.set_input(batch)
    before = {k: v.clone() for k, v in model.netG_AB.state_dict().items()}
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert list(losses) == model.loss_names and all(math.isfinite(v) for v in losses.values())
    expected = 2 * F.mse_loss(model.rec_A, model.real_A)
    assert torch.allclose(model.loss_rec_A, expected)
    assert model.netD_A(model.real_A).shape == (2, 1, 1, 1)  # one score per image
    assert any(not torch.equal(before[k], v) for k, v in model.netG_AB.state_dict().items()
               if v.is_floating_point())
