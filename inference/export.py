"""Write a generator as ONNX or TorchScript that takes any batch size, height and width.

The generator is exported inside `inference.sizing.SizeAdapter` (any size in, the same size out) and in eval
mode, so the file behaves like `test.py --eval`. ONNX goes through PyTorch's TorchScript-based exporter (needs
only `onnx`), or the torch.export-based one (needs `onnxscript`) where a PyTorch release lacks the former.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from util.errors import I2IError

from .sizing import SizeAdapter, size_multiple

INPUT_NAME, OUTPUT_NAME = "input", "output"


def example_input(net: nn.Module, input_nc: int) -> torch.Tensor:
    side = max(64, size_multiple(net))
    return torch.rand(1, input_nc, side, side) * 2 - 1


def export_onnx(net: nn.Module, path: str | os.PathLike, input_nc: int, opset: int = 17) -> Path:
    """Write `net` as ONNX with dynamic batch, height and width (input "input", output "output")."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise I2IError("ONNX export needs the onnx package: pip install onnx (and onnxruntime to run it).") from None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = SizeAdapter(copy.deepcopy(net).cpu().eval())
    x = example_input(net, input_nc)
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic, which stays dynamic here
        try:
            torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes})
        except TypeError:  # a PyTorch without the TorchScript-based exporter
            dims = {0: torch.export.Dim("batch"), 2: torch.export.Dim("height"), 3: torch.export.Dim("width")}
            torch.onnx.export(module, (x,), str(path), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_shapes=(dims,))
    return path


def export_torchscript(net: nn.Module, path: str | os.PathLike, input_nc: int) -> Path:
    """Write `net` as TorchScript: the generator traced, inside a scripted size adapter (dynamic H and W)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(net).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, example_input(net, input_nc), check_trace=False)
    module = torch.jit.script(SizeAdapter(traced, size_multiple(net)))
    module.save(str(path))
    return path
