"""`--dataset_mode example_noisy`: pairs {A: the photo plus Gaussian noise, B: the photo} from <dataroot>/<phase>."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from data import DATASETS
from data.base_dataset import BaseDataset, apply_transform, get_transform
from data.image_folder import load_image, make_dataset
from util.option_types import number


@DATASETS.register("example_noisy")
class NoisyDataset(BaseDataset):
    """Example plugin: {A: image + N(0, --noise_std), B: image} from any images in <dataroot>/<phase>."""

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.add_argument("--noise_std", type=number(float, at_least=0), default=0.2,
                            help="example_noisy: standard deviation of the noise added to A (images are in [-1, 1])")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        folder = Path(opt.dataroot) / opt.phase
        self.paths = make_dataset(folder, opt.max_dataset_size,
                                  hint=f"--dataset_mode example_noisy reads any images from <dataroot>/{opt.phase}.")
        self.transform = get_transform(opt, grayscale=opt.input_nc == 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        clean = apply_transform(self.transform, load_image(path), path)
        noisy = (clean + self.opt.noise_std * torch.randn_like(clean)).clamp(-1.0, 1.0)
        return {"A": noisy, "B": clean, "A_paths": path, "B_paths": path}

    def __len__(self) -> int:
        return len(self.paths)
