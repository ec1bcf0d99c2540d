"""How the drivers end: a user error is one clear line on stderr, never a traceback."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from typing import Any

from .errors import I2IError


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> str:
    return f"warning: {message}\n"


def run_main(main: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> None:
    """Run a driver's `main`, turning `I2IError` into `error: <message>` and exit status 2."""
    warnings.formatwarning = _one_line_warning
    try:
        main(argv)
    except I2IError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
