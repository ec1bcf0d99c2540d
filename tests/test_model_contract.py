"""The model contract, checked for every registered model (generated from the registry at collection time).

Each model is built at width 8 on the CPU from tiny images: one training step gives finite losses named by
`loss_names` and changes some weights, every `visual_names` entry resolves to an image batch, every
`model_names` entry saves to `<epoch>_net_<name>.pth` and loads back bit for bit, and the test-mode model
loads those files and translates a batch. A model may declare `contract_options` (extra CLI arguments, e.g. a
U-Net size); a test-only model (its option hook raises I2IError when training) gets the test-mode checks only.

Plugins are covered too: `I2I_CONTRACT_PLUGINS=my_pkg.plugin:path/to/x_model.py pytest tests/test_model_contract.py`
loads them (os.pathsep-separated `--plugin` values) before the models are listed.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch

from data import create_dataset
from models import MODELS, create_model
from options.plugin_options import component_registries
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tests.helpers import tiny_args, write_images
from util import plugins
from util.errors import I2IError

PLUGINS_ENV = "I2I_CONTRACT_PLUGINS"
SIZE = 32
BATCH = 2


def _registered_models() -> list[str]:
    for spec in filter(None, os.environ.get(PLUGINS_ENV, "").split(os.pathsep)):
        plugins.load_plugin(spec, component_registries().values())
    return MODELS.names()


MODEL_NAMES = _registered_models()


def universal_dataset(root: Path) -> Path:
    """One root that every built-in dataset mode can read: <phase>A/B, <phase>/ (A|B pairs), and images for single."""
    for i, split in enumerate(["trainA", "trainB", "testA", "testB"]):
        write_images(root / split, BATCH, (SIZE, SIZE), seed=i)
    for i, split in enumerate(["train", "test"]):
        write_images(root / split, BATCH, (2 * SIZE, SIZE), seed=10 + i)
    return root


def is_test_only(name: str) -> bool:
    """The reference's convention: a test-only model refuses `is_train=True` in its option hook."""
    try:
        MODELS.get(name).modify_commandline_options(TrainOptions().make_parser(), True)
    except I2IError:
        return True
    return False


def contract_args(name: str, root: Path, tmp: Path, train: bool) -> list[str]:
    return (tiny_args(root, tmp, SIZE, train=train)
            + ["--model", name, "--name", "contract", "--seed", "0", "--batch_size", str(BATCH), "--no_flip"]
            + list(getattr(MODELS.get(name), "contract_options", [])))


def build(options_class, args: list[str], *, setup: bool = True):
    """Parse, build the model and its loader as the drivers do; returns (model, opt, first batch)."""
    opt = options_class().parse(args)
    batch = next(iter(create_dataset(opt)))
    model = create_model(opt)
    if opt.isTrain and hasattr(model, "data_dependent_initialize"):  # as train.py: parts sized from the data
        model.data_dependent_initialize(batch)
    if setup:
        model.setup(opt)
    return model, opt, batch


def state_dicts(model) -> dict[str, dict[str, torch.Tensor]]:
    return {name: copy.deepcopy(net.state_dict()) for name, net in zip(model.model_names, model.networks())}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys(), name
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), f"net{name}.{key} differs after save/load"


def assert_visuals(model) -> None:
    visuals = model.get_current_visuals()
    assert list(visuals) == model.visual_names and visuals, "visual_names must name at least one image"
    for name, image in visuals.items():
        assert torch.is_tensor(image) and image.dim() == 4, f"visual {name}: expected an N x C x H x W batch"
        assert image.shape[0] == BATCH, f"visual {name}: batch of {image.shape[0]}, expected {BATCH}"
        assert torch.isfinite(image).all(), f"visual {name} has NaN/inf"


@pytest.fixture
def data_root(tmp_path) -> Path:
    return universal_dataset(tmp_path / "data")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_training_step_visuals_and_checkpoints(name, tmp_path, data_root):
    if is_test_only(name):
        pytest.skip(f"{name} is a test-only model")
    model, opt, batch = build(TrainOptions, contract_args(name, data_root, tmp_path, train=True))
    assert model.model_names and model.optimizers, "a trainable model needs model_names and optimizers"
    before = state_dicts(model)
    model.set_input(batch)
    model.optimize_parameters()

    losses = model.get_current_losses()
    assert list(losses) == model.loss_names and losses, "loss_names must name at least one loss"
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
    after = state_dicts(model)
    assert any(not torch.equal(before[n][k], v) for n in after for k, v in after[n].items()
               if v.is_floating_point()), "one training step changed no weight"
    model.compute_visuals()
    assert_visuals(model)

    model.save_networks("latest")
    run_dir = Path(opt.checkpoints_dir) / opt.name
    for net_name in model.model_names:
        assert (run_dir / f"latest_net_{net_name}.pth").is_file()
    other, _, _ = build(TrainOptions, contract_args(name, data_root, tmp_path / "other", train=True), setup=False)
    other.save_dir = model.save_dir
    other.load_networks("latest")
    assert_same_weights(after, state_dicts(other))

    # test.py's path: a test-mode model finds its networks among the saved files and translates a batch.
    tester, _, test_batch = build(TestOptions, contract_args(name, data_root, tmp_path, train=False))
    saved = state_dicts(model)
    for net_name, weights in state_dicts(tester).items():
        assert net_name in saved, f"test-mode net{net_name} is not among the training model_names"
        assert_same_weights({net_name: saved[net_name]}, {net_name: weights})
    tester.eval()
    tester.set_input(test_batch)
    tester.test()
    assert_visuals(tester)
    assert len(tester.get_image_paths()) == BATCH


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if is_test_only(n)])
def test_test_only_model_loads_its_checkpoints_and_translates(name, tmp_path, data_root):
    args = contract_args(name, data_root, tmp_path, train=False)
    model, opt, _ = build(TestOptions, args, setup=False)
    model.save_networks("latest")
    loaded, _, batch = build(TestOptions, args)  # setup() loads latest_net_*.pth
    assert_same_weights(state_dicts(model), state_dicts(loaded))
    loaded.set_input(batch)
    loaded.test()
    assert_visuals(loaded)


def test_plain_number_losses_join_the_others_on_the_models_device(tmp_path):
    """The reference's CycleGAN sets `self.loss_idt_A = 0`: on a GPU that number must not stay a CPU tensor beside
    the CUDA losses the divergence check stacks (a device mismatch, shown here with PyTorch's `meta` device)."""
    from engine.divergence import DivergenceGuard
    from options.train_options import TrainOptions
    from tests.helpers import tiny_args, unaligned_dataset

    opt = TrainOptions().parse(tiny_args(unaligned_dataset(tmp_path / "data"), tmp_path))
    model = create_model(opt)
    model.device = torch.device("meta")  # stands in for cuda:0
    model.loss_names = ["idt_A", "G_A", "D_A"]
    model.loss_idt_A, model.loss_D_A = 0, 0.5
    model.loss_G_A = torch.zeros((), device="meta", requires_grad=True) * 2
    losses = model.current_loss_tensors()
    assert {value.device.type for value in losses.values()} == {"meta"}
    assert not any(value.requires_grad for value in losses.values())
    DivergenceGuard().watch(losses, total_iters=1)  # stacks them: raised on a device mismatch
