"""Peak memory of tiled inference on a 4096 x 4096 image (CPU).

    python benchmarks/tiled_4096.py [--size 4096] [--tile 512] [--overlap 64] [--ngf 8] [--passes 1]

Prints the process's peak resident memory before and after the translation, and the time taken.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from networks import build_generator  # noqa: E402
from inference.tiling import translate_tiled  # noqa: E402


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--ngf", type=int, default=8)
    parser.add_argument("--netG", default="resnet_6blocks")
    parser.add_argument("--passes", type=int, default=1)
    args = parser.parse_args()
    net = build_generator(args.netG, 3, 3, args.ngf, norm="instance").eval()
    image = torch.rand(1, 3, args.size, args.size) * 2 - 1
    before = peak_mib()
    start = time.time()
    out = translate_tiled(net, image, args.tile, args.overlap, stat_passes=args.passes)
    elapsed = time.time() - start
    image_mib = image.numel() * 4 / 2**20
    print(f"{args.netG} ngf={args.ngf} on {args.size}x{args.size}, tile {args.tile}, overlap {args.overlap}, "
          f"{args.passes} stat pass(es): output {tuple(out.shape)} in {elapsed:.0f} s; peak RSS {before:.0f} MiB "
          f"before (input image {image_mib:.0f} MiB), {peak_mib():.0f} MiB after; torch threads "
          f"{torch.get_num_threads()}")


if __name__ == "__main__":
    main()
