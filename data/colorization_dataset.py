"""`--dataset_mode colorization`: colour photos in `<dataroot>/<phase>`, split into lightness and colour.

After the usual preprocessing each photo is converted to CIE L*a*b* in torch (util/color.py) and returned as
A = L / 50 - 1 (1 channel, in [-1, 1]) and B = ab / 110 (2 channels, about [-1, 1]).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torchvision.transforms.functional as TF

from util.color import rgb_to_lab
from util.errors import I2IError

from . import DATASETS
from .base_dataset import BaseDataset, apply_transform, get_transform
from .image_folder import load_image, make_dataset


@DATASETS.register("colorization")
class ColorizationDataset(BaseDataset):
    """Colour photos from <dataroot>/<phase>: A = lightness L (1 channel), B = colour ab (2 channels)."""

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        parser.set_defaults(input_nc=1, output_nc=2, direction="AtoB")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        if (opt.input_nc, opt.output_nc, opt.direction) != (1, 2, "AtoB"):
            raise I2IError(f"--dataset_mode colorization needs --input_nc 1 --output_nc 2 --direction AtoB (got "
                           f"{opt.input_nc}, {opt.output_nc}, {opt.direction}); leave those options out.")
        folder = Path(opt.dataroot) / opt.phase
        hint = f"--dataset_mode colorization reads colour photos from <dataroot>/{opt.phase} (here '{folder}')."
        self.paths = make_dataset(folder, opt.max_dataset_size, hint=hint)
        self.transform = get_transform(opt, convert=False)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        rgb = TF.to_tensor(apply_transform(self.transform, load_image(path), path))  # [0, 1]
        lab = rgb_to_lab(rgb)
        return {"A": lab[:1] / 50.0 - 1.0, "B": lab[1:] / 110.0, "A_paths": path, "B_paths": path}

    def __len__(self) -> int:
        return len(self.paths)
