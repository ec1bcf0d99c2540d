"""Numeric option types that check their range when the command line is parsed.

    add("--lr", type=number(float, above=0), default=0.0002, ...)
    add("--display_id", type=number(int), default=1, ...)       # any integer, said explicitly

A value out of range stops parsing with one line (`argument --lr: must be a number > 0 (got -1)`). Every
numeric option of i2i, its models, dataset modes and plugins should use one (tests/test_option_ranges.py).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from .errors import I2IError


class Number:
    """An argparse `type=` that converts to `kind` (int or float) and checks the bounds."""

    def __init__(self, kind: type, *, at_least: float | None = None, above: float | None = None,
                 at_most: float | None = None, below: float | None = None) -> None:
        if kind not in (int, float):
            raise TypeError(f"number() takes int or float, not {kind!r}")
        self.kind = kind
        self.at_least, self.above, self.at_most, self.below = at_least, above, at_most, below
        self.__name__ = "integer" if kind is int else "number"  # argparse's fallback message uses it

    def __call__(self, text: str) -> int | float:
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {self.describe()} (got {text!r})") from None
        if (self.kind is float and math.isnan(value)) or not self.contains(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()} (got {text})")
        return value

    def contains(self, value: float) -> bool:
        return ((self.at_least is None or value >= self.at_least) and (self.above is None or value > self.above)
                and (self.at_most is None or value <= self.at_most) and (self.below is None or value < self.below))

    def describe(self) -> str:
        """'an integer >= 1', 'a number in [0, 1)', 'any integer'."""
        noun = "an integer" if self.kind is int else "a number"
        low = (f"[{_fmt(self.at_least)}" if self.at_least is not None
               else f"({_fmt(self.above)}" if self.above is not None else None)
        high = (f"{_fmt(self.at_most)}]" if self.at_most is not None
                else f"{_fmt(self.below)})" if self.below is not None else None)
        if low and high:
            return f"{noun} in {low}, {high}"
        if low:
            return f"{noun} {'>=' if low[0] == '[' else '>'} {low[1:]}"
        if high:
            return f"{noun} {'<=' if high[-1] == ']' else '<'} {high[:-1]}"
        return "any integer" if self.kind is int else "any number"

    def out_of_range(self) -> list[str]:
        """Values just outside the range, as typed on a command line (for tests); [] when unbounded."""
        step = 1 if self.kind is int else 0.5
        values = []
        if self.at_least is not None:
            values.append(self.at_least - step)
        if self.above is not None:
            values.append(self.above)
        if self.at_most is not None:
            values.append(self.at_most + step)
        if self.below is not None:
            values.append(self.below)
        return [_fmt(self.kind(v) if self.kind is int else v) for v in values]

    def __repr__(self) -> str:
        return f"number({self.kind.__name__}: {self.describe()})"


def number(kind: type = float, **bounds: Any) -> Number:
    """A checked numeric option type: `at_least`, `above`, `at_most`, `below` (all optional)."""
    return Number(kind, **bounds)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(value)


class ReadOnlyOptionsError(I2IError, AttributeError):
    """Raised on `opt.x = ...` after parsing: options are read-only once parsed."""


class Options(argparse.Namespace):
    """The parsed options, read-only: a value derived from others is computed once by the parser, and code that
    needs other values builds a new namespace with `replaced(opt, name=value)`."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __setattr__(self, name: str, value: Any) -> None:
        raise ReadOnlyOptionsError(f"options are read-only after parsing (tried to set opt.{name}); set a default in "
                                   "the model's modify_commandline_options, or use "
                                   f"util.option_types.replaced(opt, {name}=...) for a changed copy.")

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)


def replaced(opt: argparse.Namespace, **changes: Any) -> Options:
    """A read-only copy of `opt` with `changes` applied (the original is left as it is)."""
    return Options(**{**vars(opt), **changes})
