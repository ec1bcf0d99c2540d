"""The template model and dataset mode work as shipped, with the very commands their docstrings show."""

from __future__ import annotations

import re
import shlex

import torch

import data.template_dataset
import models.template_model
from data import DATASETS
from options.train_options import TrainOptions
from tests.helpers import ROOT, load_script, write_images

TINY = ["--gpu_ids", "-1", "--ngf", "8", "--load_size", "32", "--crop_size", "32", "--num_threads", "0"]


def documented_commands(module) -> dict[str, list[str]]:
    """The `python train.py ...` / `python test.py ...` lines of a module docstring, as argv lists."""
    commands = {}
    for line in module.__doc__.splitlines():
        match = re.match(r"\s*python (train|test)\.py (.*)$", line)
        if match:
            commands[match.group(1)] = shlex.split(match.group(2))
    return commands


def test_template_model_runs_with_its_documented_commands(tmp_path):
    commands = documented_commands(models.template_model)
    assert set(commands) == {"train", "test"}
    photos = tmp_path / "my_photos"
    write_images(photos / "train", 3, (40, 40))
    write_images(photos / "test", 2, (40, 40), seed=1)
    common = ["--checkpoints_dir", str(tmp_path / "checkpoints"), *TINY]

    train_args = [str(photos) if a == "./my_photos" else a for a in commands["train"]]
    load_script("train").main(train_args + common + ["--n_epochs", "1", "--n_epochs_decay", "0", "--display_id", "0",
                                                     "--print_freq", "1"])
    run_dir = tmp_path / "checkpoints" / "my_template"
    assert (run_dir / "latest_net_G.pth").is_file()
    assert "G: " in (run_dir / "loss_log.txt").read_text()  # the reference's template crashed right here

    test_args = [str(photos) if a == "./my_photos" else a for a in commands["test"]]
    load_script("test").main(test_args + common + ["--results_dir", str(tmp_path / "results")])
    images = {p.name for p in (tmp_path / "results" / "my_template" / "test_latest" / "images").glob("*.png")}
    assert {"000_real_A.png", "000_fake_B.png", "000_real_B.png", "001_fake_B.png"} <= images


def test_template_dataset_pairs_a_blurred_copy_with_the_photo(tmp_path):
    write_images(tmp_path / "train", 1, (32, 32))
    opt = TrainOptions().parse(["--model", "template", "--dataroot", str(tmp_path), "--no_flip",
                                "--checkpoints_dir", str(tmp_path / "ck"), *TINY])
    assert opt.dataset_mode == "template" and opt.blur_factor == 4  # the model's default, the mode's option
    dataset = DATASETS.get("template")(opt)
    item = dataset[0]
    assert len(dataset) == 1 and item["A_paths"] == item["B_paths"]
    assert item["A"].shape == item["B"].shape == (3, 32, 32)
    # Blurred: A is smoother than B (random-noise images lose most of their pixel-to-pixel variation).
    def roughness(image):
        return (image[:, :, 1:] - image[:, :, :-1]).abs().mean()
    assert roughness(item["A"]) < 0.5 * roughness(item["B"])
    assert not torch.equal(item["A"], item["B"])


def test_plugin_docs_point_at_the_templates():
    text = (ROOT / "docs" / "plugins.md").read_text()
    assert "../models/template_model.py" in text and "../data/template_dataset.py" in text
    assert data.template_dataset.__doc__ and "docs/plugins.md" in data.template_dataset.__doc__
