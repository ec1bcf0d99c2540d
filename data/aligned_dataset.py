"""`--dataset_mode aligned`: `<dataroot>/<phase>/` holds pairs stored as one image, A left and B right (pix2pix)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from util.errors import I2IError

from . import DATASETS
from .base_dataset import BaseDataset, apply_transform, get_params, get_transform, validate_preprocess
from .image_folder import load_image, make_dataset


@DATASETS.register("aligned")
class AlignedDataset(BaseDataset):
    """Paired images {A, B} from A|B side-by-side files; A and B share one crop position and flip.

    Build such files from two folders of same-named images with datasets/combine_A_and_B.py.
    'A' is always the left half; --direction is applied by the model. With BtoA the channel counts swap.
    """

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)
        validate_preprocess(opt)
        root = Path(opt.dataroot)
        folder = root / opt.phase
        if not root.is_dir():
            raise I2IError(f"--dataroot '{root}' does not exist. Point --dataroot at the folder holding "
                           f"{opt.phase}/ with A|B side-by-side images.")
        if not folder.is_dir() and (root / f"{opt.phase}A").is_dir():
            raise I2IError(
                f"'{root}' has the unaligned (CycleGAN) layout {opt.phase}A/ {opt.phase}B/, but "
                f"--dataset_mode aligned reads A|B side-by-side images from '{folder}'. Use --dataset_mode "
                "unaligned (e.g. --model cycle_gan), or build A|B images with datasets/combine_A_and_B.py "
                "if A and B are true pairs with the same file names."
            )
        hint = (f"--dataset_mode aligned reads A|B side-by-side images from <dataroot>/{opt.phase}; "
                "build them with datasets/combine_A_and_B.py.")
        self.AB_paths = make_dataset(folder, opt.max_dataset_size, hint=hint)
        btoa = opt.direction == "BtoA"
        self.a_nc, self.b_nc = (opt.output_nc, opt.input_nc) if btoa else (opt.input_nc, opt.output_nc)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.AB_paths[index]
        AB = load_image(path)
        w, h = AB.size
        half = w // 2
        A, B = AB.crop((0, 0, half, h)), AB.crop((half, 0, w, h))
        params = get_params(self.opt, A.size)  # one crop and flip for both halves
        A = apply_transform(get_transform(self.opt, params, grayscale=self.a_nc == 1), A, path)
        B = apply_transform(get_transform(self.opt, params, grayscale=self.b_nc == 1), B, path)
        return {"A": A, "B": B, "A_paths": path, "B_paths": path}

    def __len__(self) -> int:
        return len(self.AB_paths)
