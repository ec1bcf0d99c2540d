"""Run an exported ONNX generator with onnxruntime behind the same call as a PyTorch module."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from util.errors import I2IError


class OnnxGenerator(nn.Module):
    """`forward(x)` runs the ONNX file at `path` (exported by export.py) on x's values, on x's device."""

    def __init__(self, path: str | os.PathLike, *, use_cuda: bool = False) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise I2IError("--backend onnxruntime needs the onnxruntime package: pip install onnxruntime") from None
        self.path = Path(path)
        if not self.path.is_file():
            raise I2IError(f"{self.path} does not exist: export the generator first with "
                           "`python export.py --format onnx` and the same --name/--epoch/--model.")
        providers = ["CPUExecutionProvider"]
        if use_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(self.path), providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (out,) = self.session.run(None, {self.input_name: x.detach().float().cpu().numpy()})[:1]
        return torch.from_numpy(out).to(x.device)
