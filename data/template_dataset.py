"""A starting point for your own dataset mode: copy this file, rename the class and the registered name, edit.

It works as shipped (the test suite trains the template model on it through the CLI): every image under
`<dataroot>/<phase>/` (train/, test/, ...) gives one pair, B = the image and A = a blurred copy of it (shrunk
by `--blur_factor`, then enlarged back), so any folder of photos is a small deblurring dataset.

What i2i asks of a dataset mode (see docs/plugins.md):

- subclass `BaseDataset` and register with `@DATASETS.register("name")` (or name the file `<name>_dataset.py`
  and the class `<Name>Dataset`, the reference's convention);
- `__len__()` and `__getitem__(index)` returning a dict of tensors and paths; the models read `A`, `B`,
  `A_paths`, `B_paths` (and `--direction` swaps A and B in the model, not here);
- optionally the classmethod `modify_commandline_options(parser, is_train)`.

Use `get_transform(opt, params)` for `--preprocess`, `--load_size`, `--crop_size` and `--no_flip`; for a pair,
draw `params = get_params(opt, size)` once so both images get the same crop and flip.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from PIL import Image

from util.option_types import number

from . import DATASETS
from .base_dataset import BaseDataset, apply_transform, get_params, get_transform
from .image_folder import load_image, make_dataset


@DATASETS.register("template")
class TemplateDataset(BaseDataset):
    """Template: {A: blurred photo, B: photo} from any images in <dataroot>/<phase> (a starting point)."""

    @classmethod
    def modify_commandline_options(cls, parser: argparse.ArgumentParser, is_train: bool) -> argparse.ArgumentParser:
        """Add this dataset mode's options (here one) or change defaults of existing ones."""
        parser.add_argument("--blur_factor", type=number(int, at_least=1), default=4,
                            help="template dataset: A is the image shrunk by this factor and enlarged back")
        return parser

    def __init__(self, opt: argparse.Namespace) -> None:
        super().__init__(opt)  # sets self.opt and self.root
        folder = Path(opt.dataroot) / opt.phase
        hint = f"--dataset_mode template reads any images from <dataroot>/{opt.phase}."
        self.paths = make_dataset(folder, opt.max_dataset_size, hint=hint)  # sorted; I2IError if empty
        self.a_gray = (opt.output_nc if opt.direction == "BtoA" else opt.input_nc) == 1
        self.b_gray = (opt.input_nc if opt.direction == "BtoA" else opt.output_nc) == 1

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        photo = load_image(path)  # RGB; an unreadable file raises I2IError naming it
        factor = max(1, self.opt.blur_factor)
        small = photo.resize((max(1, photo.width // factor), max(1, photo.height // factor)), Image.Resampling.BOX)
        blurred = small.resize(photo.size, Image.Resampling.BILINEAR)
        params = get_params(self.opt, photo.size)  # one crop and flip for both images of the pair
        A = apply_transform(get_transform(self.opt, params, grayscale=self.a_gray), blurred, path)
        B = apply_transform(get_transform(self.opt, params, grayscale=self.b_gray), photo, path)
        return {"A": A, "B": B, "A_paths": path, "B_paths": path}

    def __len__(self) -> int:
        return len(self.paths)
