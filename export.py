"""Export trained generators as ONNX or TorchScript (any batch size, height and width).

    python export.py --name maps_cyclegan --model cycle_gan                 # G_A and G_B, ONNX
    python export.py --name facades_pix2pix --model pix2pix --format torchscript --output facades.pt
    python test.py --name maps_cyclegan --model cycle_gan --backend onnxruntime   # runs the exported files

Takes test.py's options (which checkpoint, which architecture), plus --format, --output and --opset.
"""

from __future__ import annotations

import util.cpu_setup  # noqa: F401, I001  (first, before torch: glibc reads its allocator settings once)

from pathlib import Path

from torch import nn

from models import create_model
from options.export_options import ExportOptions
from util.checkpoint import network_file
from util.cli import run_main
from util.runtime import unwrap
from inference.export import export_onnx, export_torchscript


def output_paths(opt, names: list[str]) -> dict[str, Path]:
    suffix = ".onnx" if opt.format == "onnx" else ".pt"
    if opt.output is None:
        return {n: network_file(Path(opt.checkpoints_dir) / opt.name, opt.epoch, n, suffix) for n in names}
    out = Path(opt.output)
    if len(names) == 1:
        return {names[0]: out}
    return {n: out.with_name(f"{out.stem}_{n}{out.suffix or suffix}") for n in names}


def main(argv: list[str] | None = None) -> dict[str, Path]:
    opt = ExportOptions().parse(argv)
    model = create_model(opt)
    model.setup(opt)  # loads the --epoch checkpoints
    written = {}
    for name, path in output_paths(opt, model.model_names).items():
        net = unwrap(getattr(model, f"net{name}"))
        input_nc = next(m for m in net.modules() if isinstance(m, nn.Conv2d)).in_channels
        if opt.format == "onnx":
            written[name] = export_onnx(net, path, input_nc, opset=opt.opset)
        else:
            written[name] = export_torchscript(net, path, input_nc)
        print(f"wrote {written[name]} ({opt.format}, net {name})")
    return written


if __name__ == "__main__":
    run_main(main)
