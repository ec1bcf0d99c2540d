"""Every numeric option of every script, model and dataset mode checks its range when parsed.

The cases are generated from the registries (plugins named in I2I_CONTRACT_PLUGINS too, and the example plugin
package in its own test): each numeric option must declare its range (`util.option_types.number`), and each
value just outside that range must stop parsing with one line naming the option and the range.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from pathlib import Path

import pytest

from data import DATASETS
from models import MODELS
from options.export_options import ExportOptions
from options.plugin_options import component_registries
from options.test_options import TestOptions
from options.train_options import TrainOptions
from tests.helpers import ROOT, load_script, run_script, unaligned_dataset
from util import plugins
from util.errors import I2IError
from util.option_types import Number, number

PLUGINS_ENV = "I2I_CONTRACT_PLUGINS"
OPTION_CLASSES = {"train": TrainOptions, "test": TestOptions, "export": ExportOptions}


def _load_env_plugins() -> None:
    for spec in filter(None, os.environ.get(PLUGINS_ENV, "").split(os.pathsep)):
        plugins.load_plugin(spec, component_registries().values())


def parser_for(script: str, model: str, dataset_mode: str | None = None) -> argparse.ArgumentParser | None:
    """The parser `script` builds for `--model model` (and `--dataset_mode`); None where the model refuses it."""
    options = OPTION_CLASSES[script]()
    parser = options.make_parser()
    try:
        parser = MODELS.get(model).modify_commandline_options(parser, options.is_train)
    except I2IError:  # a test-only model refuses training
        return None
    mode = dataset_mode or parser.get_default("dataset_mode")
    return DATASETS.get(mode).modify_commandline_options(parser, options.is_train)


def numeric_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and (a.type in (int, float) or isinstance(a.type, Number))]


def cases() -> list[tuple[str, str, str | None]]:
    _load_env_plugins()
    found = [(script, model, None) for script in OPTION_CLASSES for model in MODELS.names()]
    found += [("train", "cycle_gan", mode) for mode in DATASETS.names()]
    found += [("test", "test", mode) for mode in DATASETS.names()]
    return found


def check_ranges(script: str, model: str, dataset_mode: str | None, dataroot: Path) -> int:
    """Every numeric option has a range, and every out-of-range value is one clear error. Returns values tried."""
    parser = parser_for(script, model, dataset_mode)
    if parser is None:
        return 0
    actions = numeric_actions(parser)
    unchecked = [a.option_strings[0] for a in actions if not isinstance(a.type, Number)]
    assert not unchecked, f"{script}.py --model {model}: numeric options without a range: {unchecked}"
    tried = 0
    base = ["--dataroot", str(dataroot), "--gpu_ids", "-1", "--model", model]
    base += ["--dataset_mode", dataset_mode] if dataset_mode else []
    for action in actions:
        flag = action.option_strings[0]
        for value in action.type.out_of_range():
            with pytest.raises(I2IError) as error:
                OPTION_CLASSES[script]().parse([*base, f"{flag}={value}"])
            message = str(error.value)
            assert f"{flag}: must be {action.type.describe()} (got {value})" in message, message
            assert "\n" not in message
            tried += 1
    return tried


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory) -> Path:
    return unaligned_dataset(tmp_path_factory.mktemp("ranges"))


@pytest.mark.parametrize("script,model,dataset_mode", cases())
def test_every_numeric_option_refuses_out_of_range_values(script, model, dataset_mode, dataroot):
    check_ranges(script, model, dataset_mode, dataroot)


def test_the_example_plugins_options_are_covered(dataroot, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "plugin_package"))
    before = {r: dict(r._entries) for r in component_registries().values()}
    try:
        importlib.import_module("i2i_example_plugin")
        tried = sum(check_ranges(script, "example_denoise", None, dataroot) for script in OPTION_CLASSES)
        tried += check_ranges("train", "cycle_gan", "example_noisy", dataroot)
        assert tried > 0
    finally:
        for registry, entries in before.items():
            registry._entries.clear()
            registry._entries.update(entries)
        for name in [n for n in sys.modules if n.startswith("i2i_example_plugin")]:
            del sys.modules[name]


@pytest.mark.parametrize("make_parser,flag", [("evaluate", "--batch_size"), ("translate", "--tile"),
                                              ("translate", "--tile_overlap")])
def test_the_other_scripts_check_their_numbers(make_parser, flag):
    parser = load_script(make_parser).make_parser()
    action = next(a for a in parser._actions if flag in a.option_strings)
    assert isinstance(action.type, Number)
    with pytest.raises(I2IError, match=f"{flag}: must be"):
        parser.parse_args(["x", flag, action.type.out_of_range()[0]])
    unchecked = [a.option_strings[0] for a in numeric_actions(parser) if not isinstance(a.type, Number)]
    assert not unchecked


def test_a_negative_learning_rate_is_one_line_from_the_command_line(tmp_path):
    root = unaligned_dataset(tmp_path / "data")
    result = run_script("train.py", ["--dataroot", str(root), "--gpu_ids", "-1", "--lr", "-0.1"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: train.py: argument --lr: must be a number > 0 (got -0.1) (see train.py --help)"]


@pytest.mark.parametrize("bounds,inside,outside", [
    (dict(at_least=1), ["1", "5"], ["0", "-1"]),
    (dict(above=0), ["1e-9"], ["0", "-2"]),
    (dict(at_least=0, below=1), ["0", "0.999"], ["1", "-0.1", "nan"]),
    (dict(at_most=65535, at_least=1), ["65535"], ["65536", "0"]),
])
def test_number_type(bounds, inside, outside):
    kind = int if all(float(v).is_integer() for v in inside) and "nan" not in outside else float
    check = number(kind, **bounds)
    for text in inside:
        assert check(text) == kind(text)
    for text in outside + check.out_of_range():
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(f"must be {check.describe()}")):
            check(text)
    assert number(int).describe() == "any integer" and number(int).out_of_range() == []
    with pytest.raises(argparse.ArgumentTypeError, match="must be an integer >= 1"):
        number(int, at_least=1)("two")
