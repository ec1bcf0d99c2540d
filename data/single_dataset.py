"""`--dataset_mode single`: every image under `<dataroot>` itself (recursive, no phase folder); for `--model test`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from util.errors import I2IError

from . import DATASETS
from .base_dataset import BaseDataset, apply_transform, get_transform
from .image_folder import load_image, make_dataset


@DATASETS.register("single")
class SingleDataset(BaseDataset):
    """One domain only: items {A, A_paths}. Channels from --input_nc (--output_nc with --direction BtoA)."""

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        root = Path(opt.dataroot)
        if not root.is_dir():
            raise I2IError(f"--dataroot '{root}' does not exist. For --dataset_mode single, point --dataroot "
                           "straight at a folder of images (e.g. datasets/horse2zebra/testA).")
        hint = "--dataset_mode single reads every image under --dataroot (e.g. datasets/horse2zebra/testA)."
        self.A_paths = make_dataset(root, opt.max_dataset_size, hint=hint)
        nc = opt.output_nc if opt.direction == "BtoA" else opt.input_nc
        self.transform = get_transform(opt, grayscale=nc == 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.A_paths[index]
        return {"A": apply_transform(self.transform, load_image(path), path), "A_paths": path}

    def __len__(self) -> int:
        return len(self.A_paths)
