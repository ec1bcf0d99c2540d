"""export.py's options: test.py's (which checkpoint, which architecture) plus the format and the file."""

from __future__ import annotations

import argparse

from util.option_types import number

from .test_options import TestOptions


class ExportOptions(TestOptions):
    takes_demo = False  # export reads no dataset: no --dataroot never means the demo here
    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser = super().initialize(parser)
        add = parser.add_argument
        add("--format", default="onnx", choices=["onnx", "torchscript"], help="what to write")
        add("--output", default=None, help="file to write (default: checkpoints/NAME/<epoch>_net_<G>.onnx or .pt; "
            "with several generators their names are added before the extension)")
        add("--opset", type=number(int, at_least=9), default=17, help="ONNX opset version")
        return parser
