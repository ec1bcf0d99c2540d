"""On NVIDIA GPUs: what the CPU suite cannot show (issue 17). Run with `python -m pytest -m gpu` on a machine with
one GPU (two for the DataParallel tests; the NCCL tests are in tests/test_distributed.py). Tiny sizes: the whole
file takes about a minute.

- mixed precision: the activations' dtype, fp16's gradient scaler taking steps (WGAN-GP included), `--amp` auto's
  choice, DataParallel's per-GPU copies keeping bf16;
- CUT's head F trained under DataParallel; `--compile` refused with DataParallel;
- a GPU checkpoint loading on the CPU; test.py (whole images of varying sizes, tiles on two GPUs) and export.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from data import create_dataset
from inference.translator import InferenceGenerator
from models import create_model
from networks import build_generator
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tests.helpers import load_script, tiny_args, unaligned_dataset, write_images
from util import precision, runtime
from util.checkpoint import save_state_dict
from util.errors import I2IError
from util.runtime import unwrap

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
CUDA0 = torch.device("cuda", 0)


def build(tmp_path: Path, model_name: str, *flags: str, gpu_ids: str = "0"):
    """A training model on `gpu_ids` with tiny networks, set up as train.py does; and its first batch."""
    root = unaligned_dataset(tmp_path / "data", count=2, size=32)
    opt = TrainOptions().parse(tiny_args(root, tmp_path) + ["--model", model_name, "--gpu_ids", gpu_ids, "--seed",
                                                            "0", *flags])
    model = create_model(opt)
    batch = next(iter(create_dataset(opt)))
    model.data_dependent_initialize(batch)
    model.setup(opt)
    return model, batch


def conv_outputs(net: nn.Module) -> list[tuple[torch.dtype, torch.device]]:
    """Records (dtype, device) of every convolution output of `net` (DataParallel's copies included)."""
    seen: list[tuple[torch.dtype, torch.device]] = []
    for module in unwrap(net).modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(lambda mod, args, out: seen.append((out.dtype, out.device)))
    return seen


def weights(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in unwrap(net).state_dict().items() if v.is_floating_point()}


def changed(before: dict[str, torch.Tensor], net: nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in weights(net).items())


def train(model, batch, steps: int) -> None:
    for _ in range(steps):
        model.set_input(batch)
        model.optimize_parameters()


def test_amp_auto_takes_bf16_exactly_where_the_gpu_has_bf16_units():
    expected = torch.bfloat16 if torch.cuda.get_device_capability(0) >= (8, 0) else torch.float16
    assert precision.amp_dtype(True, "auto", CUDA0) == expected


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
@pytest.mark.parametrize("gan_mode", ["lsgan", "wgangp"])
def test_amp_steps_compute_in_their_dtype_and_take_their_steps(tmp_path, dtype, gan_mode):
    if dtype == "bf16" and not precision.native_bf16(CUDA0):
        pytest.skip("this GPU has no bf16 units")
    model, batch = build(tmp_path, "cycle_gan", "--amp", "--amp_dtype", dtype, "--gan_mode", gan_mode,
                         "--channels_last")
    seen = conv_outputs(model.netG_A)
    before_G, before_D = weights(model.netG_A), weights(model.netD_A)
    train(model, batch, 4)
    assert {d for d, _ in seen} == {torch.float16 if dtype == "fp16" else torch.bfloat16}
    assert (model.grad_scaler is not None) == (dtype == "fp16")
    assert changed(before_G, model.netG_A) and changed(before_D, model.netD_A)  # steps taken, not all skipped
    assert all(np.isfinite(v) for v in model.get_current_losses().values())
    for net in model.networks():
        assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in net.parameters())


@two_gpus
def test_data_parallel_copies_compute_in_bf16(tmp_path):
    if not precision.native_bf16(CUDA0):
        pytest.skip("this GPU has no bf16 units")
    model, batch = build(tmp_path, "cycle_gan", "--amp", "--batch_size", "2", gpu_ids="0,1")
    seen = conv_outputs(model.netG_A)
    train(model, batch, 1)
    assert {d for d, _ in seen} == {torch.bfloat16}  # DataParallel's worker threads would default to fp16
    assert {device.index for _, device in seen} == {0, 1}


@two_gpus
def test_cut_trains_F_under_data_parallel(tmp_path):
    model, batch = build(tmp_path, "cut", "--num_patches", "16", "--netF_nc", "16", "--batch_size", "2",
                         gpu_ids="0,1")
    assert sum(p.numel() for p in model.netF.parameters()) > 0 and model.optimizer_F in model.optimizers
    before = weights(model.netF)
    train(model, batch, 2)
    assert changed(before, model.netF)
    assert all(np.isfinite(v) for v in model.get_current_losses().values())


@two_gpus
def test_compile_with_data_parallel_is_refused_with_the_fix(tmp_path):
    with pytest.raises(I2IError, match="torchrun --nproc_per_node 2"):
        build(tmp_path, "cycle_gan", "--compile", gpu_ids="0,1")


def test_a_gpu_checkpoint_loads_and_runs_on_the_cpu(tmp_path):
    model, batch = build(tmp_path, "cycle_gan", "--amp", "--channels_last")
    train(model, batch, 1)
    model.save_networks("latest")
    args = tiny_args(tmp_path / "data", tmp_path, train=False) + [
        "--name", model.opt.name, "--model", "test", "--model_suffix", "_A", "--no_dropout", "--dataroot",
        str(tmp_path / "data" / "testA")]
    plain = create_model(TestOptions().parse(args))
    plain.setup(plain.opt)
    for key, value in unwrap(plain.netG).state_dict().items():
        assert value.device.type == "cpu" and torch.equal(value, unwrap(model.netG_A).state_dict()[key].cpu()), key
    plain.set_input({"A": torch.rand(1, 3, 32, 32) * 2 - 1, "A_paths": ["x.png"]})
    plain.test()
    assert torch.isfinite(plain.fake).all()


def _tiny_generator_run(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    save_state_dict(build_generator("resnet_6blocks", 3, 3, 8, norm="instance").state_dict(),
                    tmp_path / "checkpoints" / "tiny_G" / "latest_net_G.pth")
    images = tmp_path / "images"
    write_images(images, 1, (56, 40), prefix="a")
    write_images(images, 1, (72, 48), seed=1, prefix="b")
    return images


def _test_py(tmp_path: Path, images: Path, *flags: str) -> Path:
    load_script("test").main(["--dataroot", str(images), "--name", "tiny_G", "--model", "test", "--no_dropout",
                              "--ngf", "8", "--netG", "resnet_6blocks", "--preprocess", "none",
                              "--num_threads", "0", "--checkpoints_dir", str(tmp_path / "checkpoints"),
                              "--results_dir", str(tmp_path / "results"), *flags])
    return tmp_path / "results" / "tiny_G" / "test_latest"


def test_test_py_on_a_gpu_translates_whole_images_without_autotuning(tmp_path):
    """Whole images of varying sizes: cuDNN autotuning would search kernels again for every size."""
    images = _tiny_generator_run(tmp_path)
    torch.backends.cudnn.benchmark = False
    results = _test_py(tmp_path, images, "--gpu_ids", "0")
    assert (results / "index.html").is_file() and len(list((results / "images").glob("*_fake.png"))) == 2
    assert torch.backends.cudnn.benchmark is False


@two_gpus
def test_tiles_on_two_gpus_match_one_gpu(tmp_path):
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance").eval().to(CUDA0)
    x = torch.rand(1, 3, 100, 140, device=CUDA0) * 2 - 1
    with torch.inference_mode():
        one = InferenceGenerator(net, tile=48, overlap=16)(x)
        two = InferenceGenerator(runtime.prepare_network(net, CUDA0, device_ids=[0, 1]), tile=48, overlap=16)(x)
    assert (one - two).abs().max() < 1e-5
    results = _test_py(tmp_path, _tiny_generator_run(tmp_path), "--gpu_ids", "0,1", "--tile", "32",
                       "--tile_overlap", "8")
    assert len(list((results / "images").glob("*_fake.png"))) == 2


def test_export_from_a_gpu_run_matches_pytorch(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    _tiny_generator_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    written = load_script("export").main(["--name", "tiny_G", "--model", "test", "--no_dropout", "--ngf", "8",
                                          "--netG", "resnet_6blocks", "--format", "onnx", "--gpu_ids", "0"])
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance").eval()
    net.load_state_dict(torch.load(tmp_path / "checkpoints" / "tiny_G" / "latest_net_G.pth", weights_only=True))
    x = torch.rand(1, 3, 40, 56) * 2 - 1
    session = onnxruntime.InferenceSession(str(tmp_path / written["G"]), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        expected = net(x).numpy()
    assert out.shape == expected.shape and np.abs(out - expected).max() < 1e-4
