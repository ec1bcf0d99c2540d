"""Inference with trained generators: `load_translator` (the Python API, see `inference`) and, for test.py's
models, `prepare_for_inference`, which loads the weights (or the ONNX / int8 files of `--backend`) and wraps
every generator for any input size (`inference.sizing`) and `--tile N` (`inference.tiling`).
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


def prepare_for_inference(model, opt: argparse.Namespace) -> None:
    """Load `model`'s networks for test.py and wrap them for any size and tiling (see the module docstring)."""
    if opt.backend == "onnxruntime":
        model.check_names()
        folder = Path(opt.checkpoints_dir) / opt.name  # where export.py wrote the ONNX files
        model.wrap_networks(lambda name, net: OnnxGenerator(network_file(folder, opt.epoch, name, ".onnx"),
                                                            use_cuda=bool(opt.gpu_ids)))
        return
    model.setup(opt)
    if opt.backend == "onnxruntime_int8":
        model.wrap_networks(lambda name, net: int8_for_test(opt, name, unwrap(net)))
        return
    model.wrap_networks(lambda name, net: InferenceGenerator(net, opt.tile, opt.tile_overlap, opt.tile_stat_passes))


def calibration_folders(opt: argparse.Namespace, net_name: str) -> list[Path]:
    """Where test.py looks for the images that calibrate generator `net_name`: --calibration_dir, else the
    training images of the domain it translates (`<dataroot>/trainA`; for a --dataroot such as
    `.../testA`, its sibling `.../trainA`)."""
    if opt.calibration_dir:
        folder = Path(opt.calibration_dir)
        if not folder.is_dir():
            raise I2IError(f"--calibration_dir {folder} does not exist: give a folder of a few dozen of the images "
                           f"{net_name} translates.")
        return [folder]
    root = Path(opt.dataroot)
    domain = "B" if net_name.endswith("_B") else "A"
    if opt.direction == "BtoA":  # the datasets then feed the B images to G / G_A
        domain = "A" if domain == "B" else "B"
    folders = [root / f"train{domain}"]
    if root.name.startswith(opt.phase):  # a single-domain --dataroot such as datasets/horse2zebra/testA
        folders.append(root.parent / root.name.replace(opt.phase, "train", 1))
    return folders


def int8_for_test(opt: argparse.Namespace, name: str, net: nn.Module) -> nn.Module:
    """Generator `name` quantised to int8, calibrated on training images preprocessed as test.py does."""
    from data.base_dataset import apply_transform, get_transform
    from data.image_folder import load_image

    from .int8 import CACHE_SUFFIX, image_paths, input_channels, int8_generator

    folders = calibration_folders(opt, name)
    paths = next((found for folder in folders if (found := image_paths(folder, opt.calibration_images))), [])
    channels = input_channels(net)
    transform = get_transform(opt, grayscale=channels == 1)
    tag = f"iter_{opt.load_iter}" if opt.load_iter > 0 else opt.epoch
    return int8_generator(
        net, name, paths, lambda path: apply_transform(transform, load_image(path), str(path))[None],
        cache=network_file(Path(opt.checkpoints_dir) / opt.name, tag, name, CACHE_SUFFIX),
        source=" or ".join(str(f) for f in folders))


def OnnxGenerator(path: Path, use_cuda: bool) -> nn.Module:  # noqa: N802  (imported lazily: onnxruntime is optional)
    from .onnx_backend import OnnxGenerator as _OnnxGenerator

    return _OnnxGenerator(path, use_cuda=use_cuda)


def image_tensor(image: Image.Image, input_nc: int) -> torch.Tensor:
    """A PIL image as the C x H x W tensor in [-1, 1] a generator with `input_nc` channels takes."""
    array = np.asarray(image.convert("L" if input_nc == 1 else "RGB"), dtype=np.float32) / 127.5 - 1
    tensor = torch.from_numpy(array)
    return tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)


class Translator:
    """Translate PIL images with one generator: `translator(image) -> image` of the same size.

    `any_size=True` says `net` already takes any size (an exported file), so it is not wrapped for sizes or tiles.
    """

    def __init__(self, net: nn.Module, input_nc: int = 3, *, device: str | torch.device = "cpu", tile: int = 0,
                 tile_overlap: int = 32, any_size: bool = False) -> None:
        self.device = torch.device(device)
        self.input_nc = input_nc
        self.net = net if any_size else InferenceGenerator(net.to(self.device).eval(), tile, tile_overlap)

    def to_tensor(self, image: Image.Image) -> torch.Tensor:
        return image_tensor(image, self.input_nc)[None].to(self.device)

    @torch.inference_mode()
    def translate_batch(self, batch: torch.Tensor) -> torch.Tensor:
        """N x C x H x W in [-1, 1] (the images of one size) -> the translations, on the CPU."""
        return self.net(batch.to(self.device)).cpu()

    @torch.inference_mode()
    def __call__(self, image: Image.Image) -> Image.Image:
        return to_pil(tensor2im(self.net(self.to_tensor(image))))


def load_translator(checkpoint_dir: str | os.PathLike, *, epoch: str = "latest", generator: str | None = None,
                    device: str | torch.device = "cpu", tile: int = 0, tile_overlap: int = 32,
                    backend: str = "torch", calibration_dir: str | os.PathLike | None = None,
                    calibration_images: int = 32, fast_convs: bool = False) -> Translator:
    """A Translator for the generator saved in `checkpoint_dir`, built from the run's train_opt.json.

    generator -- which network file: "G" (pix2pix, --model test downloads), "G_A" or "G_B" (CycleGAN);
                 default: G if `<epoch>_net_G.pth` (or `.safetensors`) exists, else G_A.
    backend   -- "torch"; "onnxruntime": the file export.py wrote (`<epoch>_net_<generator>.onnx`);
                 "onnxruntime_int8": the weights quantised to int8 (`inference.int8`), calibrated on
                 `calibration_dir` (default: the run's `<dataroot>/trainA`, or trainB for a G_B).
    fast_convs -- torch backend on the CPU: the slowest convolutions by faster algorithms (networks/fast_convs.py).
    """
    from util.checkpoint import existing_checkpoint

    folder = Path(checkpoint_dir)
    if generator is None:
        generator = "G" if existing_checkpoint(network_file(folder, epoch, "G")) else "G_A"
    if backend != "torch" and tile > 0:
        raise I2IError(f"--tile works with the torch backend only (not {backend}): drop --tile or the backend.")
    if fast_convs:
        from networks.fast_convs import check_backend

        check_backend(backend)
    net, input_nc = load_generator(folder, epoch, generator)
    if fast_convs:
        from networks.fast_convs import use_fast_convs

        use_fast_convs(net, torch.device(device))
    if backend == "onnxruntime":
        net = OnnxGenerator(network_file(folder, epoch, generator, ".onnx"), use_cuda=torch.device(device).type
                            == "cuda")
    elif backend == "onnxruntime_int8":
        net = int8_for_translate(folder, epoch, generator, net, input_nc, calibration_dir, calibration_images)
    elif backend != "torch":
        raise I2IError(f"unknown backend {backend!r}: torch, onnxruntime or onnxruntime_int8.")
    return Translator(net, input_nc, device=device, tile=tile, tile_overlap=tile_overlap, any_size=backend != "torch")


def load_generator(folder: Path, epoch: str, generator: str) -> tuple[nn.Module, int]:
    """Generator `generator` of checkpoint `epoch` in `folder`, built from train_opt.json; and its input channels."""
    from networks import build_generator, identity_start_arguments
    from networks.compat import load_state_dict_compat
    from util.checkpoint import SAFETENSORS, existing_checkpoint, load_state_dict
    from util.saved_options import architecture, read_saved_options

    from models import MODELS

    saved = read_saved_options(folder)
    arch = architecture(saved)
    if saved.get("model") in MODELS:
        arch |= MODELS.get(saved["model"]).generator_architecture(saved)  # e.g. CUT's anti-aliased generator
    input_nc, output_nc = arch["input_nc"], arch["output_nc"]
    if generator.endswith("_B"):  # G_B translates B -> A
        input_nc, output_nc = output_nc, input_nc
    net = build_generator(arch["netG"], input_nc, output_nc, arch["ngf"], norm=arch["norm"],
                          use_dropout=not arch["no_dropout"], **identity_start_arguments(arch))
    path = existing_checkpoint(network_file(folder, epoch, generator))
    if path is None:
        found = ", ".join(sorted(p.name for p in folder.glob(f"{epoch}_net_G*") if p.suffix in (".pth", SAFETENSORS)))
        raise I2IError(f"{network_file(folder, epoch, generator)} does not exist (generators for --epoch {epoch} "
                       f"there: {found or 'none'}); pick another epoch or generator.")
    load_state_dict_compat(net, load_state_dict(path), net_name=generator, source=str(path))
    return net.eval(), input_nc


def int8_for_translate(folder: Path, epoch: str, generator: str, net: nn.Module, input_nc: int,
                       calibration_dir: str | os.PathLike | None, count: int) -> nn.Module:
    """translate.py's int8 generator: calibrated on whole images, converted as translate.py converts them."""
    from data.image_folder import load_image
    from util.saved_options import read_saved_options

    from .int8 import CACHE_SUFFIX, image_paths, int8_generator

    if calibration_dir is not None:
        candidates = [Path(calibration_dir)]
        if not candidates[0].is_dir():
            raise I2IError(f"--calibration_dir {calibration_dir} does not exist: give a folder of a few dozen of "
                           f"the images {generator} translates.")
    else:
        dataroot = read_saved_options(folder).get("dataroot")
        candidates = [Path(dataroot) / f"train{'B' if generator.endswith('_B') else 'A'}"] if dataroot else []
    paths = next((found for candidate in candidates if (found := image_paths(candidate, count))), [])
    return int8_generator(net, generator, paths, lambda path: image_tensor(load_image(path), input_nc)[None],
                          cache=network_file(folder, epoch, generator, CACHE_SUFFIX),
                          source=" or ".join(map(str, candidates)) or "the run's train_opt.json (no --dataroot)")
