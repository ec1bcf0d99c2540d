"""Mixed precision and fast paths: --amp (bf16 on the CPU), --channels_last, fused Adam, --compile/--sync_bn
messages; checkpoints trained with them load without them."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from data import create_dataset
from models import create_model
from models.base_model import BaseModel
from util.runtime import unwrap
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tests.helpers import after_one_step, aligned_dataset, tiny_args, unaligned_dataset
from util import precision, runtime
from util.errors import I2IError

SIZES = {"cycle_gan": ["--load_size", "32", "--crop_size", "32"],
         "pix2pix": ["--netG", "unet_128", "--load_size", "128", "--crop_size", "128"]}


def train_step(tmp_path, model_name: str, flags: list[str], device: str = "cpu"):
    root = unaligned_dataset(tmp_path / "data", size=32)
    aligned_dataset(root, size=128)
    args = tiny_args(root, tmp_path) + ["--model", model_name, "--seed", "0", *SIZES[model_name], *flags]
    if device != "cpu":
        args += ["--gpu_ids", "0"]
    opt = TrainOptions().parse(args)
    model = create_model(opt)
    model.setup(opt)
    model.set_input(next(iter(create_dataset(opt))))
    model.optimize_parameters()
    return model, opt


def assert_sane(model: BaseModel) -> None:
    losses = model.get_current_losses()
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    for net in model.networks():
        for name, param in net.named_parameters():
            assert param.dtype == torch.float32, f"{name} is {param.dtype}: weights must stay fp32"
            assert torch.isfinite(param).all(), name


@pytest.mark.parametrize("model_name", sorted(SIZES))
def test_bf16_autocast_step_on_the_cpu_is_finite_and_really_bf16(tmp_path, model_name):
    model, _ = train_step(tmp_path, model_name, ["--amp"])
    assert model.amp_dtype == torch.bfloat16 and model.grad_scaler is None
    assert model.fake_B.dtype == torch.bfloat16  # the networks did run in bf16
    assert_sane(model)


WGANGP = {"cycle_gan": ["--load_size", "32", "--crop_size", "32"],
          "discogan": ["--load_size", "32", "--crop_size", "32"],
          "cut": ["--load_size", "32", "--crop_size", "32", "--num_patches", "16", "--netF_nc", "16"]}


@pytest.mark.parametrize("model_name", sorted(WGANGP))
def test_wgangp_with_amp_steps_on_the_cpu(tmp_path, model_name):
    """The gradient penalty interpolates G's bf16 output with the float32 real batch (issue 17, point 3)."""
    root = unaligned_dataset(tmp_path / "data", size=32)
    args = tiny_args(root, tmp_path) + ["--model", model_name, "--seed", "0", "--gan_mode", "wgangp", "--amp",
                                        *WGANGP[model_name]]
    model = after_one_step(TrainOptions().parse(args))
    assert model.fake_B.dtype == torch.bfloat16
    assert_sane(model)


def test_channels_last_step_keeps_nhwc_weights(tmp_path):
    model, _ = train_step(tmp_path, "cycle_gan", ["--channels_last"])
    conv = next(m for m in model.netG_A.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.real_A.is_contiguous(memory_format=torch.channels_last)
    assert_sane(model)


@pytest.mark.parametrize("flags", [["--amp"], ["--channels_last"], ["--amp", "--channels_last"]])
def test_checkpoints_trained_with_fast_paths_load_without_them(tmp_path, flags):
    trained, opt = train_step(tmp_path, "cycle_gan", flags)
    trained.save_networks("latest")
    args = tiny_args(tmp_path / "data", tmp_path, train=False) + [
        "--name", opt.name, "--model", "test", "--model_suffix", "_A", "--no_dropout", "--dataroot",
        str(tmp_path / "data" / "testA"), "--load_size", "32", "--crop_size", "32"]
    plain = create_model(TestOptions().parse(args))
    plain.setup(plain.opt)  # loads latest_net_G_A.pth
    for key, value in unwrap(plain.netG).state_dict().items():
        assert torch.equal(value, trained.netG_A.state_dict()[key].float()), key
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    plain.set_input({"A": image, "A_paths": ["x.png"]})
    plain.test()
    assert plain.fake.dtype == torch.float32 and torch.isfinite(plain.fake).all()


def test_adam_uses_the_fused_kernel_where_available(tmp_path):
    model, _ = train_step(tmp_path, "cycle_gan", [])
    assert runtime.fused_adam_available(torch.device("cpu"))
    assert all(o.defaults.get("fused") for o in model.optimizers)
    model, _ = train_step(tmp_path, "cycle_gan", ["--optimizer_impl", "for_loop"])
    assert not any(o.defaults.get("fused") for o in model.optimizers)


def test_fp16_on_the_cpu_is_refused_with_the_fix(tmp_path):
    with pytest.raises(I2IError, match="--amp_dtype bf16"):
        train_step(tmp_path, "cycle_gan", ["--amp", "--amp_dtype", "fp16"])


@pytest.mark.parametrize("capability,expected", [((7, 0), torch.float16), ((7, 5), torch.float16),
                                                 ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_amp_auto_picks_bf16_only_where_the_gpu_has_bf16_units(monkeypatch, capability, expected):
    """V100 (7.0) and T4 (7.5) emulate bf16, which `torch.cuda.is_bf16_supported()` counts by default: there
    --amp must take fp16 with its gradient scaler, not bf16's slow fallback kernels."""
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "a GPU")
    cuda = torch.device("cuda", 0)
    assert precision.amp_dtype(True, "auto", cuda) == expected
    if expected == torch.float16:
        with pytest.raises(I2IError, match="no bfloat16 units.*--amp_dtype fp16"):
            precision.amp_dtype(True, "bf16", cuda)


def test_sync_bn_on_the_cpu_is_refused_with_the_fix(tmp_path):
    with pytest.raises(I2IError, match="--sync_bn needs GPUs"):
        train_step(tmp_path, "pix2pix", ["--sync_bn"])


def test_compile_without_a_compiler_says_so(monkeypatch):
    monkeypatch.setattr(runtime.shutil, "which", lambda name: None)
    with pytest.raises(I2IError, match="C\\+\\+ compiler"):
        runtime.check_compile_available(torch.device("cpu"))


def test_compile_with_several_gpus_in_one_process_is_refused_with_the_fix():
    """DataParallel's per-GPU copies of a compiled network would run the graph compiled for GPU 0 (issue 17,
    point 2): one process per GPU (torchrun) compiles each copy itself."""
    with pytest.raises(I2IError, match="torchrun --nproc_per_node 2 .* --compile"):
        runtime.prepare_network(nn.Conv2d(3, 4, 3), torch.device("cpu"), compile=True, device_ids=[0, 1])


def test_data_parallel_wrapper_is_unwrapped_like_torchs():
    net = nn.Sequential(nn.Conv2d(3, 4, 3))
    wrapped = runtime.prepare_network(net, torch.device("cpu"), device_ids=[0, 1])
    assert isinstance(wrapped, nn.DataParallel) and unwrap(wrapped) is net
    assert list(unwrap(wrapped).state_dict()) == ["0.weight", "0.bias"]


@pytest.mark.parametrize("preprocess,seed,expected", [("resize_and_crop", None, True), ("none", None, False),
                                                      ("scale_width", None, False), ("resize_and_crop", "0", False)])
def test_cudnn_autotuning_only_for_one_input_size(tmp_path, monkeypatch, preprocess, seed, expected):
    """cuDNN autotuning searches kernels for every new input size: worth it at a fixed crop, a trap for test.py on
    whole images of varying sizes (issue 17, point 11)."""
    calls = []
    monkeypatch.setattr(runtime, "configure_backends", lambda device, **flags: calls.append(flags))
    root = unaligned_dataset(tmp_path / "data")
    args = tiny_args(root / "testA", tmp_path, train=False) + ["--model", "test", "--preprocess", preprocess]
    create_model(TestOptions().parse(args + (["--seed", seed] if seed else [])))
    assert calls[-1]["autotune"] is expected


def test_compiled_networks_save_plain_keys():
    net = nn.Sequential(nn.Conv2d(3, 4, 3))
    compiled = torch.compile(net)  # wrapping only: nothing is compiled until it runs
    assert unwrap(compiled) is net
    assert list(unwrap(compiled).state_dict()) == ["0.weight", "0.bias"]


class _Float32Model(BaseModel):
    """A reference-style model: calls loss.backward() and optimizer.step() itself, never autocast()."""

    def __init__(self, opt):
        super().__init__(opt)
        self.model_names, self.loss_names = ["G"], ["G"]
        self.netG = nn.Linear(2, 1)
        self.optimizers = [torch.optim.SGD(self.netG.parameters(), lr=0.1)]

    def set_input(self, input):
        pass

    def forward(self):
        pass

    def optimize_parameters(self):
        self.loss_G = self.netG(torch.ones(1, 2)).sum()
        self.loss_G.backward()
        self.optimizers[0].step()


def test_amp_warns_once_for_a_model_that_never_autocasts(tmp_path):
    opt = TrainOptions().parse(tiny_args(unaligned_dataset(tmp_path / "data"), tmp_path) + ["--amp"])
    model = _Float32Model(opt)
    model.setup(opt)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.optimize_parameters()
        model.optimize_parameters()
    messages = [str(w.message) for w in caught if "autocast" in str(w.message)]
    assert len(messages) == 1 and "_Float32Model" in messages[0]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_amp_step_on_the_gpu(tmp_path, dtype):
    if dtype == "bf16" and not precision.native_bf16(torch.device("cuda", 0)):
        pytest.skip("this GPU has no bf16 units")
    model, _ = train_step(tmp_path, "cycle_gan", ["--amp", "--amp_dtype", dtype, "--channels_last"], device="cuda")
    assert (model.grad_scaler is not None) == (dtype == "fp16")
    assert_sane(model)


@pytest.mark.slow
def test_compiled_inference_freezes_weights_and_matches_eager(monkeypatch):
    """test.py --compile: the weights become constants of the compiled graph (inference only), same outputs."""
    import shutil

    import torch._inductor.config as inductor_config

    from networks import build_generator

    if not shutil.which("g++") and not shutil.which("c++"):
        pytest.skip("no C++ compiler: torch.compile cannot run on the CPU here")
    monkeypatch.setattr(inductor_config, "freezing", False)
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance").eval()
    runtime.prepare_network(net, torch.device("cpu"), compile=True, training=True)
    assert not inductor_config.freezing  # training: weights change every step, never frozen
    compiled = runtime.prepare_network(net, torch.device("cpu"), compile=True, training=False)
    assert inductor_config.freezing
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), net(x), rtol=1e-4, atol=1e-4)
