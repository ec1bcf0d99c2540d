"""Plugins: models, dataset modes and networks that live outside i2i, found in a fixed order.

1. built-ins: everything the i2i packages register when they are imported;
2. `--plugin MODULE_OR_FILE.py` (repeatable): a module name on the Python path or a path to a .py file,
   imported before the option parser is built, so its names appear in `--help` and `choices=`;
3. installed distributions declaring the entry-point group `i2i.plugins` (skipped with
   `--no_plugin_autoload` or the environment variable `I2I_DISABLE_PLUGIN_AUTOLOAD=1`);
4. the reference's file convention, `models/foo_model.py` / `data/bar_dataset.py`, looked up when a name is
   asked for (`Registry.get`), or all at once for `--list`.

A plugin registers into the same registries as the built-ins, so a name used twice stops with the
registry's error naming both places. A plugin that fails to import stops with an `I2IError` naming it
and how to turn it off. `origin_label(obj)` tells where a registered object came from, for `--list`.

This module knows no registry by name: the option layer passes them in.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import I2IError
from .registry import Registry

ENTRY_POINT_GROUP = "i2i.plugins"
DISABLE_ENV = "I2I_DISABLE_PLUGIN_AUTOLOAD"
PLUGIN_FLAG = "--plugin"
NO_AUTOLOAD_FLAG = "--no_plugin_autoload"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin module came from, and how a user turns it off."""

    label: str  # e.g. "plugin file /x/foo.py", "entry point foo (distribution bar 1.0)"
    disable: str  # e.g. "leave out --plugin /x/foo.py"


_builtin_modules: frozenset[str] | None = None
_sources: dict[str, PluginSource] = {}  # module name -> the plugin that imported it
_loaded: dict[str, ModuleType] = {}  # "file:/abs/path", "module:name", "entry:dist:name" -> module


def mark_builtins() -> None:
    """Remember the modules imported so far as built-in (once per process, before any plugin loads)."""
    global _builtin_modules
    if _builtin_modules is None:
        _builtin_modules = frozenset(sys.modules)


# -- reading the command line ---------------------------------------------------------------------------


def prescan(argv: Iterable[str]) -> tuple[list[str], bool]:
    """The `--plugin` values of `argv` in order, and whether `--no_plugin_autoload` was given.

    Read before the parser exists, because the plugins decide the parser's choices.
    """
    argv = list(argv)
    specs: list[str] = []
    for i, arg in enumerate(argv):
        if arg == PLUGIN_FLAG:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise I2IError(f"{PLUGIN_FLAG} needs a value: a module name (my_pkg.plugin) or a file (path/to/x.py).")
            specs.append(argv[i + 1])
        elif arg.startswith(PLUGIN_FLAG + "="):
            specs.append(arg.split("=", 1)[1])
    return specs, NO_AUTOLOAD_FLAG in argv


def autoload_disabled(flag: bool = False) -> bool:
    """True when installed plugins must not be loaded: the flag, or `I2I_DISABLE_PLUGIN_AUTOLOAD` set to 1/true/yes."""
    return flag or os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


# -- loading --------------------------------------------------------------------------------------------


def load_plugins(argv: Iterable[str], registries: Iterable[Registry]) -> None:
    """Import the plugins `argv` names (`--plugin`), then the installed ones (unless disabled)."""
    registries = list(registries)
    mark_builtins()
    specs, no_autoload = prescan(argv)
    for spec in specs:
        load_plugin(spec, registries)
    if not autoload_disabled(no_autoload):
        load_entry_points(registries=registries)


def load_plugin(spec: str, registries: Iterable[Registry] = ()) -> ModuleType:
    """Import one `--plugin` value: a path to a .py file, or a module name on the Python path."""
    if spec.endswith(".py") or os.sep in spec or "/" in spec:
        return _load_file(Path(spec), list(registries))
    key = f"module:{spec}"
    if key in _loaded:
        return _loaded[key]
    source = PluginSource(f"plugin module {spec} (--plugin)", f"leave out --plugin {spec}")
    if importlib.util.find_spec(spec.split(".")[0]) is None:
        raise I2IError(f"--plugin {spec}: no module named '{spec}' on the Python path, and no such .py file. "
                       "Give a module name importable from here (add its folder to PYTHONPATH) or a path ending in "
                       ".py.")
    module = _import(lambda: importlib.import_module(spec), f"plugin module '{spec}' (--plugin)", source)
    _loaded[key] = module
    return module


def _load_file(path: Path, registries: list[Registry]) -> ModuleType:
    path = path.expanduser().resolve()
    key = f"file:{path}"
    if key in _loaded:
        return _loaded[key]
    if not path.is_file():
        raise I2IError(f"--plugin {path}: no such file. Give the path to a .py file or an importable module name.")
    name = _file_module_name(path, registries)
    existing = sys.modules.get(name)
    if existing is not None:
        if Path(getattr(existing, "__file__", "") or "").resolve() == path:
            _loaded[key] = existing
            return existing
        raise I2IError(f"--plugin {path}: its module name '{name}' is already taken by {existing.__file__}. "
                       "Rename the file.")
    source = PluginSource(f"plugin file {path} (--plugin)", f"leave out --plugin {path}")
    spec = importlib.util.spec_from_file_location(name, path)

    def run() -> ModuleType:
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module

    module = _import(run, f"plugin file {path} (--plugin)", source)
    _loaded[key] = module
    _adopt_by_convention(module, registries)
    return module


def _file_module_name(path: Path, registries: list[Registry]) -> str:
    """`foo_model.py` becomes `models.foo_model` (so the reference's `from .base_model import BaseModel` and
    `from . import networks` resolve to i2i's), `bar_dataset.py` becomes `data.bar_dataset`; any other file
    a top-level module `i2i_plugin_<stem>`."""
    stem = path.stem
    if not _IDENTIFIER.fullmatch(stem):
        raise I2IError(f"--plugin {path}: '{stem}' is not a valid Python module name; rename the file "
                       "(letters, digits and underscores, not starting with a digit).")
    for registry in registries:
        if registry.legacy is not None:
            package, suffix = registry.legacy
            if stem.endswith("_" + suffix) and stem != f"base_{suffix}":
                return f"{package}.{stem}"
    return f"i2i_plugin_{stem}"


def _adopt_by_convention(module: ModuleType, registries: list[Registry]) -> None:
    """Register a reference-style class (`FooModel` in `..._model.py`, no decorator) the way the file convention
    does. The registry finds the already-imported module and matches the class name."""
    for registry in registries:
        if registry.legacy is None:
            continue
        package, suffix = registry.legacy
        prefix, end = f"{package}.", f"_{suffix}"
        if module.__name__.startswith(prefix) and module.__name__.endswith(end):
            name = module.__name__[len(prefix): -len(end)]
            if name not in registry:
                try:
                    registry.get(name)
                except I2IError as exc:
                    if "importing" in str(exc):
                        raise


def load_entry_points(group: str = ENTRY_POINT_GROUP, registries: Iterable[Registry] = ()) -> list[Any]:
    """Load every entry point of `group` from the installed distributions, sorted by distribution and name.

    An entry point names a module (`my_pkg.plugin`, registering on import) or a function
    (`my_pkg.plugin:register`, called with no arguments).
    """
    registries = list(registries)
    found = sorted(importlib.metadata.entry_points(group=group), key=lambda ep: (_dist_name(ep), ep.name))
    loaded = []
    for ep in found:
        dist = _dist_name(ep)
        key = f"entry:{dist}:{ep.name}"
        if key in _loaded:
            loaded.append(_loaded[key])
            continue
        version = getattr(getattr(ep, "dist", None), "version", "")
        source = PluginSource(
            f"entry point {ep.name} = {ep.value} (distribution {dist} {version})".replace(" )", ")"),
            f"pip uninstall {dist}, or pass {NO_AUTOLOAD_FLAG} / set {DISABLE_ENV}=1 to skip installed plugins",
        )
        what = f"entry point '{ep.name} = {ep.value}' of the installed distribution '{dist}' (group {group})"
        obj = _import(lambda ep=ep: _call_if_function(ep.load()), what, source)
        _loaded[key] = obj
        loaded.append(obj)
    return loaded


def _call_if_function(obj: Any) -> Any:
    if not isinstance(obj, ModuleType) and callable(obj) and not inspect.isclass(obj):
        obj()
    return obj


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "?"


def _import(run, what: str, source: PluginSource) -> Any:
    """Run an import, attributing every module it brings in to `source`; failures become one clear I2IError."""
    before = set(sys.modules)
    try:
        result = run()
    except I2IError as exc:
        raise I2IError(f"{what}: {exc} (to disable this plugin: {source.disable})") from exc
    except Exception as exc:
        raise I2IError(f"{what} failed to import: {type(exc).__name__}: {exc}. Fix the plugin, or disable it: "
                       f"{source.disable}.") from exc
    for name in set(sys.modules) - before:
        _sources.setdefault(name, source)
    if isinstance(result, ModuleType):
        _sources.setdefault(result.__name__, source)
    return result


# -- the reference's file convention, all at once -------------------------------------------------------


def load_convention_files(registries: Iterable[Registry]) -> None:
    """Import every `<package>/<name>_<suffix>.py` of each registry's legacy convention not imported yet,
    so `--list` shows them. A file whose class does not follow the convention is skipped."""
    for registry in registries:
        if registry.legacy is None:
            continue
        package, suffix = registry.legacy
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(folder).glob(f"*_{suffix}.py")):
                name = path.stem[: -len(suffix) - 1]
                if f"{package}.{path.stem}" in sys.modules or name in registry or not _IDENTIFIER.fullmatch(name):
                    continue
                try:
                    registry.get(name)
                except I2IError as exc:
                    if "importing" in str(exc):
                        raise


# -- where things came from -----------------------------------------------------------------------------


def origin_label(obj: Any, registries: Iterable[Registry] = ()) -> str:
    """'built-in', 'plugin file ...', 'plugin module ...', 'entry point ... (distribution ...)' or
    'file models/foo_model.py (reference convention)' for a registered object."""
    module = getattr(obj, "__module__", None) or ""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        source = _sources.get(".".join(parts[:i]))
        if source is not None:
            return source.label
    if _builtin_modules is None or module in _builtin_modules:
        return "built-in"
    for registry in registries:
        if registry.legacy is not None and module.startswith(registry.legacy[0] + "."):
            return f"file {module.replace('.', '/')}.py (reference convention)"
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:
        path = None
    return f"module {module}" + (f" ({path})" if path else "")


def format_listing(registries: Mapping[str, Registry]) -> str:
    """One section per registry (`title -> registry`): each name, its one-line description, its origin."""
    lines: list[str] = []
    all_registries = list(registries.values())
    for title, registry in registries.items():
        flag = f" (--{registry.option})" if registry.option else ""
        lines.append(f"{title}{flag}:")
        width = max((len(name) for name in registry.names()), default=0)
        for name in registry.names():
            description = registry.describe(name) or "(no description: give it a docstring)"
            origin = origin_label(registry.get(name), all_registries)
            lines.append(f"  {name:<{width}}  {description}  [{origin}]")
        lines.append("")
    return "\n".join(lines)
