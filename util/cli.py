"""How the drivers end: a user error is one clear line on stderr, never a traceback."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from .errors import I2IError


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> str:
    return f"warning: {message}\n"


def _rank_prefix() -> str:
    """'[rank N] ' in a torchrun job of several processes (which process failed), else ''."""
    return f"[rank {os.environ.get('RANK', '0')}] " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""


def run_main(main: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> None:
    """Run a driver's `main`, turning `I2IError` into `error: <message>` and exit status 2."""
    warnings.formatwarning = _one_line_warning
    try:
        main(argv)
    except I2IError as exc:
        print(f"error: {_rank_prefix()}{exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        print(f"error: {out_of_memory_message(exc)}", file=sys.stderr)
        sys.exit(2)


def is_out_of_memory(exc: BaseException) -> bool:
    """A GPU out-of-memory error (CUDA's OutOfMemoryError, or the RuntimeError older PyTorch and MPS raise)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def out_of_memory_message(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (f"out of GPU memory ({first}). Lower --batch_size or --crop_size (with --load_size), or pass --amp "
            "for mixed precision; check with nvidia-smi that no other process holds the GPU's memory.")
