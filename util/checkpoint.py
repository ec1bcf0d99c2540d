"""Checkpoint I/O: written atomically, read with `weights_only=True`.

Files keep the reference's format (a plain state_dict per network, `<epoch>_net_<name>.pth`), so
checkpoints move freely between i2i and the reference in both directions.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import I2IError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: str | os.PathLike, write: Any, mode: str = "wb") -> None:
    """Call `write(file)` on a temporary file beside `path`, flush it to disk, then rename it over `path`.

    A crash or a full disk during the write leaves the previous file intact.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a checkpoint gets the usual permissions
    except OSError as exc:
        raise I2IError(f"could not write {path}: {exc.strerror or exc}. Make its folder writable.") from exc
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise I2IError(f"could not write {path}: {exc.strerror or exc}. Free disk space or fix the "
                           "folder's permissions; the previous file, if any, is unchanged.") from exc
        raise


#: the file suffix of `--checkpoint_format safetensors` (the `safetensors` package, optional)
SAFETENSORS = ".safetensors"


def _safetensors() -> Any:
    try:
        import safetensors.torch
    except ImportError:
        raise I2IError("safetensors checkpoints need the safetensors package: `pip install safetensors` "
                       "(or use --checkpoint_format pth, the reference's format).") from None
    return safetensors.torch


def save_state_dict(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Save a state_dict (tensors on the CPU) atomically; a `.safetensors` path writes that format."""
    cpu_state = {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in state.items()}
    if Path(path).suffix == SAFETENSORS:
        data = _safetensors().save({k: v.contiguous() for k, v in cpu_state.items() if torch.is_tensor(v)})
        atomic_write(path, lambda f: f.write(data))
        return
    atomic_write(path, lambda f: torch.save(cpu_state, f))


def existing_checkpoint(path: str | os.PathLike) -> Path | None:
    """`path` if it exists, else the same file in the other format (`x.pth` <-> `x.safetensors`), else None."""
    path = Path(path)
    other = path.with_suffix(".pth" if path.suffix == SAFETENSORS else SAFETENSORS)
    return next((p for p in (path, other) if p.is_file()), None)


def load_state_dict(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a state_dict safely: tensors and plain containers only, never pickled code.

    A missing `x.pth` is also looked for as `x.safetensors` (and the other way round), so loading needs no
    `--checkpoint_format`."""
    found = existing_checkpoint(path)
    if found is None:
        names = sorted(p.name for p in Path(path).parent.glob("*_net_*") if p.suffix in (".pth", SAFETENSORS))
        raise I2IError(f"checkpoint {path} does not exist. Check --name, --checkpoints_dir and --epoch "
                       f"(files there: {', '.join(names) or 'none'}).")
    path = found
    if path.suffix == SAFETENSORS:
        return _load_safetensors(path, map_location)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise I2IError(f"refused to load {path}: it holds more than weights (pickled objects or code), which "
                       f"i2i never executes. Re-save it as a plain state_dict from a trusted copy. ({exc})") from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise I2IError(f"could not read checkpoint {path}: {exc}. The file is truncated or not a PyTorch "
                       "checkpoint; restore it from a backup or use another --epoch.") from exc
    if hasattr(state, "state_dict") and callable(state.state_dict):  # a whole module was saved
        state = state.state_dict()
    if not isinstance(state, dict):
        raise I2IError(f"checkpoint {path} holds a {type(state).__name__}, not a state_dict.")
    return state


def _load_safetensors(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    st = _safetensors()
    try:
        state = st.load(path.read_bytes())
    except Exception as exc:  # safetensors raises its own SafetensorError for a damaged header
        raise I2IError(f"could not read checkpoint {path}: {exc}. The file is truncated or not a safetensors "
                       "file; restore it from a backup or use another --epoch.") from None
    return {k: v.to(map_location) for k, v in state.items()}
