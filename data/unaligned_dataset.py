"""`--dataset_mode unaligned`: two unpaired image folders, `<dataroot>/<phase>A` and `<dataroot>/<phase>B`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from util.errors import I2IError

from . import DATASETS
from .base_dataset import BaseDataset, apply_transform, get_transform
from .image_folder import load_image, make_dataset


@DATASETS.register("unaligned")
class UnalignedDataset(BaseDataset):
    """Unpaired images from <phase>A and <phase>B; B is drawn at random (in order with --serial_batches).

    Length is max(|A|, |B|); item i uses A[i mod |A|]. A and B get independent random crops and flips.
    With --direction BtoA the channel counts swap: folder A gets --output_nc channels, folder B --input_nc.
    """

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        root = Path(opt.dataroot)
        if not root.is_dir():
            raise I2IError(f"--dataroot '{root}' does not exist. Point --dataroot at the folder holding "
                           f"{opt.phase}A/ and {opt.phase}B/.")
        hint = (f"--dataset_mode unaligned reads images from <dataroot>/{opt.phase}A and <dataroot>/{opt.phase}B "
                f"(here '{root / (opt.phase + 'A')}' and '{root / (opt.phase + 'B')}').")
        if not (root / f"{opt.phase}A").is_dir() and (root / opt.phase).is_dir():
            hint += (f" '{root / opt.phase}' exists: that is the aligned (pix2pix) layout of A|B images; "
                     "use --dataset_mode aligned.")
        self.A_paths = make_dataset(root / f"{opt.phase}A", opt.max_dataset_size, hint=hint)
        self.B_paths = make_dataset(root / f"{opt.phase}B", opt.max_dataset_size, hint=hint)
        btoa = opt.direction == "BtoA"
        a_nc, b_nc = (opt.output_nc, opt.input_nc) if btoa else (opt.input_nc, opt.output_nc)
        self.transform_A = get_transform(opt, grayscale=a_nc == 1)
        self.transform_B = get_transform(opt, grayscale=b_nc == 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        A_path = self.A_paths[index % len(self.A_paths)]
        if self.opt.serial_batches:
            B_index = index % len(self.B_paths)
        else:  # a random partner, so A and B do not pair up the same way every epoch
            B_index = int(torch.randint(0, len(self.B_paths), ()).item())
        B_path = self.B_paths[B_index]
        A = apply_transform(self.transform_A, load_image(A_path), A_path)
        B = apply_transform(self.transform_B, load_image(B_path), B_path)
        return {"A": A, "B": B, "A_paths": A_path, "B_paths": B_path}

    def __len__(self) -> int:
        return max(len(self.A_paths), len(self.B_paths))
