"""Checkpoint I/O in the reference's format (a plain state_dict per network, `<epoch>_net_<name>.pth`), written
atomically and read with `weights_only=True`.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from .errors import I2IError
from .files import atomic_write

_CHECKPOINT = re.compile(r"^.+_(net_.+\.(pth|safetensors)|state\.pth)$")
_NUMBERED = re.compile(r"^(iter_)?(\d+)_(net_.+\.(?:pth|safetensors)|state\.pth)$")


#: the file suffix of `--checkpoint_format safetensors` (the `safetensors` package, optional)
SAFETENSORS = ".safetensors"


def network_file(folder: str | os.PathLike, tag: str | int, name: str, suffix: str = ".pth") -> Path:
    """Where network `name` of checkpoint `tag` lives: `<folder>/<tag>_net_<name><suffix>` (the reference's name)."""
    return Path(folder) / f"{tag}_net_{name}{suffix}"


def move_to(value: Any, device: torch.device | str) -> Any:
    """A copy of `value` (tensors in nested dicts, lists and tuples) with every tensor on `device`, detached."""
    if torch.is_tensor(value):
        return value.detach().to(device).clone()
    if isinstance(value, dict):
        return {k: move_to(v, device) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(move_to(v, device) for v in value)
    return value


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
    """Load a state_dict safely: tensors and plain containers only, never pickled code. A missing `x.pth` is also
    looked for as `x.safetensors` (and the other way round), so loading needs no `--checkpoint_format`."""
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


# -- a run folder's checkpoint files ---------------------------------------------------------------------


def saved_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """The network and training-state files in `folder` (`<tag>_net_<name>.pth|.safetensors`, `<tag>_state.pth`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and _CHECKPOINT.match(p.name))


def prune_checkpoints(run_dir: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest `keep` epoch- and `keep` iter-numbered checkpoints (not `latest_*`); -> the deleted."""
    groups: dict[bool, dict[int, list[Path]]] = {False: {}, True: {}}
    for path in Path(run_dir).iterdir():
        match = _NUMBERED.match(path.name)
        if match:
            groups[bool(match.group(1))].setdefault(int(match.group(2)), []).append(path)
    deleted = []
    for numbers in groups.values():
        for number in sorted(numbers)[:-keep]:
            for path in numbers[number]:
                path.unlink(missing_ok=True)
                deleted.append(path)
    return deleted
