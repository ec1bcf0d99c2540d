"""How the drivers end: a user error is one clear line on stderr, never a traceback."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

from .collectives import is_main
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
        message = known_failure_message(exc)
        if message is None:
            raise
        print(f"error: {_rank_prefix()}{message}", file=sys.stderr)
        sys.exit(2)


def known_failure_message(exc: BaseException) -> str | None:
    """The fix for a GPU out-of-memory error (CUDA's OutOfMemoryError, or the RuntimeError older PyTorch and MPS
    raise) or a normalisation layer given a 1x1 map (instance norm) or one value per channel (batch norm)."""
    text = str(exc).strip()
    torch = sys.modules.get("torch")
    out_of_memory = torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)
    if out_of_memory or (isinstance(exc, RuntimeError) and "out of memory" in text.lower()):
        first = text.splitlines()[0] if text else type(exc).__name__
        return (f"out of GPU memory ({first}). Lower --batch_size or --crop_size (with --load_size), or pass --amp "
                "for mixed precision; check with nvidia-smi that no other process holds the GPU's memory.")
    if isinstance(exc, ValueError) and ("more than 1 spatial element" in text or "more than 1 value per channel"
                                        in text):
        return (f"the images are too small for the networks: a feature map shrank to a single value ({exc}). The "
                "default PatchGAN (--netD basic) needs images of at least 24x24 pixels, one with --n_layers_D N at "
                "least 3*2**N; raise --crop_size (and --load_size), pass a smaller --n_layers_D, or with batch norm "
                "a --batch_size above 1.")
    return None


def write_line(message: str) -> None:
    """Print a line to stdout above any progress bar on screen (a plain print would tear it); rank 0 only."""
    if is_main():
        from tqdm import tqdm

        tqdm.write(message)


def flag_values(argv: list[str], flag: str) -> list[str]:
    """Every value given to `flag` in `argv` (`--flag value` or `--flag=value`), in order: for the few options that
    must be read before the parser exists (plugins decide its choices)."""
    values = []
    for i, arg in enumerate(argv):
        if arg == flag:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise I2IError(f"{flag} needs a value (see --help).")
            values.append(argv[i + 1])
        elif arg.startswith(flag + "="):
            values.append(arg.split("=", 1)[1])
    return values
