"""Translate one image or a folder of images with a trained generator; no network flags needed.

    python translate.py photo.jpg --name maps_cyclegan                  # -> translated/photo.png
    python translate.py ./my_images --name maps_cyclegan --output out/  # every image in the folder
    python translate.py big.tif --name maps_cyclegan --tile 512         # very large images, tile by tile
    python translate.py ./my_images --name maps_cyclegan --backend onnxruntime_int8   # int8 on the CPU
    python translate.py ./my_images --name maps_cyclegan --fast_convs  # faster float convolutions on the CPU

The architecture comes from checkpoints/NAME/train_opt.json; results keep each input's size. In Python:
`from inference import load_translator` (see the README).
"""

from __future__ import annotations

import util.cpu_setup  # noqa: F401, I001  (first, before torch: glibc reads its allocator settings once)

import argparse
from pathlib import Path

from tqdm import tqdm

from data.image_folder import is_image_file
from options.base_options import OptionParser, parse_gpu_ids
from util.cli import run_main
from util.errors import I2IError
from util.option_types import number
from inference import load_translator
from inference.folder import translate_files


def make_parser() -> argparse.ArgumentParser:
    parser = OptionParser(prog="translate.py", description=__doc__.split("\n\n")[0],
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("input", help="an image file or a folder of images")
    add("--name", default=None, help="experiment name: reads checkpoints_dir/NAME")
    add("--checkpoints_dir", default="./checkpoints", help="where the experiments are")
    add("--checkpoint", default=None, help="the checkpoint folder itself (instead of --name)")
    add("--epoch", default="latest", help="which checkpoint: latest or an epoch number")
    add("--generator", default=None, help="G, G_A or G_B (default: G if present, else G_A)")
    add("--output", default="translated", help="folder for the results (PNG, same names)")
    add("--tile", type=number(int, at_least=0), default=0, help="translate images larger than N pixels in N x N tiles")
    add("--tile_overlap", type=number(int, at_least=0), default=32, help="pixels shared by neighbouring tiles")
    add("--gpu_ids", default="-1", help="GPU id, or -1 for the CPU")
    add("--batch_size", type=number(int, at_least=1), default=4,
        help="consecutive images of one size translated together")
    add("--num_threads", type=number(int, at_least=0), default=2, help="DataLoader workers decoding the next images")
    add("--backend", default="torch", choices=["torch", "onnxruntime", "onnxruntime_int8"],
        help="the PyTorch checkpoint, the ONNX file export.py wrote, or the checkpoint quantised to int8 by "
        "onnxruntime (cached as <epoch>_net_<generator>.int8.onnx; prints its error against fp32)")
    add("--calibration_dir", default=None,
        help="onnxruntime_int8: images that calibrate the quantisation (default: the run's <dataroot>/trainA, "
        "trainB for G_B)")
    add("--calibration_images", type=number(int, at_least=1), default=32,
        help="onnxruntime_int8: how many calibration images (the first, sorted)")
    add("--fast_convs", action="store_true", help="torch backend on the CPU: the ResNets' slowest convolutions by "
        "faster algorithms (Winograd's F(4x4, 3x3), kernel rows), same weights, output within about 1e-5")
    return parser


def main(argv: list[str] | None = None) -> list[Path]:
    args = make_parser().parse_args(argv)
    if args.checkpoint is None and args.name is None:
        raise I2IError("say which model: --name NAME (under --checkpoints_dir) or --checkpoint FOLDER.")
    folder = Path(args.checkpoint) if args.checkpoint else Path(args.checkpoints_dir) / args.name
    gpu_ids = parse_gpu_ids(args.gpu_ids)
    translator = load_translator(folder, epoch=args.epoch, generator=args.generator,
                                 device=f"cuda:{gpu_ids[0]}" if gpu_ids else "cpu", tile=args.tile,
                                 tile_overlap=args.tile_overlap, backend=args.backend,
                                 calibration_dir=args.calibration_dir, calibration_images=args.calibration_images,
                                 fast_convs=args.fast_convs)
    source = Path(args.input)
    if source.is_file():
        files = [source]
    elif source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and is_image_file(p.name))
        if not files:
            raise I2IError(f"{source} holds no images.")
    else:
        raise I2IError(f"{source} does not exist.")
    targets = [(Path(args.output) / (path.relative_to(source) if source.is_dir() else Path(path.name)))
               .with_suffix(".png") for path in files]
    with tqdm(total=len(files), desc="translate", unit="img", disable=None) as bar:
        translate_files(translator, files, targets, batch_size=args.batch_size, workers=args.num_threads,
                        progress=bar.update)
    print(f"{len(targets)} image(s) written to {args.output}")
    return targets


if __name__ == "__main__":
    run_main(main)
