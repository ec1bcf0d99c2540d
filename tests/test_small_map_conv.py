"""networks/small_map_conv.py: same numbers as nn.Conv2d / nn.ConvTranspose2d, native kernels on small CPU maps."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.profiler import profile

from networks import build_generator
from networks.small_map_conv import SMALL_MAP_POSITIONS, SmallMapConv2d, SmallMapConvTranspose2d

CASES = [  # (fast class, plain class, constructor arguments)
    (SmallMapConv2d, nn.Conv2d, dict(in_channels=16, out_channels=8, kernel_size=4, stride=2, padding=1)),
    (SmallMapConvTranspose2d, nn.ConvTranspose2d, dict(in_channels=16, out_channels=8, kernel_size=4, stride=2,
                                                       padding=1)),
    (SmallMapConvTranspose2d, nn.ConvTranspose2d, dict(in_channels=16, out_channels=8, kernel_size=3, stride=2,
                                                       padding=1, output_padding=1, bias=False)),
]


def pair(fast_cls: type, plain_cls: type, kwargs: dict) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    fast, plain = fast_cls(**kwargs), plain_cls(**kwargs)
    plain.load_state_dict(fast.state_dict())
    return fast, plain


def conv_kernels(run) -> set[str]:
    with profile() as prof:
        run()
    return {event.name for event in prof.events() if "conv" in event.name}


@pytest.mark.parametrize("fast_cls,plain_cls,kwargs", CASES)
def test_same_outputs_and_gradients_as_the_plain_module(fast_cls, plain_cls, kwargs) -> None:
    fast, plain = pair(fast_cls, plain_cls, kwargs)
    assert list(fast.state_dict()) == list(plain.state_dict())
    x = torch.randn(2, 16, 6, 6)
    x_fast, x_plain = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_fast, out_plain = fast(x_fast), plain(x_plain)
    torch.testing.assert_close(out_fast, out_plain, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out_plain)
    out_fast.backward(grad)
    out_plain.backward(grad)
    torch.testing.assert_close(x_fast.grad, x_plain.grad, rtol=1e-5, atol=1e-5)
    for p_fast, p_plain in zip(fast.parameters(), plain.parameters()):
        torch.testing.assert_close(p_fast.grad, p_plain.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fast_cls,plain_cls,kwargs", CASES)
def test_small_maps_take_the_native_kernels_large_maps_onednn(fast_cls, plain_cls, kwargs) -> None:
    if not torch.backends.mkldnn.is_available():
        pytest.skip("this PyTorch build has no oneDNN: there is no choice to test")
    fast, _ = pair(fast_cls, plain_cls, kwargs)
    small = torch.randn(1, 16, 8, 8, requires_grad=True)
    assert any("slow_conv" in name for name in conv_kernels(lambda: fast(small).sum().backward()))
    side = int(SMALL_MAP_POSITIONS**0.5) * 2
    large = torch.randn(2, 16, side, side, requires_grad=True)  # batch > 1: PyTorch itself picks oneDNN
    assert not any("slow_conv" in name for name in conv_kernels(lambda: fast(large).sum().backward()))
    assert torch.backends.mkldnn.enabled, "oneDNN must be switched back on after the call"


def test_no_grad_and_autocast_calls_work() -> None:
    fast, plain = pair(*CASES[1])
    x = torch.randn(1, 16, 4, 4)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fast(x).dtype == torch.bfloat16  # the plain path: autocast applies as usual


def test_unet_uses_them_and_matches_a_plain_unet() -> None:
    torch.manual_seed(0)
    fast = build_generator("unet_128", 3, 3, 8, norm="batch")
    plain = build_generator("unet_128", 3, 3, 8, norm="batch")
    for module in plain.modules():  # the same network with plain PyTorch layers
        if type(module) is SmallMapConv2d:
            module.__class__ = nn.Conv2d
        elif type(module) is SmallMapConvTranspose2d:
            module.__class__ = nn.ConvTranspose2d
    plain.load_state_dict(fast.state_dict())
    assert sum(isinstance(m, (SmallMapConv2d, SmallMapConvTranspose2d)) for m in fast.modules()) == 14
    x = torch.randn(2, 3, 128, 128)
    out_fast, out_plain = fast(x), plain(x)
    torch.testing.assert_close(out_fast, out_plain, rtol=1e-4, atol=1e-5)
    out_fast.mean().backward()
    out_plain.mean().backward()
    for p_fast, p_plain in zip(fast.parameters(), plain.parameters()):
        torch.testing.assert_close(p_fast.grad, p_plain.grad, rtol=1e-4, atol=1e-6)
