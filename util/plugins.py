"""Plugins: models, dataset modes and networks that live outside i2i, found in a fixed order.

Built-ins, then `--plugin MODULE_OR_FILE.py`, then installed `i2i.plugins` entry points (unless
`--no_plugin_autoload` / `I2I_DISABLE_PLUGIN_AUTOLOAD=1`), then the reference's file convention
(`models/foo_model.py`) when a name is asked for: docs/plugins.md. A plugin file named like the convention runs
with the convention's package as its `__package__`, so the reference's relative imports resolve to i2i's. This
module knows no registry by name: the option layer passes them in.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from .cli import flag_values
from .errors import I2IError, PluginImportError
from .registry import Registry

ENTRY_POINT_GROUP = "i2i.plugins"
DISABLE_ENV = "I2I_DISABLE_PLUGIN_AUTOLOAD"
PLUGIN_FLAG = "--plugin"
NO_AUTOLOAD_FLAG = "--no_plugin_autoload"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_builtin_modules: frozenset[str] | None = None
_labels: dict[str, str] = {}  # module name -> where its plugin came from ("plugin file ... (--plugin)", ...)
_loaded: dict[str, Any] = {}  # "file:/abs/path", "module:name", "entry:dist:name" -> what it loaded


def autoload_disabled(flag: bool = False) -> bool:
    """True when installed plugins must not be loaded: the flag, or `I2I_DISABLE_PLUGIN_AUTOLOAD` set to 1/true/yes."""
    return flag or os.environ.get(DISABLE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def load_plugins(argv: Iterable[str], registries: Iterable[Registry]) -> None:
    """Import the plugins `argv` names (`--plugin`, read before the parser exists), then the installed ones."""
    global _builtin_modules
    if _builtin_modules is None:  # what is imported before any plugin counts as built-in
        _builtin_modules = frozenset(sys.modules)
    argv, registries = list(argv), list(registries)
    for spec in flag_values(argv, PLUGIN_FLAG):
        load_plugin(spec, registries)
    if not autoload_disabled(NO_AUTOLOAD_FLAG in argv):
        load_entry_points(registries=registries)


def load_plugin(spec: str, registries: Iterable[Registry] = ()) -> ModuleType:
    """Import one `--plugin` value: a path to a .py file, or a module name on the Python path."""
    if spec.endswith(".py") or os.sep in spec or "/" in spec:
        return _load_file(Path(spec).expanduser().resolve(), list(registries))
    if f"module:{spec}" not in _loaded:
        if importlib.util.find_spec(spec.split(".")[0]) is None:
            raise I2IError(f"--plugin {spec}: no module named '{spec}' on the Python path, and no such .py file. "
                           "Give a module name importable from here (add its folder to PYTHONPATH) or a path "
                           "ending in .py.")
        _loaded[f"module:{spec}"] = _import(lambda: importlib.import_module(spec), f"plugin module {spec} (--plugin)",
                                            f"leave out --plugin {spec}")
    return _loaded[f"module:{spec}"]


def _load_file(path: Path, registries: list[Registry]) -> ModuleType:
    if f"file:{path}" in _loaded:
        return _loaded[f"file:{path}"]
    if not path.is_file():
        raise I2IError(f"--plugin {path}: no such file. Give the path to a .py file or an importable module name.")
    if not _IDENTIFIER.fullmatch(path.stem):
        raise I2IError(f"--plugin {path}: '{path.stem}' is not a valid Python module name; rename the file "
                       "(letters, digits and underscores, not starting with a digit).")
    name = f"i2i_plugin_{path.stem}"
    if name in sys.modules:
        raise I2IError(f"--plugin {path}: its module name '{name}' is already taken by {sys.modules[name].__file__}. "
                       "Rename the file.")
    convention = next(((r, r.legacy) for r in registries if r.legacy and path.stem.endswith("_" + r.legacy[1])
                       and path.stem != f"base_{r.legacy[1]}"), None)

    def run() -> ModuleType:
        module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, path))
        if convention:
            module.__package__ = convention[1][0]  # the reference's relative imports resolve to i2i's package
        sys.modules[name] = module
        try:
            module.__spec__.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module

    module = _import(run, f"plugin file {path} (--plugin)", f"leave out --plugin {path}")
    _loaded[f"file:{path}"] = module
    if convention:
        registry, (_, suffix) = convention
        registry.adopt(path.stem[: -len(suffix) - 1], module)
    return module


def load_entry_points(group: str = ENTRY_POINT_GROUP, registries: Iterable[Registry] = ()) -> list[Any]:
    """Load every entry point of `group` from the installed distributions, sorted by distribution and name.
    An entry point names a module (registering on import) or a function (called with no arguments)."""
    found = sorted(importlib.metadata.entry_points(group=group), key=lambda ep: (_dist_name(ep), ep.name))
    for ep in found:
        dist = _dist_name(ep)
        key = f"entry:{dist}:{ep.name}"
        if key not in _loaded:
            version = getattr(getattr(ep, "dist", None), "version", "")
            label = f"entry point {ep.name} = {ep.value} (distribution {dist} {version})".replace(" )", ")")
            _loaded[key] = _import(lambda ep=ep: _call_if_function(ep.load()),
                                   f"entry point '{ep.name} = {ep.value}' of the installed distribution '{dist}' "
                                   f"(group {group})",
                                   f"pip uninstall {dist}, or pass {NO_AUTOLOAD_FLAG} / set {DISABLE_ENV}=1 to skip "
                                   "installed plugins", label=label)
    return [_loaded[f"entry:{_dist_name(ep)}:{ep.name}"] for ep in found]


def _call_if_function(obj: Any) -> Any:
    if not isinstance(obj, ModuleType) and callable(obj) and not inspect.isclass(obj):
        obj()
    return obj


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "?"


def _import(run: Callable[[], Any], what: str, disable: str, label: str | None = None) -> Any:
    """Run an import, labelling every module it brings in with `label` (default `what`) for `--list`; a failure
    becomes one `PluginImportError` that says how to turn the plugin off."""
    before = set(sys.modules)
    try:
        result = run()
    except I2IError as exc:
        raise PluginImportError(f"{what}: {exc} (to disable this plugin: {disable})") from exc
    except Exception as exc:
        raise PluginImportError(f"{what} failed to import: {type(exc).__name__}: {exc}. Fix the plugin, or disable "
                                f"it: {disable}.") from exc
    for name in [*(set(sys.modules) - before), getattr(result, "__name__", None)]:
        if name:
            _labels.setdefault(name, label or what)
    return result


def load_convention_files(registries: Iterable[Registry]) -> None:
    """Import every `<package>/<name>_<suffix>.py` of each registry's convention not imported yet (for `--list`)."""
    for registry in registries:
        if registry.legacy is None:
            continue
        package, suffix = registry.legacy
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(folder).glob(f"*_{suffix}.py")):
                name = path.stem[: -len(suffix) - 1]
                if f"{package}.{path.stem}" not in sys.modules and _IDENTIFIER.fullmatch(name):
                    registry.find(name)


def origin_label(obj: Any, registries: Iterable[Registry] = ()) -> str:
    """'built-in', 'plugin file ...', 'plugin module ...', 'entry point ... (distribution ...)' or
    'file models/foo_model.py (reference convention)' for a registered object."""
    module = getattr(obj, "__module__", None) or ""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in _labels:
            return _labels[".".join(parts[:i])]
    if _builtin_modules is None or module in _builtin_modules:
        return "built-in"
    if any(r.legacy is not None and module.startswith(r.legacy[0] + ".") for r in registries):
        return f"file {module.replace('.', '/')}.py (reference convention)"
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:
        path = None
    return f"module {module}" + (f" ({path})" if path else "")


def format_listing(registries: Mapping[str, Registry]) -> str:
    """One section per registry (`title -> registry`): each name, its one-line description, its origin."""
    lines: list[str] = []
    for title, registry in registries.items():
        lines.append(f"{title}{f' (--{registry.option})' if registry.option else ''}:")
        width = max((len(name) for name in registry.names()), default=0)
        for name in registry.names():
            description = registry.describe(name) or "(no description: give it a docstring)"
            lines.append(f"  {name:<{width}}  {description}  [{origin_label(registry.get(name), registries.values())}]")
        lines.append("")
    return "\n".join(lines)
