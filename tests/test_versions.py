"""The oldest torch and torchvision i2i supports: the minimum written in requirements.txt and pyproject.toml must
be at least the release that brought each PyTorch API the code uses.

`APIS` is that table: the API, the torch release it first shipped in, the file that uses it, and a check that the
installed torch has it (so the table names real APIs). Where an entry came from:

- `torch.onnx.export(..., dynamo=)`: 2.5 (the argument arrived with the torch.export-based exporter; PyTorch's
  ONNX tutorial requires 2.5 for it). inference/export.py passes `dynamo=False` to pick the TorchScript exporter.
- `torch.get_autocast_dtype(device_type)`, `torch.is_autocast_enabled(device_type)`: 2.4 (the device-generic
  autocast API, pytorch#124479; `networks/small_map_conv.py` still falls back for older releases).
- fused Adam on the CPU: 2.4 (before, only CUDA had the fused kernel).
- `torch.amp.GradScaler`: 2.3 (in 2.2 the scaler was `torch.cuda.amp.GradScaler` alone; 2.3's documentation
  shows the CUDA one as a subclass of the new device-generic class).
- `torch.compiler.is_compiling`: 2.3.
- `torch.export.Dim`: 2.2. `torch.distributed.DistError`: 2.2 (pytorch#108191, August 2023).
- `nn.Module.load_state_dict(..., assign=)`, `torch.utils.flop_counter.FlopCounterMode`: 2.1.
- `torch.compile`, `register_optimizer_step_pre_hook`: 2.0. `torch.load(..., weights_only=)`: 1.13.

torchvision's minimum is the release made with that torch (`TORCHVISION_FOR`): i2i uses only long-standing
torchvision APIs (transforms, InterpolationMode, the Inception v3 building blocks).
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable

import pytest
import torch
import torchvision

from tests.helpers import ROOT


def _fused_adam_on_the_cpu() -> bool:
    from torch.optim.optimizer import _get_fused_kernels_supported_devices

    return "cpu" in _get_fused_kernels_supported_devices()


def _autocast_by_device_type() -> bool:
    return isinstance(torch.is_autocast_enabled("cpu"), bool) and torch.get_autocast_dtype("cpu") is not None


# (API, first torch release with it, file that uses it, text of that use, check on the installed torch)
APIS: list[tuple[str, str, str, str, Callable[[], bool]]] = [
    ("torch.onnx.export(dynamo=)", "2.5", "inference/export.py", "dynamo=False",
     lambda: "dynamo" in inspect.signature(torch.onnx.export).parameters),
    ("torch.get_autocast_dtype / is_autocast_enabled(device_type)", "2.4", "util/runtime.py",
     "torch.get_autocast_dtype(device_type)", _autocast_by_device_type),
    ("fused Adam on the CPU", "2.4", "util/runtime.py", "_get_fused_kernels_supported_devices", _fused_adam_on_the_cpu),
    ("torch.amp.GradScaler", "2.3", "util/precision.py", "torch.amp.GradScaler(", lambda: hasattr(torch.amp, "GradScaler")),
    ("torch.compiler.is_compiling", "2.3", "networks/small_map_conv.py", "torch.compiler.is_compiling()",
     lambda: callable(getattr(torch.compiler, "is_compiling", None))),
    ("torch.export.Dim", "2.2", "inference/export.py", "torch.export.Dim(", lambda: hasattr(torch.export, "Dim")),
    ("torch.distributed.DistError", "2.2", "util/collectives.py", "dist.DistError",
     lambda: hasattr(torch.distributed, "DistError")),
    ("nn.Module.load_state_dict(assign=)", "2.1", "networks/patch_sample.py", "assign=assign",
     lambda: "assign" in inspect.signature(torch.nn.Module.load_state_dict).parameters),
    ("torch.utils.flop_counter.FlopCounterMode", "2.1", "benchmarks/common.py", "FlopCounterMode(",
     lambda: hasattr(importlib.import_module("torch.utils.flop_counter"), "FlopCounterMode")),
    ("torch.compile", "2.0", "util/runtime.py", "torch.compile(", lambda: callable(getattr(torch, "compile", None))),
    ("register_optimizer_step_pre_hook", "2.0", "util/collectives.py", "register_optimizer_step_pre_hook(",
     lambda: hasattr(importlib.import_module("torch.optim.optimizer"), "register_optimizer_step_pre_hook")),
    ("torch.load(weights_only=)", "1.13", "util/checkpoint.py", "weights_only=True",
     lambda: "weights_only" in inspect.signature(torch.load).parameters),
]

#: torchvision's release for each torch release
TORCHVISION_FOR = {"2.0": "0.15", "2.1": "0.16", "2.2": "0.17", "2.3": "0.18", "2.4": "0.19", "2.5": "0.20",
                   "2.6": "0.21", "2.7": "0.22", "2.8": "0.23"}


def version(text: str) -> tuple[int, ...]:
    """'2.5', '2.14.1+cu130' -> (2, 5), (2, 14, 1): the numeric release, without local or pre-release parts."""
    return tuple(int(part) for part in re.match(r"\d+(\.\d+)*", text).group(0).split("."))


def minimum(package: str, text: str) -> str:
    found = re.findall(rf'^\s*"?{package}>=([\d.]+)', text, re.MULTILINE)
    assert len(found) == 1, f"one '{package}>=X' expected, found {found}"
    return found[0]


def declared_minimums() -> dict[str, dict[str, str]]:
    files = {"requirements.txt": (ROOT / "requirements.txt").read_text(),
             "pyproject.toml": (ROOT / "pyproject.toml").read_text()}
    return {name: {p: minimum(p, text) for p in ("torch", "torchvision")} for name, text in files.items()}


def test_requirements_and_pyproject_declare_the_same_minimums():
    minimums = declared_minimums()
    assert minimums["requirements.txt"] == minimums["pyproject.toml"], minimums


@pytest.mark.parametrize("api,since,where,use,check", APIS, ids=[row[0] for row in APIS])
def test_the_declared_torch_has_every_api_the_code_uses(api, since, where, use, check):
    floor = declared_minimums()["requirements.txt"]["torch"]
    assert version(floor) >= version(since), f"{where} uses {api} (torch {since}), but the minimum is torch>={floor}"
    assert use in (ROOT / where).read_text(), f"{where} no longer uses {api}: update the table"
    assert check(), f"the installed torch {torch.__version__} has no {api}: the table is wrong"


def test_torchvision_minimum_is_the_release_of_the_torch_minimum():
    floors = declared_minimums()["requirements.txt"]
    torch_floor = ".".join(map(str, version(floors["torch"])[:2]))
    assert floors["torchvision"] == TORCHVISION_FOR[torch_floor]


def test_the_installed_versions_meet_the_minimums():
    floors = declared_minimums()["requirements.txt"]
    assert version(torch.__version__) >= version(floors["torch"])
    assert version(torchvision.__version__) >= version(floors["torchvision"])


def test_the_minimum_is_the_newest_api_in_the_table():
    """Not higher than needed either: the minimum is the release of the newest API the code uses."""
    floor = declared_minimums()["requirements.txt"]["torch"]
    assert version(floor) == max(version(since) for _, since, _, _, _ in APIS)
