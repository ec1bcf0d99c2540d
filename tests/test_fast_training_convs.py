"""train.py --fast_convs (networks/fast_convs.py): which layers are swapped and when, the same step as the direct
convolutions, gradients from the direct backward pass, and kernels that follow weights updated by fused Adam (which
leaves their version counter alone, so no cache may be trusted)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models import create_model
from networks.fast_convs import KernelRowsConv2d
from networks.winograd import WinogradConv2d
from options.train_options import TrainOptions
from tests.helpers import tiny_args, unaligned_dataset
from util.errors import I2IError
from util.runtime import unwrap


def build(tmp_path, *flags: str):
    root = unaligned_dataset(tmp_path / "data", size=32)
    # ngf 64: the residual blocks have 256 channels, the width from which Winograd is used
    args = tiny_args(root, tmp_path, size=32) + ["--name", "run", "--model", "cycle_gan", "--seed", "0", "--ngf", "64",
                                                  "--netG", "resnet_6blocks", *flags]
    opt = TrainOptions().parse(args)
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup(opt)
    return model


def swapped_layers(model) -> tuple[list[WinogradConv2d], list[KernelRowsConv2d]]:
    modules = [m for net in model.networks() for m in unwrap(net).modules()]
    return ([m for m in modules if isinstance(m, WinogradConv2d)],
            [m for m in modules if isinstance(m, KernelRowsConv2d)])


def test_fast_convs_swaps_the_generators_wide_and_narrow_convolutions(tmp_path):
    assert swapped_layers(build(tmp_path / "plain")) == ([], [])  # not by default
    winograd, rows = swapped_layers(build(tmp_path, "--fast_convs"))
    assert len(winograd) == 2 * 6 * 2  # G_A and G_B, 6 blocks, 2 convolutions each; none in the discriminators
    assert all(not layer.cache_kernels and layer.transformed is None for layer in winograd)
    assert len(rows) == 2  # each generator's last 7x7 convolution to RGB


def test_fast_convs_in_training_does_not_warn_about_the_discriminators(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the discriminators have nothing to swap; that is no news to the user
        winograd, _ = swapped_layers(build(tmp_path, "--fast_convs"))
    assert winograd


def test_fast_convs_with_amp_is_refused(tmp_path):
    with pytest.raises(I2IError, match="--fast_convs computes in float32"):
        build(tmp_path, "--fast_convs", "--amp")


def test_a_training_step_equals_the_direct_one(tmp_path, float64):
    """In float64 the algorithms' rounding is far below what a wrong transform or gradient would show (float32
    rounding, amplified through the generators' norms, reaches 1e-3 of some first-layer gradients)."""
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1,
             "A_paths": ["a.png"], "B_paths": ["b.png"]}
    models = [build(tmp_path / "fast", "--fast_convs"), build(tmp_path / "direct")]
    assert len(swapped_layers(models[0])[0]) > 0
    losses = []
    for model in models:
        model.set_input(batch)
        model.optimize_parameters()
        losses.append({k: float(v) for k, v in model.get_current_losses().items()})
    for key, value in losses[1].items():
        assert losses[0][key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    # the gradients of the step, not the updated weights: Adam divides by the gradients' own size, so a bias whose
    # gradient is rounding noise (one before an instance norm) would move by +-lr either way
    for fast, direct in zip(models[0].networks(), models[1].networks(), strict=True):
        for (name, p), q in zip(unwrap(fast).named_parameters(), unwrap(direct).parameters(), strict=True):
            assert p.grad is not None and q.grad is not None, name
            scale = q.grad.abs().max().item()
            torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=1e-9 * scale + 1e-12,
                                       msg=lambda m, name=name: f"gradient of {name}: {m}")


def test_the_backward_pass_is_the_direct_convolutions():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3, padding=1)
    fast = WinogradConv2d(nn.Conv2d(8, 8, 3, padding=1), cache_kernels=False)
    fast.load_state_dict(conv.state_dict())
    x = torch.randn(2, 8, 10, 10, requires_grad=True)
    x_direct = x.detach().clone().requires_grad_(True)
    grad = torch.randn(2, 8, 10, 10)
    fast(x).backward(grad)
    conv(x_direct).backward(grad)
    torch.testing.assert_close(x.grad, x_direct.grad, rtol=0, atol=1e-5)
    torch.testing.assert_close(fast.weight.grad, conv.weight.grad, rtol=0, atol=1e-4)
    torch.testing.assert_close(fast.bias.grad, conv.bias.grad, rtol=0, atol=1e-4)


def test_the_kernels_follow_weights_that_fused_adam_updates():
    torch.manual_seed(0)
    layer = WinogradConv2d(nn.Conv2d(8, 8, 3, padding=1), cache_kernels=False)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.1, fused=True)
    x = torch.randn(1, 8, 8, 8)
    for _ in range(2):
        layer(x).square().sum().backward()
        optimizer.step()  # fused: the weights' version counter stays as it was (PyTorch 2.x)
        optimizer.zero_grad()
        with torch.no_grad():  # a display or evaluation call between steps
            torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight, layer.bias, padding=1), rtol=0, atol=1e-5)
