"""The command-line side of plugins: `--plugin`, `--no_plugin_autoload`, `--list`, and the registries they cover."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from util import plugins
from util.registry import Registry


def component_registries() -> dict[str, Registry]:
    """Every registry a user can pick from on the command line, under the title `--list` prints."""
    from data import DATASETS
    from models import MODELS
    from models.losses import GAN_LOSSES
    from models.schedulers import LR_POLICIES
    from networks import DISCRIMINATORS, GENERATORS, INIT_TYPES, NORMS

    return {
        "Models": MODELS,
        "Dataset modes": DATASETS,
        "Generators": GENERATORS,
        "Discriminators": DISCRIMINATORS,
        "Norm layers": NORMS,
        "Init types": INIT_TYPES,
        "GAN losses": GAN_LOSSES,
        "LR policies": LR_POLICIES,
    }


def load_cli_plugins(argv: Sequence[str]) -> None:
    """Import built-ins, then `--plugin` values, then installed `i2i.plugins` entry points (unless disabled)."""
    plugins.load_plugins(argv, component_registries().values())


class ListAction(argparse.Action):
    """`--list`: print every registered component with its description and origin, then exit 0."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        registries = component_registries()
        plugins.load_convention_files(registries.values())
        parser._print_message(plugins.format_listing(registries), sys.stdout)
        parser.exit(0)


def add_plugin_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(plugins.PLUGIN_FLAG, action="append", default=[], metavar="MODULE_OR_FILE.py",
        help="import a plugin (models, dataset modes, networks) before the options are read: a module name on the "
             "Python path or a .py file; repeatable")
    add(plugins.NO_AUTOLOAD_FLAG, action="store_true",
        help=f"do not load installed plugins (entry points '{plugins.ENTRY_POINT_GROUP}'); same as the environment "
             f"variable {plugins.DISABLE_ENV}=1")
    add("--list", action=ListAction,
        help="list every model, dataset mode, network, norm, GAN loss and LR policy with its origin, and exit")
