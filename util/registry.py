"""One small registry mechanism for every kind of pluggable component (docs/plugins.md).

    GENERATORS = Registry("generator")
    GENERATORS.register("resnet_9blocks")(builder)   # or as a decorator
    GENERATORS.get("resnet_9blocks")                 # the builder
    GENERATORS.names()                               # feeds argparse choices=, --help and test matrices

An unknown name raises `I2IError` listing the valid names and the closest match; registering a
name twice raises unless `override=True`, naming both places.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

from .errors import I2IError, PluginImportError


def snake_case(name: str) -> str:
    """`CycleGANModel` -> `cycle_gan_model`, `UnalignedDataset` -> `unaligned_dataset`."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _origin(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    try:
        path = inspect.getsourcefile(obj)
    except TypeError:
        path = None
    return f"{module} ({path})" if path else module


class Registry:
    """A name -> object table for one kind of component (model, dataset mode, generator, ...)."""

    def __init__(
        self,
        kind: str,
        base: type | None = None,
        option: str | None = None,
        legacy: tuple[str, str] | None = None,
    ) -> None:
        """`legacy=("models", "model")`: an unknown name `foo_bar` is looked up in `models.foo_bar_model` (`adopt`)."""
        self.kind = kind
        self.base = base
        self.option = option  # the CLI option that selects from this registry, for error messages
        self.legacy = legacy
        self._entries: dict[str, Any] = {}
        self._descriptions: dict[str, str] = {}

    def register(
        self, name: str | None = None, *, override: bool = False, description: str | None = None
    ) -> Callable[[Any], Any]:
        """Decorator: register a class or function under `name` (default: its snake_case name)."""

        def decorator(obj: Any) -> Any:
            self.add(name or snake_case(obj.__name__), obj, override=override, description=description)
            return obj

        return decorator

    def add(self, name: str, obj: Any, *, override: bool = False, description: str | None = None) -> None:
        if self.base is not None and not (inspect.isclass(obj) and issubclass(obj, self.base)):
            raise TypeError(f"{self.kind} '{name}' must be a subclass of {self.base.__name__}, got {obj!r}")
        existing = self._entries.get(name)
        if existing is not None and existing is not obj and not override:
            raise I2IError(
                f"{self.kind} name '{name}' is registered twice: by {_origin(existing)} and by {_origin(obj)}. "
                "Rename one of them (or register with override=True to replace it on purpose)."
            )
        self._entries[name] = obj
        doc = description or (inspect.getdoc(obj) or "").strip().splitlines()
        self._descriptions[name] = doc if isinstance(doc, str) else (doc[0] if doc else "")

    def get(self, name: str) -> Any:
        found = self.find(name)
        if found is None:
            raise I2IError(self.unknown_message(name))
        return found

    def find(self, name: str) -> Any | None:
        """The entry `name`, looked up by the file convention too; None where there is none. A convention file
        that fails to import raises `PluginImportError`."""
        if name not in self._entries and self.legacy is not None:
            self._import_legacy(name)
        return self._entries.get(name)

    def _import_legacy(self, name: str) -> None:
        package, suffix = self.legacy
        module_name = f"{package}.{name}_{suffix}"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or importlib.util.find_spec(module_name) is None:
            return
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise PluginImportError(
                f"{self.kind} '{name}': importing {module_name} ({package}/{name}_{suffix}.py) failed: "
                f"{type(exc).__name__}: {exc}. Fix that file or remove it."
            ) from exc
        self.adopt(name, module)

    def adopt(self, name: str, module: Any) -> None:
        """Register `module`'s class that follows the reference's convention (`foo_bar` -> `FooBarModel`, matched
        without case or underscores) under `name`, unless the module registered `name` itself."""
        if name in self._entries:
            return
        wanted = name.replace("_", "") + self.legacy[1]
        for obj in vars(module).values():
            if inspect.isclass(obj) and obj.__name__.lower() == wanted and obj.__module__ == module.__name__:
                if self.base is None or issubclass(obj, self.base):
                    self.add(name, obj)
                    return

    def unknown_message(self, name: str) -> str:
        flag = f"--{self.option} " if self.option else ""
        message = f"unknown {self.kind} {flag}'{name}'. Valid names: {', '.join(self.names())}."
        close = difflib.get_close_matches(name, self.names(), n=1)
        if close:
            message += f" Did you mean '{close[0]}'?"
        return message

    def names(self) -> list[str]:
        return list(self._entries)

    def describe(self, name: str) -> str:
        return self._descriptions.get(name, "")

    def origin(self, name: str) -> str:
        return _origin(self.get(name))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
