"""The `unet_upsample` generator, the `global` discriminator and the anti-aliased resampling blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from networks import build_discriminator, build_generator
from networks.antialias import Downsample, Upsample
from util.errors import I2IError


@pytest.mark.parametrize("side", [32, 64])
def test_unet_upsample_keeps_the_size_and_uses_no_transposed_convolution(side):
    net = build_generator("unet_upsample", 1, 2, 4, norm="batch")
    out = net(torch.randn(2, 1, side, side))
    assert out.shape == (2, 2, side, side) and out.abs().max() <= 1
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    ups = [m for m in net.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 5 and all(m.mode == "nearest" for m in ups)


def test_unet_upsample_concatenates_the_encoder_features():
    net = build_generator("unet_upsample", 3, 3, 4, norm="instance")
    widths = [m.out_channels for level in net.down for m in level if isinstance(m, nn.Conv2d)]
    decoder_inputs = [m.in_channels for level in net.up for m in level if isinstance(m, nn.Conv2d)]
    final_input = [m.in_channels for m in net.final if isinstance(m, nn.Conv2d)]
    assert widths == [4, 8, 16, 32, 32]
    # each decoder conv takes the previous level's output and the same-resolution encoder features
    assert decoder_inputs == [32, 2 * 32, 2 * 16, 2 * 8] and final_input == [2 * 4]


def test_unet_upsample_names_the_size_it_needs():
    net = build_generator("unet_upsample", 3, 3, 4)
    with pytest.raises(I2IError, match="multiples of 32"):
        net(torch.randn(1, 3, 48, 40))


@pytest.mark.parametrize("size", [(32, 32), (64, 48), (128, 96)])
def test_global_discriminator_gives_one_score_per_image(size):
    net = build_discriminator("global", 3, 4, norm="batch")
    assert net(torch.randn(3, 3, *size)).shape == (3, 1, 1, 1)


def test_global_discriminator_depth_follows_n_layers():
    shallow = build_discriminator("global", 3, 4, n_layers_D=1, norm="instance")
    deep = build_discriminator("global", 3, 4, n_layers_D=4, norm="instance")
    strided = [sum(1 for m in net.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2))
               for net in (shallow, deep)]
    assert strided == [2, 5]


def test_antialiased_resampling_halves_and_doubles_and_keeps_constants():
    x = torch.full((1, 4, 10, 12), 0.7)
    down, up = Downsample(4), Upsample(4)
    assert down(x).shape == (1, 4, 5, 6) and torch.allclose(down(x), torch.full_like(down(x), 0.7))
    assert up(x).shape == (1, 4, 20, 24) and torch.allclose(up(x), torch.full_like(up(x), 0.7))
    assert [name for name, _ in down.named_buffers()] == ["filt"] and not list(down.parameters())


def test_antialiased_downsampling_blurs_before_subsampling():
    stripes = torch.zeros(1, 1, 8, 8)
    stripes[..., ::2] = 1.0  # the highest frequency: plain subsampling keeps only the ones
    assert torch.equal(stripes[..., ::2, ::2], torch.ones(1, 1, 4, 4))
    assert torch.allclose(Downsample(1)(stripes)[..., :, 1:-1], torch.full((1, 1, 4, 2), 0.5))
