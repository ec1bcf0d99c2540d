"""test.py --fast_convs: Winograd's F(4x4, 3x3) and kernel rows, equal to the direct convolutions up to rounding,
same state_dicts, eager and compiled."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from networks import build_generator
from networks.fast_convs import KernelRowsConv2d, convert_to_direct, convert_to_fast, use_fast_convs
from networks.winograd import (WinogradConv2d, convert_to_winograd, transform_weight, winograd_conv2d,
                               winograd_conv3x3)
from tests.helpers import load_script, write_images
from util.errors import I2IError


@pytest.mark.parametrize("size", [(8, 8), (7, 9), (3, 3), (13, 4)])
def test_equals_the_direct_convolution_in_float64(size):
    """Whole and partial tiles (sizes not multiples of 4), batch 2, bias: the algebra is exact up to rounding."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, *size, dtype=torch.float64)
    weight = torch.randn(6, 5, 3, 3, dtype=torch.float64)
    bias = torch.randn(6, dtype=torch.float64)
    got = winograd_conv3x3(x, transform_weight(weight), bias)
    torch.testing.assert_close(got, F.conv2d(x, weight, bias), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("padding", [0, 1, (1, 0)])
def test_the_module_keeps_the_convolutions_padding_parameters_and_channels_last_input(padding):
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 24, 3, padding=padding)
    fast = WinogradConv2d(conv)
    assert fast.weight is conv.weight and fast.bias is conv.bias
    x = torch.randn(1, 16, 10, 12)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), conv(x), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(fast(x.contiguous(memory_format=torch.channels_last)), conv(x),
                                   rtol=1e-4, atol=1e-4)


def test_gradients_flow_to_the_input_and_the_weights():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1).double()
    fast = WinogradConv2d(conv)
    x = torch.randn(1, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: winograd_conv2d(F.pad(x, (1, 1, 1, 1)), w, b),
                                    (x, conv.weight, conv.bias))
    fast(x).square().sum().backward()
    direct_x = x.detach().clone().requires_grad_(True)
    reference = nn.Conv2d(3, 4, 3, padding=1).double()
    reference.load_state_dict(conv.state_dict())
    reference(direct_x).square().sum().backward()
    torch.testing.assert_close(x.grad, direct_x.grad)
    torch.testing.assert_close(conv.weight.grad, reference.weight.grad)


def test_cached_kernels_follow_weights_loaded_after_the_swap():
    """test.py swaps the convolutions before loading the checkpoint: the cached transform must not go stale."""
    torch.manual_seed(0)
    conv, other = nn.Conv2d(8, 8, 3), nn.Conv2d(8, 8, 3)
    fast = WinogradConv2d(conv)
    x = torch.randn(1, 8, 9, 9)
    with torch.no_grad():
        fast(x)  # fills the cache
        conv.load_state_dict(other.state_dict())
        torch.testing.assert_close(fast(x), other(x), rtol=1e-4, atol=1e-4)
        # loaded through the swapped layer itself (as test.py loads the whole network): the hook refreshes the buffer
        fast.load_state_dict(nn.Conv2d(8, 8, 3).state_dict())
        torch.testing.assert_close(fast.transformed, transform_weight(fast.weight))
    assert list(fast.state_dict()) == ["weight", "bias"]  # the transformed kernels are not saved


def test_a_resnet_swaps_its_block_convolutions_only_and_keeps_its_state_dict():
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", 3, 3, 64, norm="instance").eval()  # 256-channel blocks
    keys = list(net.state_dict())
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        expected = net(x)
        assert convert_to_winograd(net) == 2 * 6
        assert list(net.state_dict()) == keys
        fast = net(x)
        torch.testing.assert_close(fast, expected, rtol=0, atol=1e-4)
        assert not torch.equal(fast, expected)  # another algorithm: other rounding
        assert convert_to_direct(net) == 2 * 6 and list(net.state_dict()) == keys
        torch.testing.assert_close(net(x), expected, rtol=0, atol=0)
        assert convert_to_fast(net) == 2 * 6 + 1  # and the last 7x7 convolution to RGB, by kernel rows
        assert isinstance(net.model[-2], KernelRowsConv2d) and list(net.state_dict()) == keys
        torch.testing.assert_close(net(x), expected, rtol=0, atol=1e-4)
        assert convert_to_direct(net) == 2 * 6 + 1
        torch.testing.assert_close(net(x), expected, rtol=0, atol=0)
    assert convert_to_winograd(build_generator("unet_128", 3, 3, 64, norm="batch")) == 0  # 4x4 stride-2 convs
    assert convert_to_winograd(build_generator("resnet_6blocks", 3, 3, 8, norm="instance")) == 0  # 32 channels
    assert convert_to_fast(build_generator("unet_128", 3, 3, 64, norm="batch")) == 0


@pytest.mark.parametrize("kernel, padding, bias", [(7, 0, True), (5, 2, False), ((3, 5), (1, 2), True)])
def test_kernel_rows_equal_the_direct_convolution_in_float64(kernel, padding, bias):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 3, kernel, padding=padding, bias=bias).double()
    rows = KernelRowsConv2d(conv)
    assert rows.weight is conv.weight and rows.bias is conv.bias
    x = torch.randn(2, 6, 11, 9, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(rows(x), conv(x), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(rows(x.contiguous(memory_format=torch.channels_last)), conv(x), rtol=1e-10,
                               atol=1e-10)
    assert torch.autograd.gradcheck(lambda x: KernelRowsConv2d(conv)(x), (x,))


def test_only_narrow_large_kernels_go_by_rows():
    net = nn.Sequential(nn.Conv2d(64, 3, 7), nn.Conv2d(64, 3, 3), nn.Conv2d(64, 8, 7), nn.Conv2d(64, 3, 7, stride=2))
    assert convert_to_fast(net) == 1 and isinstance(net[0], KernelRowsConv2d)


def run_folder(tmp_path):
    folder = tmp_path / "checkpoints" / "run"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(build_generator("resnet_6blocks", 3, 3, 64, norm="instance").state_dict(),
               folder / "latest_net_G_A.pth")
    (folder / "train_opt.json").write_text(json.dumps({
        "model": "cycle_gan", "netG": "resnet_6blocks", "ngf": 64, "norm": "instance", "no_dropout": True,
        "input_nc": 3, "output_nc": 3}))
    write_images(tmp_path / "data" / "testA", 2, (40, 40))


def argv_of(tmp_path, results: str, *extra: str) -> list[str]:
    return ["--dataroot", str(tmp_path / "data" / "testA"), "--name", "run", "--checkpoints_dir",
            str(tmp_path / "checkpoints"), "--results_dir", str(tmp_path / results), "--model", "test",
            "--model_suffix", "_A", "--gpu_ids", "-1", "--num_threads", "0", "--load_size", "32", "--crop_size", "32",
            *extra]


def test_test_py_fast_convs_gives_the_plain_outputs_within_one_level(tmp_path, monkeypatch):
    import networks.fast_convs

    swapped = []
    monkeypatch.setattr(networks.fast_convs, "use_fast_convs", lambda net, device, **_: swapped.append(convert_to_fast(net)))
    run_folder(tmp_path)
    test = load_script("test")
    test.main(argv_of(tmp_path, "plain"))
    assert swapped == []
    test.main(argv_of(tmp_path, "fast", "--fast_convs"))
    assert swapped == [13]  # G_A's six blocks and its last convolution
    plain = sorted((tmp_path / "plain").rglob("*_fake.png"))
    fast = sorted((tmp_path / "fast").rglob("*_fake.png"))
    assert len(plain) == len(fast) == 2
    for a, b in zip(plain, fast, strict=True):
        diff = np.abs(np.asarray(Image.open(a), dtype=int) - np.asarray(Image.open(b), dtype=int))
        assert diff.max() <= 1


def test_a_network_with_nothing_to_swap_or_a_gpu_warns():
    with pytest.warns(UserWarning, match="no 3x3 convolution of 256"):
        use_fast_convs(build_generator("unet_128", 3, 3, 64, norm="batch"), torch.device("cpu"))
    net = build_generator("resnet_6blocks", 3, 3, 64, norm="instance")
    with pytest.warns(UserWarning, match="for the CPU"):
        use_fast_convs(net, torch.device("cuda"))
    assert not any(isinstance(m, (WinogradConv2d, KernelRowsConv2d)) for m in net.modules())


@pytest.mark.parametrize("extra, named", [(["--backend", "onnxruntime"], "--backend onnxruntime"),
                                          (["--amp"], "--amp")])
def test_fast_convs_with_another_backend_or_amp_is_one_clear_message(tmp_path, extra, named):
    run_folder(tmp_path)
    with pytest.raises(I2IError, match=named.replace("-", r"\-")) as error:
        load_script("test").main(argv_of(tmp_path, "x", "--fast_convs", *extra))
    assert "--fast_convs" in str(error.value)


@pytest.mark.slow
def test_under_compile_the_layers_keep_their_algorithms(monkeypatch):
    """test.py --fast_convs --compile: the Winograd layers run as one operator between the compiled parts."""
    import shutil

    import torch._inductor.config as inductor_config

    from networks import winograd
    from networks.norm import get_norm_layer
    from networks.resnet import ResnetGenerator
    from util import runtime

    if not shutil.which("g++") and not shutil.which("c++"):
        pytest.skip("no C++ compiler: torch.compile cannot run on the CPU here")
    if winograd.winograd_operator is None:
        pytest.skip(f"PyTorch {torch.__version__} has no torch.library.custom_op: compiled, the layer is direct")
    calls = []
    plain_winograd = winograd.winograd_conv3x3
    monkeypatch.setattr(winograd, "winograd_conv3x3", lambda *args: calls.append(1) or plain_winograd(*args))
    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, 64, norm_layer=get_norm_layer("instance"), n_blocks=1).eval()  # compiles faster
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    freezing = getattr(inductor_config, "freezing", False)  # prepare_network sets it for inference
    try:
        with torch.no_grad():
            expected = net(x)
            assert convert_to_fast(net) == 3
            compiled = runtime.prepare_network(net, torch.device("cpu"), compile=True, training=False)
            calls.clear()
            got = compiled(x)
    finally:
        inductor_config.freezing = freezing
    assert len(calls) == 2  # the block's two convolutions, through the operator
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)


def test_translate_py_fast_convs_swaps_the_layers_and_keeps_the_images(tmp_path):
    from inference import load_translator

    run_folder(tmp_path)
    folder = tmp_path / "checkpoints" / "run"
    fast = load_translator(folder, fast_convs=True)
    assert sum(isinstance(m, (WinogradConv2d, KernelRowsConv2d)) for m in fast.net.modules()) == 13
    translate = load_script("translate")
    source = str(tmp_path / "data" / "testA")
    plain = translate.main([source, "--checkpoint", str(folder), "--output", str(tmp_path / "plain")])
    quick = translate.main([source, "--checkpoint", str(folder), "--output", str(tmp_path / "fast"), "--fast_convs"])
    for a, b in zip(plain, quick, strict=True):
        diff = np.abs(np.asarray(Image.open(a), dtype=int) - np.asarray(Image.open(b), dtype=int))
        assert diff.max() <= 1
    with pytest.raises(I2IError, match="--fast_convs"):
        load_translator(folder, fast_convs=True, backend="onnxruntime")


@pytest.mark.parametrize("band_bytes", [1, 2**20])
def test_bands_of_tile_rows_give_the_whole_convolution(monkeypatch, band_bytes):
    """Tiles in bands (one tile row each at 1 byte; a few rows at 1 MiB), partial tiles at the edges, batch 2."""
    import networks.winograd

    monkeypatch.setattr(networks.winograd, "BAND_BYTES", band_bytes)
    torch.manual_seed(0)
    x = torch.randn(2, 16, 31, 22, dtype=torch.float64)
    weight, bias = torch.randn(24, 16, 3, 3, dtype=torch.float64), torch.randn(24, dtype=torch.float64)
    got = winograd_conv3x3(x, transform_weight(weight), bias)
    torch.testing.assert_close(got, F.conv2d(x, weight, bias), rtol=0, atol=1e-10)


def test_buffers_made_in_inference_mode_serve_training_calls_after():
    torch.manual_seed(0)
    x, weight = torch.randn(1, 8, 10, 10), torch.randn(8, 8, 3, 3)
    with torch.inference_mode():
        winograd_conv3x3(torch.randn(1, 8, 30, 30), transform_weight(weight))  # buffers larger than needed below
    w = weight.clone().requires_grad_(True)
    winograd_conv2d(x, w).sum().backward()
    torch.testing.assert_close(winograd_conv2d(x, w), F.conv2d(x, w), rtol=0, atol=1e-4)
