"""Inference with trained generators: any image size, tiles for very large images, and a 3-line Python API.

    from inference import load_translator
    translate = load_translator("checkpoints/demo_cycle_gan")        # architecture from train_opt.json
    translate(Image.open("in.png")).save("out.png")                    # same size out as in

`prepare_for_inference(model, opt)` does the same for test.py's models: it loads the weights (or, with
`--backend onnxruntime`, the exported ONNX files) and wraps every generator so that any input size works
(`inference.sizing`) and, with `--tile N`, large images go through tile by tile (`inference.tiling`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from util.checkpoint import network_file
from util.errors import I2IError
from util.images import tensor2im, to_pil
from util.runtime import unwrap

from .sizing import SizeAdapter
from .tiling import translate_tiled


class InferenceGenerator(nn.Module):
    """A generator that takes any H x W and returns H x W; images larger than `tile` go through in tiles."""

    def __init__(self, net: nn.Module, tile: int = 0, overlap: int = 32, stat_passes: int = 2) -> None:
        super().__init__()
        self.net = net
        self.adapter = SizeAdapter(net)
        self.tile, self.overlap, self.stat_passes = tile, overlap, stat_passes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tile > 0 and max(x.shape[-2:]) > self.tile:
            # The plain network: tiles go one at a time, and the whole-image statistics gathered on DataParallel's
            # per-call copies (several --gpu_ids) or through a compiled graph would be lost.
            net = unwrap(self.net)
            return torch.cat([translate_tiled(net, x[i:i + 1], self.tile, self.overlap, self.stat_passes)
                              for i in range(x.shape[0])])
        return self.adapter(x)


def onnx_path(opt: argparse.Namespace, net_name: str) -> Path:
    """Where export.py writes (and --backend onnxruntime reads) the ONNX file of network `net_name`."""
    return network_file(Path(opt.checkpoints_dir) / opt.name, opt.epoch, net_name, ".onnx")


def prepare_for_inference(model, opt: argparse.Namespace) -> None:
    """Load `model`'s networks for test.py and wrap them for any size and tiling (see the module docstring)."""
    if opt.backend == "onnxruntime":
        model.check_names()
        model.wrap_networks(lambda name, net: OnnxGenerator(onnx_path(opt, name), use_cuda=bool(opt.gpu_ids)))
        return
    model.setup(opt)
    model.wrap_networks(lambda name, net: InferenceGenerator(net, opt.tile, opt.tile_overlap, opt.tile_stat_passes))


def OnnxGenerator(path: Path, use_cuda: bool) -> nn.Module:  # noqa: N802  (imported lazily: onnxruntime is optional)
    from .onnx_backend import OnnxGenerator as _OnnxGenerator

    return _OnnxGenerator(path, use_cuda=use_cuda)


class Translator:
    """Translate PIL images with one generator: `translator(image) -> image` of the same size."""

    def __init__(self, net: nn.Module, input_nc: int = 3, *, device: str | torch.device = "cpu", tile: int = 0,
                 tile_overlap: int = 32) -> None:
        self.device = torch.device(device)
        self.input_nc = input_nc
        self.net = InferenceGenerator(net.to(self.device).eval(), tile, tile_overlap)

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        array = np.asarray(image.convert("L" if self.input_nc == 1 else "RGB"), dtype=np.float32) / 127.5 - 1
        tensor = torch.from_numpy(array)
        tensor = tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)
        return tensor[None].to(self.device)

    @torch.inference_mode()
    def __call__(self, image: Image.Image) -> Image.Image:
        return to_pil(tensor2im(self.net(self.to_tensor(image))))


def load_translator(checkpoint_dir: str | os.PathLike, *, epoch: str = "latest", generator: str | None = None,
                    device: str | torch.device = "cpu", tile: int = 0, tile_overlap: int = 32) -> Translator:
    """A Translator for the generator saved in `checkpoint_dir`, built from the run's train_opt.json.

    generator -- which network file: "G" (pix2pix, --model test downloads), "G_A" or "G_B" (CycleGAN);
                 default: G if `<epoch>_net_G.pth` (or `.safetensors`) exists, else G_A.
    """
    from networks import build_generator
    from networks.compat import load_state_dict_compat
    from util.checkpoint import SAFETENSORS, existing_checkpoint, load_state_dict
    from util.saved_options import architecture, read_saved_options

    from models import MODELS

    folder = Path(checkpoint_dir)
    saved = read_saved_options(folder)
    arch = architecture(saved)
    if saved.get("model") in MODELS:
        arch |= MODELS.get(saved["model"]).generator_architecture(saved)  # e.g. CUT's anti-aliased generator
    if generator is None:
        generator = "G" if existing_checkpoint(network_file(folder, epoch, "G")) else "G_A"
    input_nc, output_nc = arch["input_nc"], arch["output_nc"]
    if generator.endswith("_B"):  # G_B translates B -> A
        input_nc, output_nc = output_nc, input_nc
    net = build_generator(arch["netG"], input_nc, output_nc, arch["ngf"], norm=arch["norm"],
                          use_dropout=not arch["no_dropout"], residual=arch["residual_output"])
    path = existing_checkpoint(network_file(folder, epoch, generator))
    if path is None:
        found = ", ".join(sorted(p.name for p in folder.glob(f"{epoch}_net_G*") if p.suffix in (".pth", SAFETENSORS)))
        raise I2IError(f"{network_file(folder, epoch, generator)} does not exist (generators for --epoch {epoch} "
                       f"there: {found or 'none'}); pick another epoch or generator.")
    load_state_dict_compat(net, load_state_dict(path), net_name=generator, source=str(path))
    return Translator(net, input_nc, device=device, tile=tile, tile_overlap=tile_overlap)
