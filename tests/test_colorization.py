"""Colorization: sRGB <-> Lab in torch, the colorization dataset mode, and the model's RGB visuals."""

from __future__ import annotations

import math

import pytest
import torch

from data import create_dataset
from data.demo import make_colorization_demo
from models import create_model
from models.colorization_model import lab_batch_to_rgb
from options.train_options import TrainOptions
from tests.helpers import tiny_args, write_images
from util.color import lab_to_rgb, rgb_to_lab
from util.errors import I2IError

# sRGB (0..1) -> CIE Lab (D65), published values (e.g. Bruce Lindbloom's calculator, scikit-image's rgb2lab)
REFERENCE = [
    ((1.0, 0.0, 0.0), (53.2408, 80.0925, 67.2032)),
    ((0.0, 1.0, 0.0), (87.7347, -86.1827, 83.1793)),
    ((0.0, 0.0, 1.0), (32.2970, 79.1875, -107.8602)),
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((0.5, 0.5, 0.5), (53.3889, 0.0, 0.0)),
]


@pytest.mark.parametrize("rgb, lab", REFERENCE)
def test_rgb_to_lab_matches_reference_values(rgb, lab):
    got = rgb_to_lab(torch.tensor(rgb).view(3, 1, 1)).flatten()
    assert torch.allclose(got, torch.tensor(lab), atol=0.02), got


def test_lab_round_trip_on_a_batch():
    torch.manual_seed(0)
    rgb = torch.rand(4, 3, 16, 16)
    assert (lab_to_rgb(rgb_to_lab(rgb)) - rgb).abs().max() < 1e-4


def test_out_of_gamut_lab_is_clipped_not_nan():
    lab = torch.tensor([100.0, 127.0, -128.0, 5.0, -120.0, 120.0]).view(2, 3, 1, 1)
    rgb = lab_to_rgb(lab)
    assert torch.isfinite(rgb).all() and rgb.min() >= 0 and rgb.max() <= 1


def test_visual_conversion_is_batched_and_in_display_range():
    rgb = torch.rand(3, 3, 8, 8)
    lab = rgb_to_lab(rgb)
    L, ab = lab[:, :1] / 50 - 1, lab[:, 1:] / 110
    shown = lab_batch_to_rgb(L, ab)
    assert shown.shape == (3, 3, 8, 8)
    assert torch.allclose((shown + 1) / 2, rgb, atol=1e-4)


def colorization_options(tmp_path, *extra: str):
    write_images(tmp_path / "data" / "train", 2, (32, 32))
    return TrainOptions().parse(tiny_args(tmp_path / "data", tmp_path, 32) + ["--model", "colorization", "--seed", "0",
                                                                               "--netG", "unet_upsample", *extra])


def test_dataset_gives_lightness_and_colour(tmp_path):
    opt = colorization_options(tmp_path)
    assert (opt.dataset_mode, opt.input_nc, opt.output_nc, opt.direction) == ("colorization", 1, 2, "AtoB")
    item = create_dataset(opt).dataset[0]
    assert item["A"].shape == (1, 32, 32) and item["B"].shape == (2, 32, 32)
    assert item["A"].min() >= -1 and item["A"].max() <= 1 and item["B"].abs().max() <= 1.2
    rebuilt = lab_to_rgb(torch.cat([(item["A"] + 1) * 50, item["B"] * 110]))
    assert rebuilt.shape == (3, 32, 32) and math.isfinite(float(rebuilt.sum()))


def test_dataset_refuses_other_channel_counts(tmp_path):
    opt = colorization_options(tmp_path, "--output_nc", "3")
    with pytest.raises(I2IError, match="--input_nc 1 --output_nc 2"):
        create_dataset(opt)


def test_model_step_and_rgb_visuals(tmp_path):
    opt = colorization_options(tmp_path, "--batch_size", "2")
    model = create_model(opt)
    model.setup(opt)
    model.set_input(next(iter(create_dataset(opt))))
    model.optimize_parameters()
    assert all(math.isfinite(v) for v in model.get_current_losses().values())
    visuals = model.get_current_visuals()
    assert list(visuals) == ["real_A", "real_B_rgb", "fake_B_rgb"]
    assert visuals["real_A"].shape == (2, 1, 32, 32)
    assert visuals["real_B_rgb"].shape == visuals["fake_B_rgb"].shape == (2, 3, 32, 32)
    assert visuals["fake_B_rgb"].min() >= -1 and visuals["fake_B_rgb"].max() <= 1


def test_colorization_demo_data(tmp_path):
    root = make_colorization_demo(tmp_path / "color", source=tmp_path / "unaligned")
    assert len(list((root / "train").glob("*.png"))) == 2 * len(list((tmp_path / "unaligned" / "trainA").glob("*")))
    assert list((root / "test").glob("*.png"))
