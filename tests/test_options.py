"""Command-line options: the reference's names and defaults, model hooks, registry choices, legacy names,
checks, the saved options files and the embedded demo presets."""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import pytest
import torch

from data import DATASETS, PREPROCESS_MODES
from data.demo import make_demo_data
from models import MODELS
from models.losses import GAN_LOSSES
from models.schedulers import LR_POLICIES
from networks import DISCRIMINATORS, GENERATORS, INIT_TYPES, NORMS
from options import TestOptions, TrainOptions
from util.errors import I2IError

INF = float("inf")

# Section 1.2 of the reference's behaviour, with i2i's documented differences:
# --dataroot defaults to None (= the embedded demo data) and i2i adds --seed and --wandb_project_name.
BASE_DEFAULTS = {
    "dataroot": None,
    "name": "experiment_name",
    "use_wandb": False,
    "gpu_ids": "0",
    "checkpoints_dir": "./checkpoints",
    "model": "cycle_gan",
    "input_nc": 3,
    "output_nc": 3,
    "ngf": 64,
    "ndf": 64,
    "netD": "basic",
    "netG": "resnet_9blocks",
    "n_layers_D": 3,
    "norm": "instance",
    "init_type": "normal",
    "init_gain": 0.02,
    "no_dropout": False,
    "residual_output": False,
    "affine_output": False,
    "affine_smooth": 1,
    "affine_edge_sigma": 0.0,
    "preset": "none",
    "dataset_mode": "unaligned",
    "direction": "AtoB",
    "serial_batches": False,
    "num_threads": 4,
    "batch_size": 1,
    "load_size": 286,
    "crop_size": 256,
    "max_dataset_size": INF,
    "preprocess": "resize_and_crop",
    "no_flip": False,
    "display_winsize": 256,
    "epoch": "latest",
    "load_iter": 0,
    "verbose": False,
    "suffix": "",
    # i2i additions
    "seed": None,
    "wandb_project_name": "CycleGAN-and-pix2pix",
    "checkpoint_format": "pth",  # docs/troubleshooting.md
    "amp": False,  # speed: docs/scaling.md
    "amp_dtype": "auto",
    "channels_last": False,
    "compile": False,
    "no_tf32": False,
    "plugin": [],  # docs/plugins.md
    "no_plugin_autoload": False,
    "list": False,
}

# Section 1.3.
TRAIN_DEFAULTS = {
    "display_freq": 400,
    "display_ncols": 4,
    "display_id": 1,
    "display_server": "http://localhost",
    "display_env": "main",
    "display_port": 8097,
    "update_html_freq": 1000,
    "print_freq": 100,
    "no_html": False,
    "save_latest_freq": 5000,
    "save_epoch_freq": 5,
    "save_by_iter": False,
    "continue_train": False,
    "epoch_count": 1,
    "phase": "train",
    "n_epochs": 100,
    "n_epochs_decay": 100,
    "beta1": 0.5,
    "lr": 0.0002,
    "lr_D": 0.0,
    "ema_decay": 0.0,
    "diff_augment": "",
    "spectral_norm": False,
    "gan_mode": "lsgan",
    "pool_size": 50,
    "lr_policy": "linear",
    "lr_decay_iters": 50,
    # i2i additions: torchrun and optimizer kernels (docs/scaling.md)
    "sync_bn": False,
    "bucket_cap_mb": 25.0,
    "dist_timeout": 1800.0,
    "optimizer_impl": "auto",
    # i2i addition: activation checkpointing (networks/activation_checkpointing.py, docs/scaling.md)
    "checkpoint_activations": False,
    # i2i additions: docs/troubleshooting.md, engine/training_state.py
    "keep_last": 0,
    "overwrite_run": False,
    "nan_policy": "stop",
    # i2i additions: live feedback (README) and evaluation during training (engine/evaluator.py)
    "use_tensorboard": False,
    "eval_freq": 0,
    "eval_metric": "fid",
    "inception_weights": None,
    "lpips_weights": None,
}

# Section 1.4; the reference's load_size=256 becomes "follow --crop_size" in i2i (checked separately).
TEST_DEFAULTS = {
    "results_dir": "./results/",
    "aspect_ratio": 1.0,
    "phase": "test",
    "eval": False,
    "num_test": 50,
    "model": "test",
    "load_size": None,  # resolved to --crop_size after parsing
    # i2i additions: any-size, tiled and exported inference (inference/tiling.py, export.py)
    "backend": "torch",
    "tile": 0,
    "tile_overlap": 32,
    "tile_stat_passes": 2,
    "fast_convs": False,
    "calibration_dir": None,  # --backend onnxruntime_int8 (inference/int8.py)
    "calibration_images": 32,
}

TRAIN_ONLY = set(TRAIN_DEFAULTS) - {"phase"}


@pytest.fixture
def dataroot(tmp_path: Path) -> Path:
    """An existing (empty) folder: parsing never looks inside, and a given --dataroot keeps the demo away."""
    root = tmp_path / "data"
    root.mkdir()
    return root


def parse_train(dataroot: Path, *args: str):
    return TrainOptions().parse(["--dataroot", str(dataroot), "--gpu_ids", "-1", *args])


def parse_test(dataroot: Path, *args: str):
    return TestOptions().parse(["--dataroot", str(dataroot), "--gpu_ids", "-1", *args])


# -- names and defaults -----------------------------------------------------------------------------


def _same(actual, expected) -> bool:
    """Equal, and of the same type (so '5' does not pass for 5, nor 1 for True)."""
    return actual == expected and type(actual) is type(expected)


@pytest.mark.parametrize("dest, default", sorted({**BASE_DEFAULTS, **TRAIN_DEFAULTS}.items()))
def test_train_parser_has_reference_option_and_default(dest, default):
    parser = TrainOptions().make_parser()
    action = parser._option_string_actions.get(f"--{dest}")
    assert action is not None, f"--{dest} is missing"
    assert action.dest == dest
    assert _same(parser.get_default(dest), default), (dest, parser.get_default(dest))


@pytest.mark.parametrize("dest, default", sorted({**BASE_DEFAULTS, **TEST_DEFAULTS}.items()))
def test_test_parser_has_reference_option_and_default(dest, default):
    parser = TestOptions().make_parser()
    assert f"--{dest}" in parser._option_string_actions, f"--{dest} is missing"
    assert _same(parser.get_default(dest), default), (dest, parser.get_default(dest))


def test_test_parser_has_no_train_options():
    parser = TestOptions().make_parser()
    for dest in TRAIN_ONLY:
        assert f"--{dest}" not in parser._option_string_actions, dest


def test_parsed_train_defaults(dataroot):
    opt = parse_train(dataroot)
    expected = {**BASE_DEFAULTS, **TRAIN_DEFAULTS, "dataroot": str(dataroot), "gpu_ids": [],
                "no_dropout": True,  # cycle_gan's hook
                "lambda_A": 10.0, "lambda_B": 10.0, "lambda_identity": 0.5, "lambda_warmup": 0, "lambda_R1": 0.0,
                "isTrain": True,
                "fast_convs": False}  # train.py and test.py each have it
    assert vars(opt) == expected


def test_parsed_test_defaults(dataroot):
    opt = parse_test(dataroot)
    expected = {**BASE_DEFAULTS, **TEST_DEFAULTS, "dataroot": str(dataroot), "gpu_ids": [],
                "load_size": 256,  # follows --crop_size
                "dataset_mode": "single", "model_suffix": "",  # the test model's hook
                "serial_batches": True, "no_flip": True, "display_id": -1,  # fixed at test time
                "isTrain": False}
    assert vars(opt) == expected


def test_test_load_size_follows_crop_size(dataroot):
    assert parse_test(dataroot, "--crop_size", "128").load_size == 128
    assert parse_test(dataroot, "--crop_size", "128", "--load_size", "150").load_size == 150
    assert parse_test(dataroot).load_size == 256


def test_test_options_fix_serial_batches_no_flip_display_id(dataroot):
    opt = parse_test(dataroot, "--model", "cycle_gan")
    assert opt.serial_batches is True and opt.no_flip is True and opt.display_id == -1


def test_user_values_are_parsed_with_their_types(dataroot):
    opt = parse_train(dataroot, "--epoch", "5", "--lr", "1e-3", "--max_dataset_size", "7", "--no_html", "--seed", "3")
    assert _same(opt.epoch, "5") and _same(opt.lr, 1e-3) and _same(opt.max_dataset_size, 7)
    assert opt.no_html is True and opt.seed == 3


def test_unknown_option_is_an_i2i_error(dataroot):
    with pytest.raises(I2IError, match="unrecognized arguments: --not_an_option"):
        parse_train(dataroot, "--not_an_option", "1")


# -- model hooks --------------------------------------------------------------------------------------


def test_cycle_gan_hook_in_training(dataroot):
    opts = TrainOptions()
    opt = opts.parse(["--dataroot", str(dataroot), "--gpu_ids", "-1", "--model", "cycle_gan"])
    assert opt.no_dropout is True
    assert opts.parser.get_default("no_dropout") is True  # a hook default, so the options file shows no change
    assert (opt.lambda_A, opt.lambda_B, opt.lambda_identity) == (10.0, 10.0, 0.5)
    assert parse_train(dataroot, "--lambda_A", "5", "--lambda_identity", "0").lambda_A == 5.0


def test_cycle_gan_hook_in_testing(dataroot):
    opt = parse_test(dataroot, "--model", "cycle_gan")
    assert opt.no_dropout is True
    for name in ("lambda_A", "lambda_B", "lambda_identity"):
        assert not hasattr(opt, name)
    with pytest.raises(I2IError, match="--lambda_A"):
        parse_test(dataroot, "--model", "cycle_gan", "--lambda_A", "5")


def test_pix2pix_hook_in_training(dataroot):
    opt = parse_train(dataroot, "--model", "pix2pix")
    assert (opt.norm, opt.netG, opt.dataset_mode) == ("batch", "unet_256", "aligned")
    assert (opt.pool_size, opt.gan_mode, opt.lambda_L1) == (0, "vanilla", 100.0)
    assert opt.no_dropout is False
    assert not hasattr(opt, "lambda_A")


def test_pix2pix_hook_in_testing(dataroot):
    opt = parse_test(dataroot, "--model", "pix2pix")
    assert (opt.norm, opt.netG, opt.dataset_mode) == ("batch", "unet_256", "aligned")
    for name in ("lambda_L1", "pool_size", "gan_mode"):
        assert not hasattr(opt, name)


def test_test_model_hook(dataroot):
    opt = parse_test(dataroot, "--model", "test", "--model_suffix", "_A")
    assert opt.dataset_mode == "single" and opt.model_suffix == "_A"
    assert opt.norm == "instance" and opt.no_dropout is False  # as the reference: no cycle_gan defaults


def test_test_model_cannot_train(dataroot):
    with pytest.raises(I2IError, match="--model test"):
        parse_train(dataroot, "--model", "test")


def test_user_values_beat_hook_defaults(dataroot):
    opt = parse_train(dataroot, "--model", "pix2pix", "--norm", "instance", "--gan_mode", "lsgan",
                    "--pool_size", "10", "--dataset_mode", "unaligned", "--netG=unet_128")
    assert (opt.norm, opt.gan_mode, opt.pool_size, opt.dataset_mode, opt.netG) == (
        "instance", "lsgan", 10, "unaligned", "unet_128")
    # only the options the user gave change; the hook's other defaults stay
    assert opt.lambda_L1 == 100.0
    opt = parse_test(dataroot, "--model", "pix2pix", "--norm", "instance")
    assert (opt.norm, opt.netG) == ("instance", "unet_256")


# -- choices from the registries ----------------------------------------------------------------------

CHOICES = [
    ("--netG", GENERATORS.names()),
    ("--netD", DISCRIMINATORS.names()),
    ("--norm", NORMS.names()),
    ("--init_type", INIT_TYPES.names()),
    ("--dataset_mode", DATASETS.names()),
    ("--model", MODELS.names()),
    ("--gan_mode", GAN_LOSSES.names()),
    ("--lr_policy", LR_POLICIES.names()),
    ("--preprocess", list(PREPROCESS_MODES)),
    ("--direction", ["AtoB", "BtoA"]),
]


@pytest.mark.parametrize("flag, names", CHOICES, ids=[flag for flag, _ in CHOICES])
def test_choices_come_from_the_registries(flag, names):
    parser = TrainOptions().make_parser()
    assert list(parser._option_string_actions[flag].choices) == names
    assert names  # never an empty registry


@pytest.mark.parametrize("flag, names", CHOICES, ids=[flag for flag, _ in CHOICES])
def test_every_registered_name_parses(flag, names, dataroot):
    for name in names:
        parse = parse_test if (flag, name) == ("--model", "test") else parse_train  # test only runs in test.py
        assert getattr(parse(dataroot, flag, name), flag[2:]) == name


@pytest.mark.parametrize(
    "flag, typo, closest",
    [
        ("--model", "cyclegan", "cycle_gan"),
        ("--netG", "resnet9", "resnet_9blocks"),
        ("--netG", "unet256", "unet_256"),
        ("--netD", "nlayers", "n_layers"),
        ("--norm", "instnce", "instance"),
        ("--init_type", "xavir", "xavier"),
        ("--dataset_mode", "unalligned", "unaligned"),
        ("--gan_mode", "lsgam", "lsgan"),
        ("--lr_policy", "linaer", "linear"),
        ("--preprocess", "resize_crop", "resize_and_crop"),
        ("--direction", "AtoC", "AtoB"),
    ],
)
def test_invalid_choice_names_the_closest_match(flag, typo, closest, dataroot):
    with pytest.raises(I2IError) as info:
        parse_train(dataroot, flag, typo)
    message = str(info.value)
    assert flag in message and f"'{typo}'" in message
    assert f"Did you mean '{closest}'?" in message


def test_invalid_choice_lists_the_valid_names(dataroot):
    with pytest.raises(I2IError) as info:
        parse_train(dataroot, "--norm", "layer")
    for name in NORMS.names():
        assert f"'{name}'" in str(info.value)


# -- legacy option names --------------------------------------------------------------------------------

LEGACY = [
    (["--niter", "5"], "n_epochs", 5),
    (["--niter=5"], "n_epochs", 5),
    (["--niter_decay", "7"], "n_epochs_decay", 7),
    (["--which_epoch", "3"], "epoch", "3"),
    (["--which_epoch=3"], "epoch", "3"),
    (["--loadSize", "300"], "load_size", 300),
    (["--fineSize", "128"], "crop_size", 128),
    (["--batchSize", "2"], "batch_size", 2),
    (["--batchSize=2"], "batch_size", 2),
    (["--which_direction", "BtoA"], "direction", "BtoA"),
    (["--resize_or_crop", "crop"], "preprocess", "crop"),
    (["--nThreads", "2"], "num_threads", 2),
    (["--which_model_netG", "unet_128"], "netG", "unet_128"),
    (["--which_model_netD", "n_layers"], "netD", "n_layers"),
    (["--no_lsgan"], "gan_mode", "vanilla"),
]


@pytest.mark.parametrize("args, dest, value", LEGACY, ids=[" ".join(a) for a, _, _ in LEGACY])
def test_legacy_names_are_accepted_with_a_future_warning(args, dest, value, dataroot):
    legacy = args[0].split("=")[0]
    with pytest.warns(FutureWarning, match=re.escape(legacy)):
        opt = parse_train(dataroot, *args)
    assert _same(getattr(opt, dest), value)


def test_legacy_names_work_at_test_time(dataroot):
    with pytest.warns(FutureWarning, match="--which_epoch"):
        assert parse_test(dataroot, "--which_epoch", "10").epoch == "10"


def test_modern_names_give_no_future_warning(dataroot):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        opt = parse_train(dataroot, "--n_epochs", "5", "--epoch", "3", "--batch_size", "2", "--gan_mode", "vanilla")
    assert (opt.n_epochs, opt.epoch, opt.batch_size, opt.gan_mode) == (5, "3", 2, "vanilla")


def test_legacy_name_as_a_value_is_left_alone(dataroot):
    # Only option names are rewritten: an experiment called "--niter" would be odd, but a value is a value.
    opt = parse_train(dataroot, "--name=--niter")
    assert opt.name == "--niter"


# -- suffix, gpu ids and value checks -----------------------------------------------------------------


def test_suffix_is_formatted_and_appended(dataroot):
    assert parse_train(dataroot, "--name", "exp", "--suffix", "{model}_{netG}").name == "exp_cycle_gan_resnet_9blocks"
    opt = parse_train(dataroot, "--name", "exp", "--model", "pix2pix", "--suffix", "{model}_{netG}_size{load_size}")
    assert opt.name == "exp_pix2pix_unet_256_size286"
    assert parse_train(dataroot, "--name", "exp").name == "exp"  # no suffix, no underscore
    assert parse_test(dataroot, "--name", "exp", "--crop_size", "64", "--suffix", "s{load_size}").name == "exp_s64"


@pytest.mark.parametrize("suffix", ["{not_an_option}", "{model"])
def test_bad_suffix_template_is_an_i2i_error(suffix, dataroot):
    with pytest.raises(I2IError, match="--suffix"):
        parse_train(dataroot, "--suffix", suffix)


@pytest.mark.parametrize("text, ids", [("-1", []), ("-1,-2", []), ("", [])])
def test_gpu_ids_for_the_cpu(text, ids, dataroot):
    # the = form: argparse would read a separate "-1,-2" as an option name (as in the reference)
    opt = TrainOptions().parse(["--dataroot", str(dataroot), f"--gpu_ids={text}"])
    assert opt.gpu_ids == ids


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback on a machine without CUDA")
def test_gpu_ids_without_cuda_fall_back_to_cpu_with_one_warning(dataroot):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        opt = TrainOptions().parse(["--dataroot", str(dataroot), "--gpu_ids", "0"])
    assert opt.gpu_ids == []
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert "--gpu_ids 0" in str(caught[0].message) and "CPU" in str(caught[0].message)


@pytest.mark.parametrize("text", ["x", "0,x", "1.5", "gpu0"])
def test_gpu_ids_not_integers_is_an_i2i_error(text, dataroot):
    with pytest.raises(I2IError, match=f"--gpu_ids {re.escape(text)}"):
        TrainOptions().parse(["--dataroot", str(dataroot), "--gpu_ids", text])


@pytest.mark.parametrize("name", ["batch_size", "load_size", "crop_size", "input_nc", "output_nc", "ngf", "ndf",
                                  "max_dataset_size"])
def test_base_numbers_must_be_positive(name, dataroot):
    with pytest.raises(I2IError, match=f"--{name}: must be an integer >= 1"):
        parse_train(dataroot, f"--{name}", "0")
    extra = ["--load_size", "8"] if name == "crop_size" else []  # at test time load_size follows crop_size
    with pytest.raises(I2IError, match=f"--{name}: must be an integer >= 1"):
        parse_test(dataroot, f"--{name}", "-3", *extra)


@pytest.mark.parametrize("name", ["display_freq", "update_html_freq", "print_freq", "save_latest_freq",
                                  "save_epoch_freq"])
def test_train_frequencies_must_be_positive(name, dataroot):
    with pytest.raises(I2IError, match=f"--{name}: must be an integer >= 1"):
        parse_train(dataroot, f"--{name}", "0")


@pytest.mark.parametrize("args", [["--n_epochs", "0", "--n_epochs_decay", "0"], ["--n_epochs", "-1"],
                                  ["--n_epochs_decay", "-1"]])
def test_epoch_counts_must_train_something(args, dataroot):
    with pytest.raises(I2IError, match="--n_epochs"):
        parse_train(dataroot, *args)
    assert parse_train(dataroot, "--n_epochs", "0", "--n_epochs_decay", "1").n_epochs == 0


def test_non_numeric_value_is_an_i2i_error(dataroot):
    with pytest.raises(I2IError, match="--batch_size"):
        parse_train(dataroot, "--batch_size", "two")


# -- the saved options files (section 5.2) --------------------------------------------------------------

FIRST_LINE = "----------------- Options ---------------"
LAST_LINE = "----------------- End -------------------"


def _save_train(dataroot: Path, checkpoints: Path, *args: str):
    options = TrainOptions()
    opt = options.parse(["--dataroot", str(dataroot), "--gpu_ids", "-1", "--checkpoints_dir", str(checkpoints),
                         "--name", "myexp", *args])
    options.save(opt)
    return opt


def test_train_opt_txt_matches_the_reference_format(dataroot, tmp_path, capsys):
    opt = _save_train(dataroot, tmp_path / "ckpt", "--batch_size", "2")
    text = (tmp_path / "ckpt" / "myexp" / "train_opt.txt").read_text()
    assert capsys.readouterr().out == text  # the same table is printed
    lines = text.split("\n")
    assert lines[0] == FIRST_LINE and lines[-2] == LAST_LINE and lines[-1] == ""
    body = lines[1:-2]
    names = [line[:25].strip() for line in body]
    assert names == sorted(vars(opt)) and all(line[25:27] == ": " for line in body)
    # literal lines: name right-aligned in 25 columns, value left-aligned in 30, then the default when it differs
    assert " " * 21 + "name: myexp" + " " * 25 + "\t[default: experiment_name]" in body
    assert " " * 18 + "isTrain: True" + " " * 26 + "\t[default: None]" in body
    assert " " * 15 + "batch_size: 2" + " " * 29 + "\t[default: 1]" in body
    assert " " * 18 + "gpu_ids: -1" + " " * 28 + "\t[default: 0]" in body  # still the raw string
    assert " " * 22 + "ngf: 64" + " " * 28 in body  # unchanged: no default comment
    assert " " * 15 + "no_dropout: True" + " " * 26 in body  # the hook's default counts as the default
    assert " " * 9 + "max_dataset_size: inf" + " " * 27 in body
    assert " " * 17 + "dataroot: " + f"{str(dataroot):<30}\t[default: None]" in body  # longer values are not cut
    assert not (tmp_path / "ckpt" / "myexp" / "test_opt.txt").exists()


def test_train_opt_json_round_trips(dataroot, tmp_path, capsys):
    opt = _save_train(dataroot, tmp_path / "ckpt", "--seed", "7", "--lr", "0.001")
    saved = json.loads((tmp_path / "ckpt" / "myexp" / "train_opt.json").read_text())
    expected = dict(vars(opt), gpu_ids="-1")  # saved before --gpu_ids is turned into a list, as in the .txt
    assert saved == expected
    assert saved["max_dataset_size"] == INF and saved["seed"] == 7 and saved["lr"] == 0.001
    assert saved["isTrain"] is True and saved["name"] == "myexp"


def test_test_options_are_saved_to_the_checkpoints_dir(dataroot, tmp_path, capsys):
    options = TestOptions()
    options.save(options.parse(["--dataroot", str(dataroot), "--gpu_ids", "-1", "--checkpoints_dir",
                                str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "results"), "--name", "myexp"]))
    folder = tmp_path / "ckpt" / "myexp"
    text = (folder / "test_opt.txt").read_text()
    assert text.startswith(FIRST_LINE + "\n") and text.endswith(LAST_LINE + "\n")
    assert " " * 18 + "isTrain: False" + " " * 25 + "\t[default: None]" in text.split("\n")
    assert json.loads((folder / "test_opt.json").read_text())["model"] == "test"
    assert not (folder / "train_opt.txt").exists() and not (tmp_path / "results").exists()


def test_parsing_writes_nothing(dataroot, tmp_path, capsys, monkeypatch):
    TrainOptions().parse(["--dataroot", str(dataroot), "--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path / "ckpt")])
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    TrainOptions().parse(["--gpu_ids", "-1", "--checkpoints_dir", str(tmp_path / "ckpt")])  # the demo: no data drawn
    assert not (tmp_path / "ckpt").exists() and list((tmp_path / "cwd").iterdir()) == []
    assert capsys.readouterr().out == ""


def test_checkpoints_dir_under_a_file_is_an_i2i_error(dataroot, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(I2IError, match="--checkpoints_dir"):
        _save_train(dataroot, blocker / "ckpt")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_checkpoints_dir_is_an_i2i_error(dataroot, tmp_path, capsys):
    folder = tmp_path / "ckpt" / "myexp"
    folder.mkdir(parents=True)
    folder.chmod(0o500)
    try:
        with pytest.raises(I2IError, match="--checkpoints_dir"):
            _save_train(dataroot, tmp_path / "ckpt")
    finally:
        folder.chmod(0o700)


# -- the embedded demo: no --dataroot ------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_cwd(tmp_path_factory) -> Path:
    """One working folder for all demo tests, so each demo dataset is drawn once."""
    return tmp_path_factory.mktemp("demo_cwd")


def _png_count(folder: Path) -> int:
    return len(list(folder.glob("*.png")))


def test_demo_presets_for_cycle_gan(demo_cwd, monkeypatch):
    monkeypatch.chdir(demo_cwd)
    options = TrainOptions()
    opt = options.parse(["--model", "cycle_gan", "--gpu_ids", "-1"])
    assert options.demo and options.notes == [
        "no --dataroot: i2i's generated demo data, with the demo presets of --model cycle_gan (--name demo_cycle_gan "
        "--preset recommended --ngf 16 --ndf 16 --load_size 72 --crop_size 64 --n_epochs 10 --n_epochs_decay 10 "
        "--display_freq 96 --print_freq 48 --save_epoch_freq 10); pass --dataroot to train on your own data",
        "--preset recommended: --affine_output True --affine_smooth 5 --affine_edge_sigma 0.1 --ema_decay 0.999 "
        "--lambda_A 2.0 --lambda_B 2.0 --lambda_identity 0.0"]
    make_demo_data(opt.dataset_mode)
    root = demo_cwd / opt.dataroot
    assert root.resolve().is_relative_to(demo_cwd.resolve())
    for split in ("trainA", "trainB", "testA", "testB"):
        assert _png_count(root / split) > 0, split
    assert (opt.name, opt.ngf, opt.crop_size, opt.display_id) == ("demo_cycle_gan", 16, 64, 0)
    assert opt.affine_output and opt.lambda_A == 2.0  # the demo shows the recipe
    reference = TrainOptions().parse(["--model", "cycle_gan", "--gpu_ids", "-1", "--preset", "none"])
    assert not reference.affine_output and reference.lambda_A == 10.0 and reference.ngf == 16  # the reference's
    assert opt.dataset_mode == "unaligned"


def test_demo_user_values_beat_presets(demo_cwd, monkeypatch):
    monkeypatch.chdir(demo_cwd)
    opts = TrainOptions()
    opt = opts.parse(["--model", "cycle_gan", "--gpu_ids", "-1", "--ngf", "32", "--name=mine"])
    assert (opt.ngf, opt.name) == (32, "mine")
    assert opt.ndf == 16  # the presets the user did not touch still apply
    assert opts.parser.get_default("ngf") == 64  # a user-given option keeps its true default for the options file


def test_no_demo_presets_with_a_dataroot(dataroot):
    opt = parse_train(dataroot, "--model", "cycle_gan")
    assert (opt.name, opt.ngf, opt.display_id) == ("experiment_name", 64, 1)


def test_demo_presets_for_pix2pix(demo_cwd, monkeypatch):
    monkeypatch.chdir(demo_cwd)
    opt = TrainOptions().parse(["--model", "pix2pix", "--gpu_ids", "-1"])
    root = make_demo_data(opt.dataset_mode)
    assert root == Path(opt.dataroot)
    assert _png_count(root / "train") > 0 and _png_count(root / "test") > 0
    assert (opt.name, opt.netG, opt.dataset_mode, opt.norm) == ("demo_pix2pix", "unet_128", "aligned", "batch")


def test_demo_at_test_time_uses_the_single_folder(demo_cwd, monkeypatch):
    monkeypatch.chdir(demo_cwd)
    opt = TestOptions().parse(["--gpu_ids", "-1"])
    make_demo_data(opt.dataset_mode)
    assert opt.model == "test" and opt.dataset_mode == "single"
    assert Path(opt.dataroot).name == "testA" and _png_count(demo_cwd / opt.dataroot) > 0
    assert (opt.name, opt.model_suffix, opt.no_dropout) == ("demo_cycle_gan", "_A", True)
    opt = TestOptions().parse(["--gpu_ids", "-1", "--direction", "BtoA"])
    assert Path(opt.dataroot).name == "testB"
