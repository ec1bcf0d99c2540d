"""The parts of `--preset recommended`, each on its own: residual output, the generators' weight average, the
discriminators' differentiable augmentation, a separate discriminator learning rate, and the preset itself."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import create_model
from models.diffaugment import cutout, diff_augment, parse_policy, translation
from models.weight_average import WeightAverage
from networks import GENERATORS, build_generator
from networks.residual import binomial_blur, edge_aware_blur
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tests.helpers import aligned_dataset, load_script, tiny_args, unaligned_dataset
from util.errors import I2IError


@pytest.mark.parametrize("name", [n for n in GENERATORS.names() if n not in ("unet_256", "unet_128")])
def test_a_residual_generator_starts_as_the_identity_with_the_plain_keys(name):
    torch.manual_seed(0)
    plain = build_generator(name, 3, 3, 8, norm="instance")
    residual = build_generator(name, 3, 3, 8, norm="instance", residual=True)
    assert list(residual.state_dict()) == list(plain.state_dict())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(residual(x), x, atol=2e-4)
    assert not torch.allclose(plain(x), x, atol=0.1)


def test_a_residual_generator_learns_and_stays_in_range():
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance", residual=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    target = (x * 0.5 + 0.3).clamp(-1, 1)  # a tone change
    first = None
    for _ in range(30):
        loss = (net(x) - target).abs().mean()
        first = first if first is not None else float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.8 * first
    extremes = torch.tensor([-1.0, 1.0]).repeat_interleave(16).view(1, 1, 1, 32).expand(1, 3, 32, 32).contiguous()
    out = net(extremes)  # inputs at exactly -1 and 1: finite, in range
    assert torch.isfinite(out).all() and out.abs().max() <= 1


def test_the_change_is_added_before_the_last_tanh():
    """out = tanh(atanh(x) + z): a constant z from the last convolution's bias shifts every pixel by z in atanh
    space, so a near-white input reaches near-black with a moderate z (not a saturated tanh)."""
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance", residual=True)
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert not any(isinstance(m, torch.nn.Tanh) for m in net.modules())  # the generator's own tanh is taken out
    with torch.no_grad():
        last.bias.fill_(-3.5)
    x = torch.full((1, 3, 16, 16), 0.96)
    expected = torch.tanh(torch.atanh(torch.tensor(0.96)) - 3.5)
    assert torch.allclose(net(x), expected.expand(1, 3, 16, 16), atol=1e-5)
    assert expected < -0.89


def test_residual_output_needs_a_generator_that_ends_in_a_tanh():
    from networks.residual import make_residual

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 3, padding=1))
    with pytest.raises(I2IError, match="ends in a tanh"):
        make_residual(net)


def test_residual_output_needs_equal_channels():
    with pytest.raises(I2IError, match="--residual_output .* --input_nc 1 and --output_nc 3"):
        build_generator("resnet_6blocks", 1, 3, 8, norm="instance", residual=True)


def test_the_weight_average_follows_then_smooths():
    net = torch.nn.Linear(2, 2)
    start = net.weight.detach().clone()
    average = WeightAverage({"G": net}, decay=0.9)
    with torch.no_grad():
        net.weight.fill_(1.0)
    average.update({"G": net})  # the first update decays by min(0.9, 1/10) = 0.1: it follows the weights closely
    assert torch.allclose(average.averages["G"]["weight"], 0.1 * start + 0.9)
    for _ in range(200):
        average.update({"G": net})  # later ones by 0.9
    assert torch.allclose(average.averages["G"]["weight"], torch.ones(2, 2), atol=1e-6)
    assert average.updates == 201
    state = average.state_dict()
    restored = WeightAverage({"G": torch.nn.Linear(2, 2)}, decay=0.9)
    restored.load_state_dict(state)
    assert restored.updates == 201 and torch.equal(restored.averages["G"]["weight"], average.averages["G"]["weight"])


def _train_opt(tmp_path, *extra):
    root = unaligned_dataset(tmp_path / "data", count=2, size=32)
    return TrainOptions().parse(tiny_args(root, tmp_path) + ["--name", "r", "--netG", "resnet_6blocks", "--seed", "0",
                                                             "--pool_size", "0", *extra])


def _step(model, tmp_path):
    from data import create_dataset

    model.setup(model.opt)
    batch = next(iter(create_dataset(model.opt)))
    model.set_input(batch)
    model.optimize_parameters()


def test_ema_saves_the_averaged_generators_and_resumes_them(tmp_path):
    model = create_model(_train_opt(tmp_path, "--ema_decay", "0.5"))
    _step(model, tmp_path)
    _step(model, tmp_path)
    assert model.weight_average.updates == 2
    model.save_networks("latest")
    saved = torch.load(tmp_path / "checkpoints" / "r" / "latest_net_G_A.pth", weights_only=True)
    raw = model.netG_A.state_dict()
    averaged = model.weight_average.averages["G_A"]
    assert all(torch.equal(saved[k], averaged[k]) for k in saved)
    assert any(not torch.equal(saved[k], raw[k]) for k in saved if raw[k].is_floating_point())
    assert torch.equal(torch.load(tmp_path / "checkpoints" / "r" / "latest_net_D_A.pth", weights_only=True)
                       ["model.0.weight"], model.netD_A.state_dict()["model.0.weight"])  # D is not averaged
    state = model.training_state()
    other = create_model(_train_opt(tmp_path, "--ema_decay", "0.5", "--seed", "1"))
    other.setup(other.opt)
    other.load_training_state(state, "state")
    assert other.weight_average.updates == 2
    assert all(torch.equal(other.weight_average.averages["G_B"][k], v)
               for k, v in model.weight_average.averages["G_B"].items())


def test_the_cycle_weights_warm_up_by_epoch_and_follow_a_resumed_schedule(tmp_path):
    model = create_model(_train_opt(tmp_path, "--lambda_warmup", "4", "--lambda_identity", "0.5"))
    _step(model, tmp_path)
    assert model.cycle_weight() == 0.25  # epoch 1 of 4
    cycle = torch.nn.functional.l1_loss(model.rec_A, model.real_A) * 10 * 0.25
    assert torch.allclose(model.loss_cycle_A, cycle)
    idt = torch.nn.functional.l1_loss(model.idt_B, model.real_A) * 10 * 0.5 * 0.25
    assert torch.allclose(model.loss_idt_B, idt)
    for _ in range(2):
        model.update_learning_rate()
    assert model.cycle_weight() == 0.75  # epoch 3, as the schedulers count it (saved with the training state)
    for _ in range(3):
        model.update_learning_rate()
    assert model.cycle_weight() == 1.0
    assert create_model(_train_opt(tmp_path)).cycle_weight() == 1.0  # the reference: full weights from the start


def test_diff_augment_keeps_shapes_passes_gradients_and_moves_content():
    torch.manual_seed(0)
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    y = diff_augment(x, parse_policy("color,translation,cutout"))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    shifted = translation(torch.arange(16.0).view(1, 1, 1, 16).expand(8, 1, 16, 16))
    assert any(not torch.equal(shifted[i, 0, 8], torch.arange(16.0)) for i in range(8))
    holes = cutout(torch.ones(8, 3, 16, 16))
    assert ((holes == 0).flatten(1).sum(1) == 3 * 8 * 8).all()  # a square of half the side in every image
    with pytest.raises(I2IError, match="--diff_augment colour,translation: unknown augmentation 'colour'"):
        parse_policy("colour,translation")


def test_cycle_gan_passes_what_its_discriminators_see_through_diff_augment(tmp_path, monkeypatch):
    model = create_model(_train_opt(tmp_path, "--diff_augment", "translation"))
    seen = []
    monkeypatch.setattr("models.base_model.diff_augment", lambda x, policy: seen.append(policy) or x)
    _step(model, tmp_path)
    assert seen and all(policy == ["translation"] for policy in seen)
    assert len(seen) >= 4  # G's two adversarial terms and D_A's, D_B's inputs


def test_lr_D_sets_the_discriminators_learning_rate(tmp_path):
    model = create_model(_train_opt(tmp_path, "--lr_D", "0.0008"))
    assert model.optimizer_D.param_groups[0]["lr"] == 0.0008 and model.optimizer_G.param_groups[0]["lr"] == 0.0002
    plain = create_model(_train_opt(tmp_path))
    assert plain.optimizer_D.param_groups[0]["lr"] == 0.0002


def test_the_preset_applies_the_models_recipe_and_typed_options_win(tmp_path):
    from models.cycle_gan_model import CycleGANModel

    root = unaligned_dataset(tmp_path / "data", count=2, size=32)
    base = ["--dataroot", str(root), "--gpu_ids", "-1", "--model", "cycle_gan"]
    plain = TrainOptions().parse(base)
    assert not plain.residual_output and plain.ema_decay == 0 and plain.diff_augment == "" and plain.lr_D == 0
    options = TrainOptions()
    recipe = options.parse([*base, "--preset", "recommended", "--ema_decay", "0.9"])
    for key, value in CycleGANModel.recommended_options.items():
        assert getattr(recipe, key) == (0.9 if key == "ema_decay" else value), key
    assert any(note.startswith("--preset recommended: ") for note in options.notes)


def test_a_pix2pix_run_with_the_affine_output_tests_as_trained_and_has_no_preset(tmp_path):
    root = aligned_dataset(tmp_path / "data", count=2, size=32)
    base = [*tiny_args(root, tmp_path), "--model", "pix2pix", "--netG", "resnet_6blocks", "--norm", "instance",
            "--name", "p2p", "--n_epochs", "1", "--n_epochs_decay", "0"]
    options = TrainOptions()  # the affine output loses on label maps (docs/quality.md): not pix2pix's recipe
    assert not options.parse([*base, "--preset", "recommended"]).affine_output
    assert "--preset recommended: nothing for this model" in options.notes
    load_script("train").main([*base, "--affine_output", "--affine_smooth", "5", "--affine_edge_sigma", "0.1"])
    opt = TestOptions().parse([*tiny_args(root, tmp_path, train=False), "--model", "pix2pix", "--name", "p2p",
                               "--netG", "resnet_6blocks", "--norm", "instance"])
    model = create_model(opt)
    model.setup(opt)
    assert opt.affine_output and opt.affine_smooth == 5  # read back from the run's train_opt.json


def test_cuts_recipe_follows_its_mode_and_its_demo_uses_it(tmp_path):
    root = unaligned_dataset(tmp_path / "data", count=2, size=32)
    base = ["--dataroot", str(root), "--gpu_ids", "-1", "--model", "cut", "--preset", "recommended"]
    cut = TrainOptions().parse(base)
    assert cut.affine_output and cut.lambda_NCE == 0.1
    fast = TrainOptions().parse([*base, "--CUT_mode", "FastCUT"])
    assert not fast.affine_output and fast.lambda_NCE == 10.0  # no recipe for FastCUT: its own preset
    assert TrainOptions().parse([*base, "--lambda_NCE", "0.5"]).lambda_NCE == 0.5  # typed options win
    demo = TrainOptions().parse(["--gpu_ids", "-1", "--model", "cut", "--checkpoints_dir", str(tmp_path)])
    assert demo.preset == "recommended" and demo.lambda_NCE == 0.1 and demo.n_epochs == demo.n_epochs_decay == 20
    demo_fast = TrainOptions().parse(["--gpu_ids", "-1", "--model", "cut", "--CUT_mode", "FastCUT",
                                      "--checkpoints_dir", str(tmp_path)])
    assert demo_fast.preset == "none" and demo_fast.lambda_NCE == 10.0 and demo_fast.n_epochs == 10


def test_a_residual_run_is_rebuilt_by_test_py_and_translate(tmp_path):
    root = unaligned_dataset(tmp_path / "data", count=2, size=32)
    args = tiny_args(root, tmp_path) + ["--name", "res", "--netG", "resnet_6blocks", "--residual_output",
                                        "--n_epochs", "1", "--n_epochs_decay", "0", "--pool_size", "0"]
    load_script("train").main(args)
    opt = TestOptions().parse(tiny_args(root, tmp_path, train=False) + ["--name", "res", "--model", "test",
                                                                        "--model_suffix", "_A"])
    assert opt.residual_output and opt.netG == "resnet_6blocks"
    from inference import load_translator

    translator = load_translator(tmp_path / "checkpoints" / "res")
    assert any(hook.__name__ == "residual_output" for hook in translator.net.net._forward_hooks.values())


@pytest.mark.parametrize("name", [n for n in GENERATORS.names() if n not in ("unet_256", "unet_128")])
def test_an_affine_generator_starts_as_the_identity_and_keeps_the_plain_keys(name):
    torch.manual_seed(0)
    plain = build_generator(name, 3, 3, 8, norm="instance").state_dict()
    affine = build_generator(name, 3, 3, 8, norm="instance", affine=True)
    state = affine.state_dict()
    assert list(state) == list(plain)
    widened = [k for k in state if state[k].shape != plain[k].shape]
    assert widened and all(state[k].shape[0] == 12 for k in widened)  # the last convolution: 3x3 matrix + offset
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(affine(x), x, atol=2e-4)


def test_a_unet_takes_the_affine_output_in_its_last_transposed_convolution():
    torch.manual_seed(0)
    plain = build_generator("unet_128", 3, 3, 8, norm="batch").state_dict()
    affine = build_generator("unet_128", 3, 3, 8, norm="batch", affine=True, affine_smooth=5, affine_edge_sigma=0.1)
    state = affine.state_dict()
    assert list(state) == list(plain)  # pix2pix's default generator takes the affine output too
    widened = {k: state[k].shape for k in state if state[k].shape != plain[k].shape}
    assert widened == {"model.model.3.weight": (16, 12, 4, 4), "model.model.3.bias": (12,)}
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    assert torch.allclose(affine(x), x, atol=2e-4)


def test_the_affine_output_is_a_per_pixel_matrix_and_offset_in_tanh_space():
    """out = tanh((I + A) atanh(x) + b): with A swapping red and blue and b = 0.1 everywhere, every pixel's red is
    its blue (and the reverse), shifted, whatever the pixel's neighbours: the input's edges pass through."""
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance", affine=True)
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert not any(isinstance(m, torch.nn.Tanh) for m in net.modules())
    swap = torch.tensor([[0.0, 0, 1], [0, 1, 0], [1, 0, 0]]) - torch.eye(3)  # I + A swaps channels 0 and 2
    with torch.no_grad():
        last.bias.copy_(torch.cat([swap.flatten(), torch.full((3,), 0.1)]))
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16) * 1.8 - 0.9
    x[..., :, 8:] = -0.8  # a sharp edge
    t = torch.atanh(x)
    expected = torch.tanh(t[:, [2, 1, 0]] + 0.1)
    assert torch.allclose(net(x), expected, atol=1e-5)


def test_an_affine_generator_learns_a_colour_swap():
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance", affine=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.rand(1, 3, 32, 32) * 1.6 - 0.8
    target = x[:, [2, 0, 1]]  # channels permuted: no additive change of a smooth z does this at every pixel
    first = float((net(x) - target).abs().mean().detach())
    for _ in range(40):
        loss = (net(x) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.5 * first
    out = net(torch.tensor([-1.0, 1.0]).repeat_interleave(16).view(1, 1, 1, 32).expand(1, 3, 32, 32).contiguous())
    assert torch.isfinite(out).all() and out.abs().max() <= 1


def test_affine_output_refuses_residual_output_and_unequal_channels():
    with pytest.raises(I2IError, match="pass one of them"):
        build_generator("resnet_6blocks", 3, 3, 8, norm="instance", residual=True, affine=True)
    with pytest.raises(I2IError, match="--affine_output .* --input_nc 1 and --output_nc 3"):
        build_generator("resnet_6blocks", 1, 3, 8, norm="instance", affine=True)


def test_affine_smooth_low_passes_the_coefficients_and_keeps_the_inputs_edges():
    """A checkerboard in the coefficients (what a strided transposed convolution leaves) reaches the output
    without --affine_smooth and is filtered out with it; constant coefficients and the input's edges are kept."""
    x = torch.rand(1, 3, 16, 16) * 1.6 - 0.8
    x[..., :, 8:] = -0.8  # a sharp edge
    checker = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2.0 - 1  # +-1 on alternate pixels
    for smooth, moved in ((1, True), (3, False), (5, False)):
        net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance", affine=True, affine_smooth=smooth)
        last = [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]  # starts at zero
        offsets = 0.5 * torch.cat([torch.zeros(1, 9, 16, 16), checker.expand(1, 3, 16, 16)], 1)
        last.register_forward_hook(lambda module, inputs, output: output + offsets)  # the matrix stays zero
        interior = (net(x) - x)[..., 2:-2, 2:-2].abs().max().item()
        assert (interior > 0.1) if moved else (interior < 1e-5), (smooth, interior)
    swap = torch.tensor([[0.0, 0, 1], [0, 1, 0], [1, 0, 0]]) - torch.eye(3)
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance", affine=True, affine_smooth=5)
    with torch.no_grad():
        [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1].bias.copy_(torch.cat([swap.flatten(),
                                                                                         torch.full((3,), 0.1)]))
    assert torch.allclose(net(x), torch.tanh(torch.atanh(x)[:, [2, 1, 0]] + 0.1), atol=1e-5)


def test_the_edge_aware_filter_smooths_within_the_inputs_regions_and_not_across_its_edges():
    """--affine_edge_sigma: with a flat input the filter is the plain binomial one; across an edge of the input a
    step in the coefficients stays a step, and within each side a checkerboard is still filtered out."""
    coefficients = torch.randn(1, 12, 16, 16)
    flat = torch.zeros(1, 3, 16, 16)
    assert torch.allclose(edge_aware_blur(coefficients, flat, 5, 0.1), binomial_blur(coefficients, 5), atol=1e-6)
    guide = flat.clone()
    guide[..., 8:] = 0.6  # a shape's edge
    checker = ((torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2 * 2.0 - 1) * 0.5
    step = (guide[:, :1] > 0).float() + checker  # one transform per side of the edge, a checkerboard on top
    kept = edge_aware_blur(step, guide, 5, 0.1)
    assert torch.allclose(kept[..., 2:-2, :], (guide[:, :1] > 0).float()[..., 2:-2, :], atol=1e-3)
    plain = binomial_blur(step, 5)
    assert (plain[..., 7:9] - (guide[:, :1] > 0).float()[..., 7:9]).abs().max() > 0.2  # the plain filter blurs it


def test_affine_smooth_needs_an_odd_size_and_the_affine_output():
    with pytest.raises(I2IError, match="--affine_smooth 4: the filter needs an odd size"):
        build_generator("resnet_6blocks", 3, 3, 8, norm="instance", affine=True, affine_smooth=4)
    with pytest.raises(I2IError, match="add --affine_output or drop --affine_smooth"):
        build_generator("resnet_6blocks", 3, 3, 8, norm="instance", affine_smooth=3)
    with pytest.raises(I2IError, match="--affine_edge_sigma 0.1 shapes the filter of --affine_smooth"):
        build_generator("resnet_6blocks", 3, 3, 8, norm="instance", affine=True, affine_edge_sigma=0.1)


def test_an_affine_run_is_rebuilt_by_test_py_and_translate(tmp_path):
    root = unaligned_dataset(tmp_path / "data", count=2, size=32)
    args = tiny_args(root, tmp_path) + ["--name", "aff", "--netG", "resnet_6blocks", "--affine_output",
                                        "--affine_smooth", "3", "--affine_edge_sigma", "0.2", "--n_epochs", "1",
                                        "--n_epochs_decay", "0", "--pool_size", "0"]
    load_script("train").main(args)
    opt = TestOptions().parse(tiny_args(root, tmp_path, train=False) + ["--name", "aff", "--model", "test",
                                                                        "--model_suffix", "_A"])
    assert opt.affine_output and (opt.affine_smooth, opt.affine_edge_sigma) == (3, 0.2) and not opt.residual_output
    model = create_model(opt)
    model.setup(opt)  # loads latest_net_G_A.pth: its widened last convolution fits
    from inference import load_translator

    translator = load_translator(tmp_path / "checkpoints" / "aff")
    hooks = [hook for hook in translator.net.net._forward_hooks.values() if hook.__name__ == "affine_output"]
    assert [(hook.smooth, hook.edge_sigma) for hook in hooks] == [(3, 0.2)]


def _largest_singular_value(conv: torch.nn.Module) -> float:
    return torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2).item()


def test_spectral_norm_scales_every_discriminator_convolution_to_one_and_round_trips(tmp_path):
    model = create_model(_train_opt(tmp_path, "--spectral_norm"))
    _step(model, tmp_path)
    convs = [m for m in model.netD_A.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(abs(_largest_singular_value(c) - 1) < 0.05 for c in convs)
    plain = create_model(_train_opt(tmp_path))
    assert all(abs(_largest_singular_value(c) - 1) > 0.3 for c in plain.netD_A.modules()
               if isinstance(c, torch.nn.Conv2d))  # init_weights' N(0, 0.02) alone is far from 1
    model.save_networks("latest")
    saved = torch.load(tmp_path / "checkpoints" / "r" / "latest_net_D_A.pth", weights_only=True)
    assert "model.0.parametrizations.weight.original" in saved and "model.0.weight" not in saved
    other = create_model(_train_opt(tmp_path, "--spectral_norm", "--seed", "1"))
    other.netD_A.load_state_dict(saved)
    x = torch.rand(1, 3, 32, 32)
    for net in (model.netD_A, other.netD_A):
        net.eval()  # no power iteration: the saved estimate is used
    torch.testing.assert_close(other.netD_A(x), model.netD_A(x))
    cut = create_model(_train_opt(tmp_path, "--model", "cut", "--spectral_norm"))  # CUT builds its own D
    assert all(nn.utils.parametrize.is_parametrized(m, "weight") for m in cut.netD.modules()
               if isinstance(m, nn.Conv2d))


def test_r1_adds_the_squared_gradient_norm_on_real_images_to_each_d_loss(tmp_path):
    import copy

    from data import create_dataset
    from util.option_types import replaced

    model = create_model(_train_opt(tmp_path, "--lambda_R1", "10"))
    model.setup(model.opt)
    plain = copy.deepcopy(model)
    plain.opt = replaced(model.opt, lambda_R1=0.0)
    d_before = copy.deepcopy(model.netD_A)
    batch = next(iter(create_dataset(model.opt)))
    for each in (model, plain):
        each.set_input(batch)
        each.optimize_parameters()
    real = model.real_B.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(d_before(real).sum(), real)
    penalty = 10 / 2 * grad.pow(2).sum()
    assert penalty > 1e-4
    torch.testing.assert_close(model.loss_D_A - plain.loss_D_A, penalty, rtol=1e-3, atol=1e-6)
