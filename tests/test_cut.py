"""CUT / FastCUT: PatchNCE by hand, the lazily built F, the presets, CUT's checkpoint key layout, training end to end."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from data import create_dataset
from models import create_model
from models.losses import GANLoss
from models.patchnce import PatchNCELoss
from networks import get_norm_layer
from networks.antialias_patchgan import AntialiasNLayerDiscriminator
from networks.cut_resnet import AntialiasResnetGenerator
from networks.patch_sample import PatchSampleF, encoder_features
from networks.resnet import ResnetGenerator
from options.train_options import TrainOptions
from tests.helpers import ReplicatingParallel, after_one_step, load_script, tiny_args, unaligned_dataset
from util.errors import I2IError

TINY_CUT = ["--model", "cut", "--num_patches", "8", "--netF_nc", "8", "--seed", "0"]


def cut_options(tmp_path, *extra: str, size: int = 32):
    root = unaligned_dataset(tmp_path / "data", size=size)
    return TrainOptions().parse(tiny_args(root, tmp_path, size) + TINY_CUT + list(extra))


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# ---------------------------------------------------------------- PatchNCE


def test_patchnce_matches_a_hand_computation():
    q = F.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]), dim=1)
    k = F.normalize(torch.tensor([[0.8, 0.6], [1.0, 0.0], [0.0, 1.0]]), dim=1)
    tau = 0.5
    expected = []
    for i in range(3):  # -log softmax of the positive among [positive, the other keys of the same image]
        pos = math.exp(float(q[i] @ k[i]) / tau)
        negs = sum(math.exp(float(q[i] @ k[j]) / tau) for j in range(3) if j != i)
        masked = math.exp(-10.0 / tau)  # the query's own key on the diagonal, masked with -10
        expected.append(-math.log(pos / (pos + negs + masked)))
    loss = PatchNCELoss(nce_T=tau)(q, k, batch_size=1)
    assert loss.shape == (3,)
    assert torch.allclose(loss, torch.tensor(expected), atol=1e-5)


def test_patchnce_takes_negatives_from_the_same_image_unless_asked():
    torch.manual_seed(0)
    q, k = F.normalize(torch.randn(8, 4), dim=1), F.normalize(torch.randn(8, 4), dim=1)
    k_other = k.clone()
    k_other[4:] = F.normalize(torch.randn(4, 4), dim=1)  # change image 2's keys only
    per_image = PatchNCELoss(0.07)
    assert torch.equal(per_image(q, k, 2)[:4], per_image(q, k_other, 2)[:4])
    whole_batch = PatchNCELoss(0.07, all_negatives_from_minibatch=True)
    assert not torch.allclose(whole_batch(q, k, 2)[:4], whole_batch(q, k_other, 2)[:4])


def test_patchnce_keys_get_no_gradient():
    q = F.normalize(torch.randn(6, 3), dim=1).requires_grad_()
    k = F.normalize(torch.randn(6, 3), dim=1).requires_grad_()
    PatchNCELoss(0.07)(q, k, 2).mean().backward()
    assert q.grad is not None and k.grad is None


def test_nonsaturating_gan_loss_is_the_softplus_form():
    pred = torch.randn(2, 1, 5, 5)
    loss = GANLoss("nonsaturating")
    assert torch.allclose(loss(pred, True), F.softplus(-pred).mean())
    assert torch.allclose(loss(pred, False), F.softplus(pred).mean())


# ---------------------------------------------------------------- F: sampling and lazy MLPs


def test_patch_sampler_shares_positions_and_normalises():
    feats = [torch.randn(2, 3, 6, 6), torch.randn(2, 5, 4, 4)]
    netF = PatchSampleF(use_mlp=False)
    samples, ids = netF(feats, num_patches=7)
    assert [s.shape for s in samples] == [(14, 3), (14, 5)]
    assert torch.allclose(samples[0].norm(dim=1), torch.ones(14), atol=1e-5)
    again, same_ids = netF(feats, 7, ids)
    assert all(torch.equal(a, b) for a, b in zip(ids, same_ids))
    assert all(torch.allclose(a, b) for a, b in zip(samples, again))
    # position ids[0][j] of image 1 is row 7 + j
    flat = feats[0][1].flatten(1).T
    assert torch.allclose(samples[0][7:], F.normalize(flat[ids[0]], dim=1), atol=1e-6)


def test_mlp_head_is_created_on_first_forward_and_loads_from_a_checkpoint():
    netF = PatchSampleF(use_mlp=True, nc=16)
    assert n_params(netF) == 0
    netF([torch.randn(1, 3, 4, 4), torch.randn(1, 6, 4, 4)], 5)
    assert [tuple(netF.get_parameter(f"mlp_{i}.0.weight").shape) for i in range(2)] == [(16, 3), (16, 6)]
    fresh = PatchSampleF(use_mlp=True, nc=16)
    fresh.load_state_dict(netF.state_dict())  # builds the MLPs from the stored shapes, then loads
    assert all(torch.equal(a, b) for a, b in zip(netF.state_dict().values(), fresh.state_dict().values()))


def test_data_dependent_initialize_builds_F_and_its_optimizer_and_scheduler(tmp_path):
    opt = cut_options(tmp_path)
    model = create_model(opt)
    model.setup(opt)
    assert n_params(model.netF) == 0 and model.optimizer_F is None
    model.data_dependent_initialize(next(iter(create_dataset(opt))))
    assert n_params(model.netF) > 0
    assert model.optimizer_F in model.optimizers
    assert len(model.schedulers) == len(model.optimizers) == 3
    f_params = {id(p) for p in model.netF.parameters()}
    assert {id(p) for group in model.optimizer_F.param_groups for p in group["params"]} == f_params


def test_F_gets_its_layers_and_optimizer_when_the_networks_run_on_copies(tmp_path, monkeypatch):
    """Under --gpu_ids 0,1 every placed network runs on DataParallel's per-call copies (issue 17, point 1): F must
    be built on itself, not on a copy, or it never has parameters and projects with fresh random layers."""
    from util import runtime

    monkeypatch.setattr(runtime, "prepare_network", lambda net, device, **options: ReplicatingParallel(net))
    opt = cut_options(tmp_path)
    model = create_model(opt)
    model.data_dependent_initialize(next(iter(create_dataset(opt))))
    assert isinstance(model.netG, ReplicatingParallel)  # the stand-in is in place
    assert n_params(model.netF) > 0 and model.optimizer_F in model.optimizers
    state = model.netF.state_dict()
    model.data_dependent_initialize(next(iter(create_dataset(opt))))
    assert all(torch.equal(state[k], v) for k, v in model.netF.state_dict().items())  # built once, kept


def test_compile_covers_the_encoder_passes_of_patchnce(tmp_path, monkeypatch):
    """--compile: G's encoder runs twice more per step for PatchNCE; it goes through torch.compile as G does."""
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda net, **kw: compiled.append(type(net).__name__) or net)
    monkeypatch.setattr("util.runtime.check_compile_available", lambda device: None)
    opt = cut_options(tmp_path, "--compile")
    create_model(opt)
    assert "EncoderTaps" in compiled and "PatchSampleF" not in compiled


def test_nce_layers_out_of_range_is_a_clear_error(tmp_path):
    opt = cut_options(tmp_path, "--nce_layers", "0,4,99")
    with pytest.raises(I2IError, match="--nce_layers 0,4,99"):
        create_model(opt)  # at set-up, before any data is loaded


# ---------------------------------------------------------------- presets


@pytest.mark.parametrize("mode, expected", [
    ("CUT", dict(nce_idt=True, lambda_NCE=1.0, flip_equivariance=False, n_epochs=200, n_epochs_decay=200)),
    ("fastcut", dict(nce_idt=False, lambda_NCE=10.0, flip_equivariance=True, n_epochs=150, n_epochs_decay=50)),
])
def test_cut_mode_presets(tmp_path, mode, expected):
    opt = cut_options(tmp_path, "--CUT_mode", mode)
    assert {key: getattr(opt, key) for key in expected} == expected
    assert (opt.pool_size, opt.init_type, opt.no_dropout, opt.netF, opt.nce_T, opt.nce_layers) == (
        0, "xavier", True, "mlp_sample", 0.07, "0,4,8,12,16")


def test_typed_options_beat_the_preset(tmp_path):
    opt = cut_options(tmp_path, "--CUT_mode", "FastCUT", "--lambda_NCE", "2", "--nce_idt", "--n_epochs", "3")
    assert (opt.lambda_NCE, opt.nce_idt, opt.n_epochs, opt.flip_equivariance) == (2.0, True, 3, True)


def test_cut_and_fastcut_name_different_losses_and_visuals(tmp_path):
    cut = create_model(cut_options(tmp_path / "cut"))
    fast = create_model(cut_options(tmp_path / "fast", "--CUT_mode", "FastCUT"))
    assert cut.loss_names[-1] == "NCE_Y" and "idt_B" in cut.visual_names
    assert "NCE_Y" not in fast.loss_names and "idt_B" not in fast.visual_names
    assert cut.model_names == ["G", "F", "D"]


# ---------------------------------------------------------------- CUT's checkpoint layout


def test_antialiased_generator_has_cut_key_layout():
    net = AntialiasResnetGenerator(3, 3, 64, norm_layer=get_norm_layer("instance"))
    state = net.state_dict()
    assert state["model.7.filt"].shape == (128, 1, 3, 3) and state["model.11.filt"].shape == (256, 1, 3, 3)
    assert state["model.21.filt"].shape == (256, 1, 4, 4) and state["model.25.filt"].shape == (128, 1, 4, 4)
    assert torch.allclose(state["model.7.filt"][0], torch.outer(*[torch.tensor([1.0, 2, 1])] * 2) / 16)
    assert torch.allclose(state["model.21.filt"][0], torch.outer(*[torch.tensor([1.0, 3, 3, 1])] * 2) / 64 * 4)
    shapes = {k: tuple(v.shape) for k, v in state.items() if k.endswith("weight")}
    assert shapes["model.1.weight"] == (64, 3, 7, 7)
    assert shapes["model.4.weight"] == (128, 64, 3, 3)
    assert shapes["model.8.weight"] == (256, 128, 3, 3)
    assert shapes["model.22.weight"] == (128, 256, 3, 3)
    assert shapes["model.26.weight"] == (64, 128, 3, 3)
    assert shapes["model.30.weight"] == (3, 64, 7, 7)
    blocks = {int(k.split(".")[1]) for k in state if ".conv_block." in k}
    assert blocks == set(range(12, 21))
    assert {k.split("conv_block.")[1] for k in state if k.startswith("model.12.")} == {
        "1.weight", "1.bias", "5.weight", "5.bias"}
    assert round(n_params(net) / 1e6, 3) == 11.378


def test_antialiased_discriminator_and_F_have_cut_key_layout():
    netD = AntialiasNLayerDiscriminator(3, 64, norm_layer=get_norm_layer("instance"))
    assert list(netD.state_dict()) == [
        "model.0.weight", "model.0.bias", "model.2.filt", "model.3.weight", "model.3.bias", "model.6.filt",
        "model.7.weight", "model.7.bias", "model.10.filt", "model.11.weight", "model.11.bias",
        "model.14.weight", "model.14.bias"]
    assert round(n_params(netD) / 1e6, 3) == 2.765
    netG = AntialiasResnetGenerator(3, 3, 64, norm_layer=get_norm_layer("instance"))
    netF = PatchSampleF(use_mlp=True, nc=256)
    with torch.no_grad():
        netF(encoder_features(netG, torch.randn(1, 3, 16, 16), [0, 4, 8, 12, 16]), 4)
    assert sorted(netF.state_dict()) == sorted(
        f"mlp_{i}.{j}.{p}" for i in range(5) for j in (0, 2) for p in ("weight", "bias"))
    assert round(n_params(netF) / 1e6, 3) == 0.560


def test_without_antialiasing_the_generator_is_the_reference_one():
    norm = get_norm_layer("instance")
    plain = AntialiasResnetGenerator(3, 3, 8, norm_layer=norm, antialias=False, antialias_up=False)
    reference = ResnetGenerator(3, 3, 8, norm_layer=norm)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()}


# ---------------------------------------------------------------- training


def test_flip_equivariance_flips_the_input_and_the_query_features(tmp_path, monkeypatch):
    opt = cut_options(tmp_path, "--flip_equivariance")
    model = create_model(opt)
    model.set_input(next(iter(create_dataset(opt))))
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.zeros(()))  # always "heads"
    model.forward()
    assert model.flipped_for_equivariance
    with torch.no_grad():
        assert torch.allclose(model.fake_B, model.netG(torch.flip(model.real_A, [3])), atol=1e-5)


def test_lambda_nce_zero_trains_and_reports_zero_nce_losses(tmp_path):
    """CUT with --lambda_NCE 0 (a GAN alone): both NCE losses are reported as 0, not a missing attribute."""
    losses = after_one_step(cut_options(tmp_path, "--CUT_mode", "CUT", "--lambda_NCE", "0")).get_current_losses()
    assert losses["NCE"] == losses["NCE_Y"] == 0 and math.isfinite(losses["G"])


@pytest.mark.parametrize("mode", ["CUT", "FastCUT"])
def test_one_training_step_is_finite_and_updates_G_F_D(tmp_path, mode):
    opt = cut_options(tmp_path, "--CUT_mode", mode)
    model = create_model(opt)
    batch = next(iter(create_dataset(opt)))
    model.data_dependent_initialize(batch)
    model.setup(opt)
    before = [{k: v.clone() for k, v in net.state_dict().items()} for net in model.networks()]
    model.set_input(batch)
    model.optimize_parameters()
    losses = model.get_current_losses()
    assert list(losses) == model.loss_names and all(math.isfinite(v) for v in losses.values())
    for name, net, old in zip(model.model_names, model.networks(), before):
        assert any(not torch.equal(old[k], v) for k, v in net.state_dict().items() if k in old and
                   not k.endswith("filt")), f"net{name} did not change"


def test_a_run_without_antialiasing_is_tested_with_no_flags(tmp_path):
    """test.py --model cut reads --no_antialias/--no_antialias_up back from train_opt.json, as the other
    architecture options (it failed on the mismatched state_dict)."""
    root = unaligned_dataset(tmp_path / "data", size=32)
    common = ["--model", "cut", "--name", "plain", "--num_patches", "8", "--netF_nc", "8"]
    load_script("train").main(tiny_args(root, tmp_path, 32) + common + ["--n_epochs", "1", "--n_epochs_decay", "0",
                                                                         "--no_antialias", "--no_antialias_up"])
    load_script("test").main(tiny_args(root, tmp_path, 32, train=False) + common
                             + ["--results_dir", str(tmp_path / "res")])
    assert (tmp_path / "res" / "plain" / "test_latest" / "images" / "000_fake_B.png").is_file()


def test_cut_trains_and_tests_through_the_drivers(tmp_path):
    root = unaligned_dataset(tmp_path / "data", size=32)
    common = ["--model", "cut", "--name", "cut_run", "--num_patches", "8", "--netF_nc", "8"]
    load_script("train").main(tiny_args(root, tmp_path, 32) + common + ["--n_epochs", "1", "--n_epochs_decay", "0"])
    run_dir = tmp_path / "checkpoints" / "cut_run"
    assert {f"latest_net_{n}.pth" for n in "GFD"} <= {p.name for p in run_dir.iterdir()}
    assert torch.load(run_dir / "latest_net_F.pth", weights_only=True), "F saved with its MLP weights"
    load_script("test").main(tiny_args(root, tmp_path, 32, train=False) + common
                             + ["--results_dir", str(tmp_path / "res")])
    images = {p.name for p in (tmp_path / "res" / "cut_run" / "test_latest" / "images").iterdir()}
    assert {"000_real_A.png", "000_fake_B.png", "000_real_B.png"} <= images
    # One direction of the run with --model test: its anti-aliased generator is rebuilt from train_opt.json.
    load_script("test").main(tiny_args(root / "testA", tmp_path, 32, train=False)
                             + ["--model", "test", "--name", "cut_run", "--results_dir", str(tmp_path / "one")])
    test_opt = (run_dir / "test_opt.txt").read_text()
    assert "netG: antialias_resnet_9blocks" in test_opt
    assert (tmp_path / "one" / "cut_run" / "test_latest" / "images" / "000_fake.png").is_file()


def test_amp_step_runs_the_networks_in_bfloat16(tmp_path):
    model = after_one_step(cut_options(tmp_path, "--amp"))
    assert model.fake_B.dtype == torch.bfloat16
    assert all(math.isfinite(v) for v in model.get_current_losses().values())
    assert all(p.dtype == torch.float32 for net in model.networks() for p in net.parameters())
