"""Options shared by training and testing: the reference's names and defaults."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import warnings
from pathlib import Path

from util import precision
from util.cli import flag_values
from util.collectives import is_main
from util.errors import I2IError
from util.files import atomic_write
from util.option_types import Options, number

from .generator_output import add_generator_output_options
from .legacy import translate_legacy_args
from .plugin_options import add_plugin_options, load_cli_plugins


class OptionParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are `I2IError`s with the closest valid choice."""

    def error(self, message: str):  # type: ignore[override]
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            valid = re.findall(r"'([^']*)'", match.group(2)) or match.group(2).split(", ")
            close = difflib.get_close_matches(match.group(1), valid, n=1)
            if close:
                message += f". Did you mean '{close[0]}'?"
        raise I2IError(f"{self.prog}: {message} (see {self.prog} --help)")


def _given_options(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The `dest` of every option the user typed, so presets never override a user's choice."""
    given = set()
    for arg in argv:
        if arg.startswith("--"):
            action = parser._option_string_actions.get(arg.split("=", 1)[0])
            if action is not None:
                given.add(action.dest)
    return given


class BaseOptions:
    """Builds the parser in the reference's two passes: base options, then the model's and the dataset
    mode's `modify_commandline_options` hooks, then a strict parse."""

    is_train = False
    #: without --dataroot, train.py and test.py use i2i's generated demo data and the model's demo presets
    takes_demo = True

    def __init__(self) -> None:
        self.notes: list[str] = []  # one line each, said when the options are saved (demo presets, ...)
        self.demo = False  # the run reads the generated demo data (no --dataroot)

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        from data import DATASETS
        from data.base_dataset import PREPROCESS_MODES
        from models import MODELS
        from networks import DISCRIMINATORS, GENERATORS, INIT_TYPES, NORMS

        add = parser.add_argument
        add("--dataroot", default=None, help="dataset root (trainA/trainB, or train/ of A|B images; for "
            "single mode the image folder). Left out: i2i's own demo dataset, generated on first use")
        add("--name", default="experiment_name", help="experiment name: where checkpoints and results go")
        add("--gpu_ids", default="0", help="GPU ids, e.g. 0 or 0,1,2; -1 for the CPU")
        add("--checkpoints_dir", default="./checkpoints", help="models are saved here")
        add("--seed", type=number(int, at_least=0, at_most=2**32 - 1), default=None, help="seed Python, NumPy and torch; makes CPU runs deterministic")
        # model parameters
        add("--model", default="cycle_gan", choices=MODELS.names(), help="which model to use")
        add("--input_nc", type=number(int, at_least=1), default=3, help="# of input image channels: 3 for RGB, 1 for grayscale")
        add("--output_nc", type=number(int, at_least=1), default=3, help="# of output image channels: 3 for RGB, 1 for grayscale")
        add("--ngf", type=number(int, at_least=1), default=64, help="# of generator filters in the last conv layer")
        add("--ndf", type=number(int, at_least=1), default=64, help="# of discriminator filters in the first conv layer")
        add("--netD", default="basic", choices=DISCRIMINATORS.names(),
            help="discriminator: basic is a 70x70 PatchGAN; n_layers sets its depth with --n_layers_D")
        add("--netG", default="resnet_9blocks", choices=GENERATORS.names(), help="generator architecture")
        add("--n_layers_D", type=number(int, at_least=1), default=3, help="only used if netD==n_layers")
        add("--norm", default="instance", choices=NORMS.names(), help="instance, batch or no normalization")
        add("--init_type", default="normal", choices=INIT_TYPES.names(), help="network initialization")
        add("--init_gain", type=number(float, above=0), default=0.02, help="scaling factor for normal, xavier and orthogonal")
        add("--no_dropout", action="store_true", help="no dropout for the generator")
        add_generator_output_options(parser)
        add("--preset", default="none", choices=["none", "recommended"],
            help="recommended: i2i's measured recipe for the model (README, Quality); options you type still win; "
            "none: the reference's behaviour")
        # dataset parameters
        add("--dataset_mode", default="unaligned", choices=DATASETS.names(), help="how datasets are loaded")
        add("--direction", default="AtoB", choices=["AtoB", "BtoA"], help="AtoB or BtoA")
        add("--serial_batches", action="store_true", help="take images in order, otherwise randomly")
        add("--num_threads", default=4, type=number(int, at_least=0), help="# threads (DataLoader workers) for loading data")
        add("--batch_size", type=number(int, at_least=1), default=1,
            help="input batch size, per process: under torchrun each process takes this many images per step")
        add("--load_size", type=number(int, at_least=1), default=286, help="scale images to this size")
        add("--crop_size", type=number(int, at_least=1), default=256, help="then crop to this size")
        add("--max_dataset_size", type=number(int, at_least=1), default=float("inf"),
            help="maximum number of samples allowed per dataset")
        add("--preprocess", default="resize_and_crop", choices=list(PREPROCESS_MODES),
            help="scaling and cropping of images at load time")
        add("--no_flip", action="store_true", help="do not flip the images for data augmentation")
        add("--display_winsize", type=number(int, at_least=1), default=256, help="display window size for visdom and HTML")
        # additional parameters
        add("--epoch", type=str, default="latest", help="which epoch to load: latest or a number")
        add("--load_iter", type=number(int, at_least=0), default=0, help="if > 0, load iter_<load_iter> instead of --epoch")
        add("--verbose", action="store_true", help="print the networks")
        add("--suffix", default="", type=str, help="customized suffix: opt.name = opt.name + suffix, "
            "e.g. {model}_{netG}_size{load_size}")
        add("--use_wandb", action="store_true", help="log to Weights & Biases")
        add("--wandb_project_name", type=str, default="CycleGAN-and-pix2pix", help="W&B project name")
        # speed (docs/scaling.md); checkpoints are the same whatever these are
        add("--amp", action="store_true", help="mixed precision: run the networks in --amp_dtype (weights stay fp32)")
        add("--amp_dtype", default="auto", choices=list(precision.AMP_DTYPES),
            help="auto: bf16 on the CPU and on GPUs with bf16 units (Ampere and later), else fp16 (with a gradient "
                 "scaler)")
        add("--channels_last", action="store_true", help="NHWC memory layout for the networks and images")
        add("--compile", action="store_true", help="torch.compile the networks (a C++ compiler on the CPU, Triton "
            "on GPUs); the first steps are slow while it compiles")
        add("--no_tf32", action="store_true", help="GPUs: full fp32 matmuls and convolutions instead of TF32")
        add("--checkpoint_format", default="pth", choices=["pth", "safetensors"],
            help="network files: pth (the reference's) or safetensors (needs `pip install safetensors`); "
            "loading finds either")
        add_plugin_options(parser)  # --plugin, --no_plugin_autoload, --list
        return parser

    # -- parsing --------------------------------------------------------------------------------------

    def make_parser(self) -> argparse.ArgumentParser:
        parser = OptionParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                              prog=Path(sys.argv[0]).name if sys.argv[0] else "i2i")
        return self.initialize(parser)

    def gather_options(self, argv: list[str]) -> argparse.Namespace:
        from data import DATASETS
        from models import MODELS

        load_cli_plugins(argv)  # before the parser exists, so plugin names become choices
        # Names found by the reference's file convention (models/foo_model.py) join the choices.
        for flag, registry in (("--model", MODELS), ("--dataset_mode", DATASETS)):
            for name in flag_values(argv, flag)[-1:]:
                registry.find(name)
        parser = self.make_parser()
        opt, _ = parser.parse_known_args(argv)
        model_class = MODELS.get(opt.model)
        parser = model_class.modify_commandline_options(parser, self.is_train)
        opt, _ = parser.parse_known_args(argv)
        # Defaults that depend on parsed values (e.g. CUT's --CUT_mode presets); typed values still win.
        presets = model_class.preset_defaults(opt) if hasattr(model_class, "preset_defaults") else {}
        known = {action.dest for action in parser._actions}
        parser.set_defaults(**{key: value for key, value in presets.items() if key in known})
        opt, _ = parser.parse_known_args(argv)
        parser = DATASETS.get(opt.dataset_mode).modify_commandline_options(parser, self.is_train)
        opt, _ = parser.parse_known_args(argv)
        given = _given_options(parser, argv)
        if opt.dataroot is None and self.takes_demo:
            from .demo import apply_demo_defaults

            applied = apply_demo_defaults(parser, model_class, given, opt)
            self.notes.append(demo_note(opt.model, applied))
            given |= set(applied)
            opt, _ = parser.parse_known_args(argv)
        if opt.preset == "recommended":
            self.notes.append(apply_recommended(parser, model_class, given, opt))
        self.parser = parser
        return parser.parse_args(argv)

    def parse(self, argv: list[str] | None = None) -> argparse.Namespace:
        """The options of `argv` (default: sys.argv). Writes nothing; `save` prints and writes them."""
        self.notes = []
        argv = translate_legacy_args(list(sys.argv[1:] if argv is None else argv))
        opt = self.gather_options(argv)
        opt.isTrain = self.is_train
        self.finalize(opt)
        if opt.suffix:
            try:
                opt.name = opt.name + "_" + opt.suffix.format(**vars(opt))
            except (KeyError, IndexError, ValueError) as exc:
                raise I2IError(f"--suffix {opt.suffix!r}: not a valid template ({exc}); use option names in "
                               "braces, e.g. {model}_{netG}_size{load_size}.") from None
        self.check(opt)
        self.resolve_run(opt)
        if opt.dataroot is None and self.takes_demo:
            from .demo import demo_dataroot

            opt.dataroot = str(demo_dataroot(opt))
            self.demo = True
        self.typed_gpu_ids = opt.gpu_ids  # the option files keep what was typed, as the reference's do
        opt.gpu_ids = process_gpu_ids(parse_gpu_ids(opt.gpu_ids))
        return Options(**vars(opt))

    def finalize(self, opt: argparse.Namespace) -> None:
        """Hook for values derived after parsing (the test options fix a few)."""

    def resolve_run(self, opt: argparse.Namespace) -> None:
        """Hook for values that depend on the run folder, once --name is final (training: --continue_train)."""

    def check(self, opt: argparse.Namespace) -> None:
        """Checks across options (each option's own range is checked by its type); each names the fix."""

    # -- reporting ------------------------------------------------------------------------------------

    def format_options(self, opt: argparse.Namespace) -> str:
        """The reference's options table: sorted names, value, and the default where it differs."""
        lines = ["----------------- Options ---------------"]
        for key, value in sorted(vars(opt).items()):
            default = self.parser.get_default(key)
            comment = f"\t[default: {default}]" if value != default else ""
            lines.append(f"{key!s:>25}: {value!s:<30}{comment}")
        lines.append("----------------- End -------------------")
        return "\n".join(lines) + "\n"

    def save(self, opt: argparse.Namespace) -> None:
        """Print the notes and the options table, and write `<phase>_opt.txt/.json` into the run folder."""
        if not is_main():
            return  # torchrun: rank 0 prints and writes the options
        for note in self.notes:
            print(note)
        opt = argparse.Namespace(**dict(vars(opt), gpu_ids=self.typed_gpu_ids))
        text = self.format_options(opt)
        print(text, end="")
        expr_dir = Path(opt.checkpoints_dir) / opt.name
        phase = "train" if opt.isTrain else "test"
        try:
            atomic_write(expr_dir / f"{phase}_opt.txt", lambda f: f.write(text), mode="w")
            as_json = json.dumps(vars(opt), indent=2, sort_keys=True, default=str)
            atomic_write(expr_dir / f"{phase}_opt.json", lambda f: f.write(as_json + "\n"), mode="w")
        except I2IError as exc:
            raise I2IError(f"{exc} (--checkpoints_dir {opt.checkpoints_dir} must be writable)") from None


def apply_recommended(parser: argparse.ArgumentParser, model_class: type, given: set[str],
                      opt: argparse.Namespace) -> str:
    """--preset recommended: the model's `recommended_options` (a dict, or a function of the options parsed so far)
    as defaults (typed options win); returns a note."""
    known = {action.dest for action in parser._actions}
    recommended = getattr(model_class, "recommended_options", {})
    recommended = recommended(opt) if callable(recommended) else recommended
    recipe = {k: v for k, v in recommended.items() if k in known and k not in given}
    parser.set_defaults(**recipe)
    return "--preset recommended: " + (" ".join(f"--{k} {v}" for k, v in recipe.items()) or "nothing for this model")


def demo_note(model: str, applied: dict) -> str:
    """The one line that says a run takes the demo data and which presets it took."""
    presets = " ".join(f"--{k} {v}" for k, v in applied.items() if k != "display_id")
    return (f"no --dataroot: i2i's generated demo data, with the demo presets of --model {model}"
            + (f" ({presets})" if presets else "") + "; pass --dataroot to train on your own data")


def parse_gpu_ids(text: str) -> list[int]:
    """'0,1' -> [0, 1]; '-1' -> []. Falls back to the CPU, with one warning, where CUDA is missing."""
    try:
        ids = [int(x) for x in str(text).split(",") if x.strip() != ""]
    except ValueError:
        raise I2IError(f"--gpu_ids {text}: expected comma-separated integers such as 0 or 0,1 (or -1 for the CPU).")
    ids = [i for i in ids if i >= 0]
    if not ids:
        return []
    import torch

    if not torch.cuda.is_available():
        warnings.warn(f"--gpu_ids {text}: CUDA is not available here, running on the CPU "
                      "(pass --gpu_ids -1 to silence this warning).", stacklevel=2)
        return []
    count = torch.cuda.device_count()
    missing = [i for i in ids if i >= count]
    if missing:
        raise I2IError(f"--gpu_ids {text}: no GPU with id {missing[0]}; this machine has {count} "
                       f"(ids 0..{count - 1}). Pass existing ids or -1 for the CPU.")
    return ids


def process_gpu_ids(ids: list[int]) -> list[int]:
    """This process's GPUs: under torchrun one per process, the LOCAL_RANK-th of --gpu_ids when several are listed
    (else GPU LOCAL_RANK); without torchrun all of them."""
    if not ids or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return ids
    import torch

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if len(ids) > 1:
        if local_rank >= len(ids):
            raise I2IError(f"--gpu_ids {','.join(map(str, ids))} lists {len(ids)} GPUs but torchrun started "
                           f"more processes on this node (local rank {local_rank}); give one id per process or "
                           "leave --gpu_ids at its default.")
        return [ids[local_rank]]
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise I2IError(f"torchrun started local rank {local_rank} but this node has {count} GPUs; use "
                       f"--nproc_per_node {count} or fewer.")
    return [local_rank]
