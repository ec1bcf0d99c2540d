"""Networks: every registered name builds, matches the reference's layout, and old checkpoints load."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from networks import (
    DISCRIMINATORS,
    GENERATORS,
    INIT_TYPES,
    NORMS,
    build_discriminator,
    build_generator,
    get_norm_layer,
    init_weights,
)
from networks.compat import describe_mismatch, load_state_dict_compat, strip_legacy_norm_keys
from tests.helpers import require_fixtures
from util.errors import I2IError

FIXTURES = Path(__file__).resolve().parents[2] / "shared/fixtures/reference/networks"
G_SIDE = {"unet_256": 256, "unet_128": 128}  # U-Nets need sides divisible by 2**levels; others take 32
D_OUT_SIDE = {"basic": 2, "n_layers": 2, "pixel": 32,  # logit map side for a 32x32 input
              "antialias_basic": 2, "antialias_n_layers": 2, "global": 1}


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def generator(netG: str, ngf: int = 8, **kw) -> nn.Module:
    return build_generator(netG, kw.pop("input_nc", 3), kw.pop("output_nc", 3), ngf, **kw)


# ---------------------------------------------------------------- every registry entry builds


@pytest.mark.parametrize("norm", NORMS.names())
@pytest.mark.parametrize("name", GENERATORS.names())
def test_every_generator_builds_and_keeps_the_image_size(name: str, norm: str) -> None:
    side = G_SIDE.get(name, 32)
    net = build_generator(name, 3, 2, 4, norm=norm, use_dropout=True)
    out = net(torch.randn(2, 3, side, side))
    assert out.shape == (2, 2, side, side)
    assert out.abs().max() <= 1  # tanh output


@pytest.mark.parametrize("norm", NORMS.names())
@pytest.mark.parametrize("name", DISCRIMINATORS.names())
def test_every_discriminator_builds_and_gives_a_logit_map(name: str, norm: str) -> None:
    net = build_discriminator(name, 6, 4, norm=norm)
    side = D_OUT_SIDE[name]
    assert net(torch.randn(2, 6, 32, 32)).shape == (2, 1, side, side)


@pytest.mark.parametrize("name", INIT_TYPES.names())
def test_every_init_type_builds(name: str) -> None:
    net = build_discriminator("basic", 3, 4, norm="batch", init_type=name)
    assert torch.isfinite(net(torch.randn(2, 3, 32, 32))).all()


def test_unknown_names_raise_a_user_error_naming_the_option() -> None:
    with pytest.raises(I2IError, match=r"--netG 'resnet_9block'.*resnet_9blocks"):
        build_generator("resnet_9block", 3, 3)
    with pytest.raises(I2IError, match="--norm 'group'"):
        get_norm_layer("group")
    with pytest.raises(I2IError, match="--init_type"):
        build_discriminator("basic", 3, 8, init_type="uniform")


# ---------------------------------------------------------------- sizes and layout of the reference


def _count(build, *args, norm: str, **kw) -> int:
    with torch.device("meta"):  # no memory, no init: only shapes
        return n_params(build(*args, norm_layer=get_norm_layer(norm), **kw))


@pytest.mark.parametrize(
    "kind, name, in_nc, norm, expected",
    [
        ("G", "resnet_9blocks", 3, "instance", 11_378_179),
        ("G", "resnet_9blocks", 3, "batch", 11_383_427),
        ("G", "resnet_6blocks", 3, "instance", 7_837_699),
        ("G", "unet_256", 3, "batch", 54_413_955),
        ("G", "unet_256", 3, "instance", 54_409_603),
        ("G", "unet_128", 3, "batch", 41_828_995),
        ("D", "basic", 3, "instance", 2_764_737),
        ("D", "basic", 6, "batch", 2_768_705),
        ("D", "pixel", 3, "instance", 8_705),
        ("D", "pixel", 3, "batch", 8_832),
    ],
)
def test_parameter_counts_match_the_reference_at_width_64(kind, name, in_nc, norm, expected) -> None:
    if kind == "G":
        count = _count(GENERATORS.get(name), in_nc, 3, 64, norm=norm, use_dropout=False)
    else:
        count = _count(DISCRIMINATORS.get(name), in_nc, 64, norm=norm, n_layers=3)
    assert count == expected


def test_norm_none_keeps_the_reference_bias_quirk() -> None:
    keys = generator("resnet_6blocks", norm="none").state_dict().keys()
    assert "model.4.bias" not in keys and "model.10.conv_block.1.bias" not in keys  # no bias, like batch
    assert "model.23.bias" in keys  # the output conv always has one
    assert not any("running_mean" in k for k in keys)


def test_norm_layers_have_the_documented_state() -> None:
    bn, inorm, none = (get_norm_layer(n)(4) for n in ("batch", "instance", "none"))
    assert isinstance(bn, nn.BatchNorm2d) and bn.affine and bn.track_running_stats
    assert isinstance(inorm, nn.InstanceNorm2d) and not inorm.affine and not list(inorm.state_dict())
    assert isinstance(none, nn.Identity)


# ---------------------------------------------------------------- initialisation statistics


def _init_probe() -> nn.Module:
    return nn.Sequential(nn.Conv2d(64, 128, 3), nn.BatchNorm2d(512), nn.Linear(256, 128), nn.ConvTranspose2d(64, 32, 4))


def _fan_in(w: torch.Tensor) -> int:
    return w[0].numel()


def _fan_out(w: torch.Tensor) -> int:
    return w.shape[0] * w[0, 0].numel()


EXPECTED_STD = {  # std of a conv/linear weight as a function of (weight, gain), per init type
    "normal": lambda w, g: g,
    "xavier": lambda w, g: g * math.sqrt(2.0 / (_fan_in(w) + _fan_out(w))),
    "kaiming": lambda w, g: math.sqrt(2.0 / _fan_in(w)),
    "orthogonal": lambda w, g: g / math.sqrt(max(w.shape[0], _fan_in(w))),
}


@pytest.mark.parametrize("init_type", INIT_TYPES.names())
def test_init_types_give_the_documented_statistics(init_type: str) -> None:
    gain = 0.5
    net = init_weights(_init_probe(), init_type, gain)
    conv, bn, linear, deconv = net
    for layer in (conv, linear, deconv):
        w = layer.weight.detach()
        assert abs(w.mean().item()) < 0.1 * EXPECTED_STD[init_type](w, gain)
        assert w.std().item() == pytest.approx(EXPECTED_STD[init_type](w, gain), rel=0.1)
        assert torch.count_nonzero(layer.bias) == 0
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.1)
    assert bn.weight.std().item() == pytest.approx(gain, rel=0.15)
    assert torch.count_nonzero(bn.bias) == 0
    if init_type == "orthogonal":  # rows of the flattened weight are orthogonal with norm `gain`
        w = conv.weight.detach().flatten(1)
        assert torch.allclose(w @ w.T, gain**2 * torch.eye(w.shape[0]), atol=1e-4)


# ---------------------------------------------------------------- the reference's own files

MANIFEST = json.loads((FIXTURES / "manifest.json").read_text()) if (FIXTURES / "manifest.json").exists() else []


@pytest.fixture
def reference_fixtures() -> None:
    require_fixtures(FIXTURES / "manifest.json")  # skips where absent, fails under CI=true


needs_fixtures = pytest.mark.usefixtures("reference_fixtures")


def _build_from_manifest(entry: dict) -> nn.Module:
    width = entry["ngf_or_ndf"]
    if entry["kind"] == "G":
        return build_generator(
            entry["netG"], entry["input_nc"], entry["output_nc"], width,
            norm=entry["norm"], use_dropout=entry["use_dropout"],
        )
    return build_discriminator(
        entry["netD"], entry["input_nc"], width, n_layers_D=entry.get("n_layers_D", 3), norm=entry["norm"]
    )


def _load(path: Path):
    return torch.load(path, map_location="cpu", weights_only=True)


@needs_fixtures
@pytest.mark.parametrize("entry", MANIFEST or [{}], ids=[e["name"] for e in MANIFEST] or ["absent"])
def test_reference_checkpoint_loads_strictly_and_reproduces_its_output(entry: dict) -> None:
    stem = FIXTURES / entry["name"]
    files = [stem.with_name(stem.name + ".pth")]
    if entry["norm"] == "instance":
        files.append(stem.with_name(stem.name + ".legacy_keys.pth"))
        assert files[-1].exists(), "instance-norm stems ship a legacy_keys variant"
    io = _load(stem.with_name(stem.name + ".io.pt"))
    for path in files:
        net = _build_from_manifest(entry)
        state = _load(path)
        load_state_dict_compat(net, state, net_name=entry["name"], source=str(path))
        assert set(net.state_dict()) == set(strip_legacy_norm_keys(net, state))
        assert len(net.state_dict()) == entry["n_tensors"]
        with torch.no_grad():
            out = net.eval()(io["input"])
        assert out.shape == tuple(entry["output_shape"])
        torch.testing.assert_close(out, io["output"], atol=1e-5, rtol=0)


@needs_fixtures
def test_legacy_instance_norm_keys_are_stripped_but_real_keys_kept() -> None:
    net = _build_from_manifest(next(e for e in MANIFEST if e["name"] == "G_resnet_9blocks_instance"))
    legacy = _load(FIXTURES / "G_resnet_9blocks_instance.legacy_keys.pth")
    assert "model.10.conv_block.2.running_mean" in legacy
    with pytest.raises(RuntimeError, match="running stats"):  # plain PyTorch refuses them
        net.load_state_dict(legacy, strict=True)
    cleaned = strip_legacy_norm_keys(net, legacy)
    assert not any(k.endswith(("running_mean", "running_var")) for k in cleaned)
    assert set(cleaned) == set(net.state_dict())
    assert describe_mismatch(net, legacy, net_name="G_A") is None  # it judges the file as the loader will


# ---------------------------------------------------------------- old-file quirks


def test_batchnorm_file_without_num_batches_tracked_loads() -> None:
    source = generator("unet_128", norm="batch")
    state = source.state_dict()  # carries _metadata with the current BatchNorm version
    old = OrderedDict((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))
    old._metadata = state._metadata
    with pytest.raises(RuntimeError):
        generator("unet_128", norm="batch").load_state_dict(old, strict=True)
    target = generator("unet_128", norm="batch")
    load_state_dict_compat(target, old, net_name="G", source="old.pth")
    torch.testing.assert_close(target.state_dict()["model.model.1.model.2.running_var"],
                               state["model.model.1.model.2.running_var"])


def test_dataparallel_prefix_is_removed() -> None:
    source = build_discriminator("basic", 3, 8)
    wrapped = {f"module.{k}": v for k, v in source.state_dict().items()}
    target = build_discriminator("basic", 3, 8)
    load_state_dict_compat(target, wrapped, net_name="D", source="dp.pth")
    torch.testing.assert_close(target.model[2].weight, source.model[2].weight)


def test_a_file_that_is_not_a_state_dict_is_reported_with_its_name() -> None:
    with pytest.raises(I2IError, match=r"^ckpt\.pth: .*state_dict"):
        load_state_dict_compat(generator("resnet_6blocks"), {"epoch": 3}, net_name="G", source="ckpt.pth")


# ---------------------------------------------------------------- mismatch messages name the option


def _hint(stored: nn.Module, built: nn.Module, name: str = "G_A") -> str:
    message = describe_mismatch(built, stored.state_dict(), net_name=name)
    assert message is not None
    with pytest.raises(I2IError) as caught:  # the loader raises the same advice, prefixed by the file
        load_state_dict_compat(built, stored.state_dict(), net_name=name, source="ckpts/latest_net_G.pth")
    assert str(caught.value) == f"ckpts/latest_net_G.pth: {message}"
    return message


def test_spectral_norm_on_one_side_only_points_at_the_flag() -> None:
    plain, normalised = (build_discriminator("basic", 3, 8, spectral_norm=sn) for sn in (False, True))
    assert "(add --spectral_norm)" in _hint(normalised, build_discriminator("basic", 3, 8), "D_A")
    assert "(leave out --spectral_norm)" in _hint(plain, normalised, "D_A")


def test_matching_state_dict_gives_no_message() -> None:
    net = generator("resnet_9blocks", norm="instance")
    assert describe_mismatch(net, generator("resnet_9blocks", norm="instance").state_dict(), net_name="G") is None


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_dropout_index_shift_points_at_no_dropout(norm: str) -> None:
    without, with_ = (generator("resnet_9blocks", norm=norm, use_dropout=d) for d in (False, True))
    assert "add --no_dropout" in _hint(without, with_)
    assert "leave out --no_dropout" in _hint(with_, without)


def test_norm_mismatch_points_at_norm() -> None:
    message = _hint(generator("unet_128", norm="batch"), generator("unet_128", norm="instance"))
    assert "--norm batch" in message and "--netG" not in message
    assert "--norm instance" in _hint(generator("resnet_6blocks", norm="instance"), generator("resnet_6blocks"))


def test_generator_family_and_depth_point_at_netG() -> None:
    assert "--netG resnet_6blocks" in _hint(generator("resnet_6blocks"), generator("resnet_9blocks"))
    assert "--netG unet_128" in _hint(generator("unet_128"), generator("resnet_9blocks"))
    assert "--netG resnet_9blocks" in _hint(generator("resnet_9blocks"), generator("unet_256"))


def test_width_and_channels_point_at_their_options() -> None:
    message = _hint(generator("resnet_9blocks", ngf=8), generator("resnet_9blocks", ngf=16))
    assert "--ngf 8" in message and "--netG" not in message
    message = _hint(generator("unet_128", input_nc=1, output_nc=2), generator("unet_128"))
    assert "1 to 2 channels" in message and "--input_nc" in message
    assert "--ndf 8" in _hint(build_discriminator("basic", 3, 8), build_discriminator("basic", 3, 16), "D_A")


def test_discriminator_depth_and_kind_point_at_netD() -> None:
    five = build_discriminator("n_layers", 6, 8, n_layers_D=5)
    assert "--netD n_layers --n_layers_D 5" in _hint(five, build_discriminator("basic", 6, 8), "D")
    assert "--netD pixel" in _hint(build_discriminator("pixel", 6, 8), five, "D")
    assert "6 input channels" in _hint(build_discriminator("basic", 6, 8), build_discriminator("basic", 3, 8), "D")
    assert "not a discriminator" in _hint(generator("resnet_6blocks"), build_discriminator("basic", 3, 8), "D")


def test_unrecognised_layouts_fall_back_to_listing_keys() -> None:
    built = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3))
    stored = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3))
    message = _hint(stored, built, "G")
    assert "2 unexpected key(s) (2.weight, 2.bias)" in message and "--netG/--netD" in message
