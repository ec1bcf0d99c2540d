"""Every built-in model: one training step (finite losses, weights change), names resolve, save/load round-trip."""

from __future__ import annotations

import copy

import pytest
import torch

from data import create_dataset
from models import MODELS, create_model
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tests.helpers import aligned_dataset, tiny_args, unaligned_dataset

TRAINABLE = [name for name in MODELS.names() if name != "test"]


def make_model(name: str, tmp_path, extra: list[str] = ()):
    size = 32
    root = unaligned_dataset(tmp_path / "data", size=size)
    aligned_dataset(root, size=size)  # one root that every built-in dataset mode reads
    args = tiny_args(root, tmp_path, size) + ["--model", name, "--seed", "0", *extra]
    args += list(getattr(MODELS.get(name), "contract_options", []))
    if name == "pix2pix":
        args += ["--netG", "unet_128", "--load_size", "128", "--crop_size", "128", "--preprocess", "resize_and_crop"]
    opt = TrainOptions().parse(args)
    model = create_model(opt)
    batch = next(iter(create_dataset(opt)))
    model.data_dependent_initialize(batch)  # as train.py does
    model.setup(opt)
    return model, opt, batch


@pytest.mark.parametrize("name", TRAINABLE)
def test_one_training_step(name, tmp_path):
    model, opt, batch = make_model(name, tmp_path)
    before = {n: copy.deepcopy(net.state_dict()) for n, net in zip(model.model_names, model.networks())}
    model.set_input(batch)
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert list(losses) == model.loss_names
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    for n, net in zip(model.model_names, model.networks()):
        changed = any(not torch.equal(before[n][k], v) for k, v in net.state_dict().items() if v.is_floating_point())
        assert changed, f"net{n} did not change after one step"
    visuals = model.get_current_visuals()
    assert list(visuals) == model.visual_names
    assert all(v.shape[0] == batch["A"].shape[0] for v in visuals.values())


@pytest.mark.parametrize("name", TRAINABLE)
def test_save_load_round_trip(name, tmp_path):
    model, opt, batch = make_model(name, tmp_path)
    model.set_input(batch)
    model.optimize_parameters()
    model.save_networks("latest")
    for n in model.model_names:
        assert (tmp_path / "checkpoints" / opt.name / f"latest_net_{n}.pth").is_file()
    saved = torch.load(tmp_path / "checkpoints" / opt.name / f"latest_net_{model.model_names[0]}.pth",
                       weights_only=True)
    assert not any(k.startswith("module.") for k in saved), "plain state_dict keys, as the reference"

    other, _, _ = make_model(name, tmp_path / "other")
    other.save_dir = model.save_dir
    other.load_networks("latest")
    for net_a, net_b in zip(model.networks(), other.networks()):
        for (ka, va), (kb, vb) in zip(net_a.state_dict().items(), net_b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)
    assert not list((tmp_path / "checkpoints" / opt.name).glob("*.tmp")), "no temporary files left behind"


def test_wgangp_adds_gradient_penalty(tmp_path, monkeypatch):
    import models.cycle_gan_model as cycle_gan_model

    calls = []
    real_penalty = cycle_gan_model.gradient_penalty
    monkeypatch.setattr(cycle_gan_model, "gradient_penalty",
                        lambda *a, **k: calls.append(1) or real_penalty(*a, **k))
    model, _, batch = make_model("cycle_gan", tmp_path, ["--gan_mode", "wgangp"])
    model.set_input(batch)
    model.optimize_parameters()
    assert len(calls) == 2, "one penalty for D_A and one for D_B"


def test_cycle_gan_step_order_updates_generators_before_discriminators(tmp_path):
    """G's adversarial loss must see the discriminators as they were before this iteration's D step."""
    model, _, batch = make_model("cycle_gan", tmp_path, ["--pool_size", "0"])
    d_before = copy.deepcopy(model.netD_A)
    model.set_input(batch)
    model.optimize_parameters()
    with torch.no_grad():
        expected = model.criterionGAN(d_before(model.fake_B), True)
    assert torch.allclose(model.loss_G_A, expected, atol=1e-6)


def test_cycle_gan_shared_calls_give_the_numbers_of_separate_calls(tmp_path, monkeypatch):
    """With instance norm, each generator runs once on [its input, the identity input] and each D once on
    [real, fake]; one step must give the losses and gradients of the reference's six generator and four D calls."""
    from models.cycle_gan_model import CycleGANModel

    model, _, batch = make_model("cycle_gan", tmp_path, ["--pool_size", "0", "--norm", "instance"])
    for net in model.networks():  # float64: equal mathematics must agree far beyond float32's rounding noise
        net.double()
    batch = {key: value.double() if torch.is_tensor(value) else value for key, value in batch.items()}
    separate = copy.deepcopy(model)
    calls = {"G_A": 0}
    model.netG_A.register_forward_hook(lambda *_: calls.__setitem__("G_A", calls["G_A"] + 1))
    model.set_input(batch)
    model.optimize_parameters()
    assert calls["G_A"] == 2 and model.identity_done  # [real_A, real_B] and fake_A: the identity pass is shared
    monkeypatch.setattr(CycleGANModel, "per_image_norm", property(lambda self: False))
    separate.set_input(batch)
    separate.optimize_parameters()
    assert not separate.identity_done
    for name in ("fake_B", "idt_A", "idt_B", "rec_A", "rec_B"):
        torch.testing.assert_close(getattr(model, name), getattr(separate, name), rtol=1e-10, atol=1e-12)
    for name in model.loss_names:
        torch.testing.assert_close(getattr(model, "loss_" + name), getattr(separate, "loss_" + name), rtol=1e-10,
                                   atol=1e-12)
    for net, other in zip(model.networks(), separate.networks()):
        for p, q in zip(net.parameters(), other.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-8, atol=1e-12)


def test_cycle_gan_runs_large_identity_images_apart_on_the_cpu(tmp_path):
    """On the CPU the shared identity call pays for small images only; from 2 x 256 x 256 pixels per call the
    identity images run in their own calls (faster there, docs/scaling.md). The numbers are the same either way."""
    from models.cycle_gan_model import CPU_IDENTITY_BATCH_PIXELS

    model, _, batch = make_model("cycle_gan", tmp_path, ["--norm", "instance"])
    model.set_input(batch)
    assert model.batches_identity()  # 2 x 32 x 32 pixels
    side = int((CPU_IDENTITY_BATCH_PIXELS // 2) ** 0.5)
    large = dict(batch, A=torch.zeros(1, 3, side, side), B=torch.zeros(1, 3, side, side))
    model.set_input(large)
    assert not model.batches_identity()
    model.set_input(dict(large, A=large["A"][..., : side // 2], B=large["B"][..., : side // 2]))
    assert model.batches_identity()


def test_cycle_gan_with_batch_norm_keeps_separate_calls(tmp_path):
    model, _, batch = make_model("cycle_gan", tmp_path, ["--norm", "batch"])
    model.set_input(batch)
    model.optimize_parameters()
    assert not model.identity_done and not model.per_image_norm  # batch statistics must not mix A and B


def test_test_model_loads_generator_with_suffix(tmp_path):
    model, opt, batch = make_model("cycle_gan", tmp_path)
    model.save_networks("latest")
    root = tmp_path / "data" / "testA"
    test_opt = TestOptions().parse(tiny_args(root, tmp_path, train=False) + ["--model", "test", "--name", opt.name,
                                                               "--model_suffix", "_A", "--no_dropout"])
    tester = create_model(test_opt)
    tester.setup(test_opt)
    for k, v in model.netG_A.state_dict().items():
        assert torch.equal(v, tester.netG.state_dict()[k])
    tester.set_input(next(iter(create_dataset(test_opt))))
    tester.test()
    assert tester.fake.shape == tester.real.shape


def test_cycle_gan_losses_carry_their_own_weights(tmp_path):
    """Cycle A is lambda_A x L1, cycle B lambda_B x L1, identity lambda_identity x the other side's lambda
    (weights all different, so a dropped or swapped weight shows)."""
    model, opt, batch = make_model("cycle_gan", tmp_path, ["--lambda_A", "3", "--lambda_B", "7",
                                                          "--lambda_identity", "0.25"])
    model.set_input(batch)
    model.optimize_parameters()

    def l1(a, b):
        return (a - b).abs().mean().item()

    assert model.loss_cycle_A.item() == pytest.approx(3 * l1(model.rec_A, model.real_A), rel=1e-4)
    assert model.loss_cycle_B.item() == pytest.approx(7 * l1(model.rec_B, model.real_B), rel=1e-4)
    assert model.loss_idt_A.item() == pytest.approx(7 * 0.25 * l1(model.idt_A, model.real_B), rel=1e-4)
    assert model.loss_idt_B.item() == pytest.approx(3 * 0.25 * l1(model.idt_B, model.real_A), rel=1e-4)
