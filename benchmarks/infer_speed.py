"""Time i2i's inference: a generator translating batches (`model.test()`, as test.py runs it), and test.py end to end.

    python benchmarks/infer_speed.py                        # resnet_9blocks and unet_256 at 256 px, batch 1 and 4
    python benchmarks/infer_speed.py --quick
    python benchmarks/infer_speed.py --variants fp32 --onnxruntime   # PyTorch against onnxruntime
    python benchmarks/infer_speed.py --variants fp32 --compile       # and against test.py --compile
    python benchmarks/infer_speed.py --variants fp32 --fast_convs    # and against test.py --fast_convs
    python benchmarks/infer_speed.py --variants fp32 --onnxruntime --int8 --batch_sizes 4   # and int8 (CPU)
    python benchmarks/infer_speed.py --device cuda --batch_sizes 1,8
    python benchmarks/infer_speed.py --variants fp32 --compile --fast_convs --onnxruntime --int8 --photos \\
        --weights checkpoints/NAME/latest_net_G_A.pth --reference_checkout ../pytorch-CycleGAN-and-pix2pix

Network figures are for batches of the folder's first images (no I/O timed): images per second (median of
repeats after warm-up, with the spread), FLOPs per image, and the fraction of the forward convolution peak
measured in the same process (benchmarks/common.py), and how far each backend's output is from the fp32 PyTorch
output of the same weights (mean and largest absolute difference over the folder's first 16 images, outputs in
[-1, 1], and PSNR). The int8 rows quantise exactly as test.py does (its int8_for_test, on the 32 calibration
images), so the int8 network row's error is that of the int8 test.py row, measured on other images than the
ones it was calibrated on.

The `test.py` rows translate a folder of `--images` JPEGs with the real driver, each run a fresh process
(`python test.py ...`, cwd outside the repository): decoding, the network, PNG writing and the result pages. Every
row runs twice, on the first `--images_small` and on all `--images` images of the same folder, and reports the
steady rate (images_large - images_small) / (t_large - t_small), which leaves out start-up (imports, building the
model, loading the weights, torch.compile's compilation, loading the ONNX or int8 file) the same way for every
row, next to the whole-process rate of the large run (start-up included). Backends: eager PyTorch, test.py
--compile (--compile), test.py --fast_convs (--fast_convs; with --compile too, also both flags together),
--backend onnxruntime (--onnxruntime; the ONNX file exported first, untimed) and --backend onnxruntime_int8
(--int8; quantised first in one untimed run, as its cache would be).

With `--reference_checkout PATH` (a checkout of pytorch-CycleGAN-and-pix2pix) the reference's own test.py
translates the same folder with the same weights (written as `latest_net_G.pth`, which its `--model test`
loads): `python PATH/test.py --model test --netG ... --norm ... --num_test N --gpu_ids -1 --eval` with i2i's
folder off PYTHONPATH, run before the first i2i row, between every two and after the last, so each i2i row is
compared with the mean of the two reference runs around it (steady and whole-process rates). Every run must write
N fake images; the large runs' fakes are compared with those of i2i's eager fp32 row (8-bit levels, PSNR) and,
for the first two images, with the generator's own fp32 output (which shows that the weights were loaded).

Inputs: uniform noise JPEGs and random weights by default; `--photos` makes the folder from crops (random scale,
position and flip) of scikit-image's astronaut, coffee, motorcycle and rocket photographs, and the 32 calibration
images from crops of two other photographs (chelsea, grace_hopper); `--weights FILE` takes a trained
resnet_9blocks generator's state_dict (e.g. train.py's `checkpoints/NAME/latest_net_G_A.pth`; `--ngf` is read
from the file, `--residual_output`/`--affine_output` and the affine filter's options from a train_opt.json
beside it) for every row.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; puts the repository on sys.path)
import numpy as np  # noqa: E402
import quality_tasks  # noqa: E402  (benchmarks/quality_tasks.py: which photographs)
import torch  # noqa: E402

CONFIGS = {"resnet_9blocks_256": ["--netG", "resnet_9blocks", "--norm", "instance", "--no_dropout"],
           "unet_256": ["--netG", "unet_256", "--norm", "batch"]}  # the same flags mean the same for the reference
# The reference's resnet_9blocks at 256 px, batch 1, on the machine it was measured on (issue 6).
REFERENCE = {"resnet_9blocks_256": {"img_s": (1.11, 1.28), "gflop": 99, "fraction": (0.83, 0.88), "target": 1.05}}
# Issue 16: end to end against the reference's test.py, the best backend within 1/255 of fp32, and int8.
TARGETS = {"within": 1.25, "int8": 2.0, "int8_psnr_db": 35.0}
LEVEL = 2 / 255  # one 8-bit level of the [-1, 1] outputs: "within 1/255" of the output range
ERROR_IMAGES = 16  # images the network rows measure the error on (the folder's first)
CALIBRATION_IMAGES = 32  # test.py's --calibration_images default
CHECK_IMAGES = 2  # end-to-end fakes compared with the generator's own fp32 output
RUN_NAME = "bench"  # --name of the end-to-end runs


def build_model(name: str, variant: str, batch: int, device: torch.device, quick: bool, tmp: str,
                weights: str | None = None):
    """i2i's `--model test` for config `name` (and `variant`'s flags): random weights (seed 0), or `weights`."""
    from models import create_model
    from options.test_options import TestOptions
    from util.runtime import unwrap

    size = "64" if quick and name.startswith("resnet") else "256"  # a U-Net 256 needs 256 px
    arch = weights_architecture(weights, name) if weights else {"ngf": 8 if quick else 64} | output_options({})
    argv = ["--dataroot", tmp, "--checkpoints_dir", tmp, "--model", "test", "--batch_size", str(batch),
            "--load_size", size, "--crop_size", size, "--gpu_ids", "0" if device.type == "cuda" else "-1",
            *CONFIGS[name], *architecture_flags(arch), *{**common.VARIANTS, **EXTRA_VARIANTS}.get(variant, [])]
    opt = TestOptions().parse(argv)
    torch.manual_seed(0)
    model = create_model(opt)  # random weights unless --weights: the speed does not depend on them
    if weights:
        load_weights(unwrap(model.netG), weights)  # before the first call: --compile freezes the weights then
    model.eval()
    return model, opt


def output_options(options: dict) -> dict:
    """The options that change the generator's output (--residual_output, --affine_output and its filter's) from
    a run's options (train_opt.json or vars(opt)), the defaults where they are missing."""
    from networks.residual import IDENTITY_START_OPTIONS
    from util.saved_options import ARCHITECTURE

    return {key: type(ARCHITECTURE[key])(options.get(key, ARCHITECTURE[key])) for key in IDENTITY_START_OPTIONS}


def architecture_flags(arch: dict) -> list[str]:
    flags = ["--ngf", str(arch["ngf"])]
    for key, default in output_options({}).items():
        if isinstance(default, bool):
            flags += [f"--{key}"] if arch[key] else []
        elif arch[key] != default:
            flags += [f"--{key}", str(arch[key])]
    return flags


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    from util.checkpoint import load_state_dict

    return load_state_dict(path)


def weights_architecture(path: str | os.PathLike, config: str) -> dict:
    """What `--weights` needs besides --netG resnet_9blocks: --ngf (the first convolution's output channels) and,
    from a train_opt.json beside the file (train.py writes one), the options of output_options."""
    if not config.startswith("resnet_9blocks"):
        raise SystemExit(f"error: --weights takes a resnet_9blocks generator; config {config} is another network "
                         "(pass --configs resnet_9blocks_256).")
    state = read_weights(path)
    first = next((t for t in state.values() if t.dim() == 4), None)
    if first is None:
        raise SystemExit(f"error: --weights {path}: no convolution weights in the file.")
    arch = {"ngf": int(first.shape[0])} | output_options({})
    saved = Path(path).parent / "train_opt.json"
    if saved.is_file():
        options = json.loads(saved.read_text(encoding="utf-8"))
        if options.get("netG", "resnet_9blocks") != "resnet_9blocks" or options.get("norm", "instance") != "instance":
            raise SystemExit(f"error: --weights {path}: {saved} says --netG {options.get('netG')} --norm "
                             f"{options.get('norm')}; the benchmark's resnet config is resnet_9blocks, instance norm.")
        arch |= output_options(options)
    return arch


def load_weights(net: torch.nn.Module, path: str | os.PathLike) -> None:
    from networks.compat import load_state_dict_compat

    load_state_dict_compat(net, read_weights(path), net_name="G", source=str(path))


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """A digest of a state_dict's names and values: the same weights give the same digest in any process."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


ONNXRUNTIME = "onnxruntime"  # an extra variant: the generator exported to ONNX and run by onnxruntime (CPU)
INT8 = "onnxruntime_int8"  # an extra variant: the generator quantised to int8 (static QDQ) and run by onnxruntime
# extra variants: test.py --compile (torch.compile with the weights frozen) and --fast_convs (networks/fast_convs.py)
EXTRA_VARIANTS = {"compile": ["--compile"], "fast_convs": ["--fast_convs"],
                  "compile+fast_convs": ["--compile", "--fast_convs"]}
E2E_BACKENDS = {"fp32": ["--backend", "torch"], **{name: ["--backend", "torch", *flags]
                                                    for name, flags in EXTRA_VARIANTS.items()},
                ONNXRUNTIME: ["--backend", ONNXRUNTIME], INT8: ["--backend", INT8]}  # end-to-end rows: test.py flags


# -- the inputs: a folder of JPEGs to translate and a folder of calibration images ---------------------------


def noise_images(count: int, size: int, seed: int) -> Iterator:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8))


def full_photographs(calibration: bool) -> list:
    """benchmarks/quality_tasks.py's photographs at full resolution: its training ones (astronaut, coffee,
    motorcycle, rocket) to translate, its test ones (chelsea, grace_hopper) to calibrate int8 on."""
    from PIL import Image

    try:
        import skimage
    except ImportError:
        raise SystemExit("error: --photos needs scikit-image (pip install scikit-image)") from None
    folder = Path(skimage.__file__).parent / "data"
    names = quality_tasks.SKIMAGE_TEST if calibration else quality_tasks.SKIMAGE_TRAIN
    photos = [Image.open(folder / name).convert("RGB") for name in names]
    if calibration:
        with contextlib.suppress(ImportError, OSError, ValueError):
            import matplotlib.cbook

            with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
                photos.append(Image.open(f).convert("RGB"))
    return photos


def photo_crops(photos: list, count: int, size: int, seed: int) -> Iterator:
    """`count` size x size crops: the photographs in turn, each scaled so its shorter side is a random length
    between `size` and 2 x `size` (at most its own), cropped at a random place and flipped half the time."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(count):
        photo = photos[i % len(photos)]
        short = min(photo.size)
        side = int(rng.integers(size, max(size, min(short, 2 * size)) + 1))
        ratio = side / short
        scaled = photo.resize((max(size, round(photo.width * ratio)), max(size, round(photo.height * ratio))),
                              Image.Resampling.LANCZOS)
        x, y = int(rng.integers(0, scaled.width - size + 1)), int(rng.integers(0, scaled.height - size + 1))
        crop = scaled.crop((x, y, x + size, y + size))
        yield crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop


def write_inputs(root: Path, count: int, size: int, photos: bool) -> tuple[Path, Path]:
    """`root/images` (`count` JPEGs to translate) and `root/calibration` (32 other JPEGs); the first k images
    are the same for any `count`, so every process of a run sees the same ones."""
    images, calibration = root / "images", root / "calibration"
    if photos:
        sources = (photo_crops(full_photographs(False), count, size, seed=0),
                   photo_crops(full_photographs(True), CALIBRATION_IMAGES, size, seed=1))
    else:
        sources = noise_images(count, size, seed=0), noise_images(CALIBRATION_IMAGES, size, seed=1)
    for folder, source in zip((images, calibration), sources, strict=True):
        folder.mkdir(parents=True)
        for i, image in enumerate(source):
            image.save(folder / f"{i:05d}.jpg", quality=90)
    return images, calibration


def load_inputs(opt, folder: Path, count: int) -> torch.Tensor:
    """The first `count` images of `folder` as test.py's loader makes them (N x C x H x W in [-1, 1])."""
    from data.base_dataset import apply_transform, get_transform
    from data.image_folder import load_image

    transform = get_transform(opt, grayscale=opt.input_nc == 1)
    paths = sorted(folder.glob("*.jpg"))[:count]
    return torch.stack([apply_transform(transform, load_image(p), str(p)) for p in paths])


# -- the network rows ------------------------------------------------------------------------------------------


def use_onnxruntime(model, tmp: str) -> None:
    """Swap the model's generator for its ONNX export run by onnxruntime (test.py --backend onnxruntime)."""
    from inference.export import export_onnx
    from inference.translator import OnnxGenerator

    path = export_onnx(model.netG, Path(tmp) / "netG.onnx", model.opt.input_nc)
    model.netG = OnnxGenerator(path, use_cuda=False)


def use_int8(model, opt, calibration: Path) -> None:
    """Swap the model's generator for its int8 quantisation exactly as test.py --backend onnxruntime_int8 makes it
    (inference.translator.int8_for_test: the same calibration images, preprocessed by the same transform)."""
    from inference.translator import int8_for_test
    from util.option_types import replaced
    from util.runtime import unwrap

    opt = replaced(opt, calibration_dir=str(calibration), calibration_images=CALIBRATION_IMAGES)
    (Path(opt.checkpoints_dir) / opt.name).mkdir(parents=True, exist_ok=True)  # where the int8 file is cached
    with contextlib.redirect_stdout(io.StringIO()):  # its error line is on the calibration images themselves
        model.netG = int8_for_test(opt, "G", unwrap(model.netG))


def difference(output: torch.Tensor, fp32: torch.Tensor) -> dict:
    """Mean and largest |output - fp32| (outputs in [-1, 1]) and the PSNR of output against fp32 (mean over images)."""
    from metrics.paired import psnr

    gap = (output.float().cpu() - fp32.float().cpu()).abs()
    return {"diff_mean": float(gap.mean()), "diff_max": float(gap.max()),
            "psnr_db": float(psnr(output.float().cpu(), fp32.float().cpu(), data_range=2.0).mean())}


def network_child(name: str, variant: str, batch: int, args: argparse.Namespace) -> dict:
    from util.runtime import unwrap

    device = common.device_of(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        model, opt = build_model(name, variant, batch, device, args.quick, tmp, args.weights)
        scored = max(batch, (4 if args.quick else ERROR_IMAGES) // batch * batch)
        images, calibration = write_inputs(Path(tmp) / "inputs", scored, opt.crop_size, args.photos)
        inputs = load_inputs(opt, images, scored)
        data = {"A": inputs[:batch], "A_paths": [f"{i}.png" for i in range(batch)]}

        def step(batch_data: dict = data) -> None:
            model.set_input(batch_data)
            model.test()

        peak = common.ConvPeak(device, backward=False, amp="amp" in variant, channels_last="channels_last" in variant)
        weights = state_digest(unwrap(model.netG).state_dict())
        direct = direct_fp32_network(model)
        fp32 = eager_fp32_output(direct, inputs, batch)
        step()
        with torch.no_grad():
            flops = common.count_flops(lambda: direct(inputs[:batch].float().to(device)))
        if variant == ONNXRUNTIME:
            use_onnxruntime(model, tmp)  # the FLOPs stay those of the PyTorch network it was exported from
        if variant == INT8:  # calibrated on the calibration folder, scored on the images to translate
            use_int8(model, opt, calibration)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = common.time_interleaved(step, peak, device, args.warmup, args.repeats, args.iters)
        if args.profile:
            print(f"== {name} {variant} batch {batch}: top operators of one batch ==")
            print(common.profile_top(step, device))
        outputs = []
        for chunk in inputs.split(batch):
            step({"A": chunk, "A_paths": [f"{i}.png" for i in range(len(chunk))]})
            outputs.append(model.fake.float().cpu())
        record = {"config": name, "variant": variant, "batch": batch, "device": args.device, **common.summary(times),
                  **difference(torch.cat(outputs), fp32), "error_images": scored,
                  "inputs": "photos" if args.photos else "noise", "weights": args.weights or "random",
                  "weights_sha256": weights, "fp32_output_mean": float(fp32.mean()),
                  "gflop_per_img": flops / batch / 1e9, "conv_peak_gflops": peak.median(),
                  "peak_mem_gib": common.peak_memory(device) / 2**30}
    record["img_per_s"] = batch / record["median_s"]
    record["gflops"] = record["gflop_per_img"] * record["img_per_s"]
    record["fraction"] = record["gflops"] / record["conv_peak_gflops"]
    ref = REFERENCE.get(name)
    if ref and device.type == "cpu" and not args.quick:
        ref_fraction = sum(ref["fraction"]) / 2
        record |= {"ref_img_s": sum(ref["img_s"]) / 2, "ref_fraction": ref_fraction, "target": ref["target"],
                   "vs_ref": record["fraction"] / ref_fraction}
    return record


def direct_fp32_network(model) -> torch.nn.Module:
    """A float32 copy of the model's plain PyTorch generator, with --fast_convs' layers back to direct convolutions:
    what every variant's output is compared with, and whose FLOPs every row counts (Winograd's are fewer)."""
    from networks.fast_convs import convert_to_direct
    from util.runtime import unwrap

    net = copy.deepcopy(unwrap(model.netG)).float()
    convert_to_direct(net)
    return net


def eager_fp32_output(net: torch.nn.Module, inputs: torch.Tensor, batch: int | None = None) -> torch.Tensor:
    """`net`'s output for `inputs`, in batches of `batch`."""
    device = next(net.parameters()).device
    with torch.no_grad():
        return torch.cat([net(chunk.float().to(device)).cpu() for chunk in inputs.split(batch or len(inputs))])


# -- the end-to-end rows: test.py (i2i's, and the reference's) in fresh processes --------------------------------


@dataclass
class EndToEnd:
    """One config's end-to-end set-up: the folders, the checkpoints both sides load, what the fakes should be."""

    config: str
    work: Path
    size: int
    arch: dict
    images: Path
    calibration: Path
    checkpoints: Path  # i2i's: latest_net_G.pth (+ .onnx, .int8.onnx)
    reference_checkpoints: Path  # the reference's: the same latest_net_G.pth, in a folder of its own
    expected: np.ndarray  # uint8 N x H x W x C: the generator's fp32 output for the first CHECK_IMAGES images
    weights_sha256: str
    calibration_error: dict = field(default_factory=dict)
    runs: int = 0

    def results_dir(self) -> Path:
        self.runs += 1
        return self.work / f"results_{self.runs:03d}"


def prepare_end_to_end(config: str, args: argparse.Namespace, backends: list[str], work: Path) -> EndToEnd:
    """Write the folders and the checkpoint (random weights, seed 0, as the network rows; or --weights), export
    the ONNX file and make the int8 cache (untimed), and compute the fakes the first images should give."""
    from inference.export import export_onnx
    from util.checkpoint import network_file
    from util.images import tensors2ims
    from util.runtime import unwrap

    with contextlib.redirect_stdout(io.StringIO()):  # "model [TestModel] was created"
        model, opt = build_model(config, "fp32", 1, torch.device("cpu"), args.quick, str(work / "build"), args.weights)
    net = unwrap(model.netG)
    images, calibration = write_inputs(work, args.images, opt.crop_size, args.photos)
    checkpoints, reference_checkpoints = work / "checkpoints" / RUN_NAME, work / "reference_checkpoints" / RUN_NAME
    checkpoints.mkdir(parents=True)
    reference_checkpoints.mkdir(parents=True)
    state = net.state_dict()
    torch.save(state, checkpoints / "latest_net_G.pth")
    shutil.copyfile(checkpoints / "latest_net_G.pth", reference_checkpoints / "latest_net_G.pth")
    arch = {"ngf": opt.ngf} | output_options(vars(opt))
    expected = tensors2ims(eager_fp32_output(direct_fp32_network(model), load_inputs(opt, images, CHECK_IMAGES)))
    setup = EndToEnd(config, work, opt.crop_size, arch, images, calibration, checkpoints.parent,
                     reference_checkpoints.parent, np.stack(expected), state_digest(state))
    if ONNXRUNTIME in backends:
        export_onnx(net, network_file(checkpoints, "latest", "G", ".onnx"), opt.input_nc)
    if INT8 in backends:  # one untimed run writes the cache the timed runs load (as a user's first run would)
        printed = run_process(i2i_command(setup, INT8, 1, 1, setup.results_dir(), args), setup.work, args.threads)[1]
        setup.calibration_error = stated_int8_error(printed)
    return setup


def i2i_command(setup: EndToEnd, variant: str, batch: int, count: int, results: Path,
                args: argparse.Namespace) -> list[str]:
    return [sys.executable, str(common.ROOT / "test.py"), "--dataroot", str(setup.images), "--name", RUN_NAME,
            "--checkpoints_dir", str(setup.checkpoints), "--results_dir", str(results), "--model", "test",
            *CONFIGS[setup.config], *architecture_flags(setup.arch), "--batch_size", str(batch),
            "--load_size", str(setup.size), "--crop_size", str(setup.size), "--num_threads", str(args.loader_workers),
            "--gpu_ids", "0" if args.device == "cuda" else "-1", "--eval", *E2E_BACKENDS[variant],
            "--calibration_dir", str(setup.calibration), "--num_test", str(count)]


def reference_command(setup: EndToEnd, count: int, results: Path, args: argparse.Namespace) -> list[str]:
    """The reference's test.py (its --model test: --dataset_mode single, batch 1, no loader workers, loads
    `<checkpoints_dir>/<name>/latest_net_G.pth`); --eval as i2i's rows (batch norm statistics, no dropout)."""
    return [sys.executable, str(Path(args.reference_checkout).resolve() / "test.py"), "--dataroot", str(setup.images),
            "--name", RUN_NAME, "--model", "test", *CONFIGS[setup.config], "--ngf", str(setup.arch["ngf"]),
            "--checkpoints_dir", str(setup.reference_checkpoints), "--results_dir", str(results),
            "--num_test", str(count), "--load_size", str(setup.size), "--crop_size", str(setup.size),
            "--gpu_ids", "0" if args.device == "cuda" else "-1", "--eval"]


def process_environment(threads: int) -> dict[str, str]:
    """The environment of both sides' processes: this one's, with the repository taken off PYTHONPATH (the
    reference's `models`, `options`, `data` and `util` share i2i's package names), and --threads as
    OMP_NUM_THREADS."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"} | ({"OMP_NUM_THREADS": str(threads)} if threads else {})
    root = common.ROOT.resolve()
    kept = [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
            if p and not Path(p).resolve().is_relative_to(root)]
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        env.pop("PYTHONPATH", None)
    return env


def run_process(command: list[str], cwd: Path, threads: int) -> tuple[float, str]:
    """Run `command`; its wall time (seconds, process start to exit) and its output."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=process_environment(threads), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {result.returncode}):\n{result.stdout[-3000:]}")
    return seconds, result.stdout


def written_fakes(results: Path, count: int, command: list[str]) -> list[Path]:
    """The `<name>_fake.png` files a test.py run wrote (both name them so), which must be `count`."""
    fakes = sorted((results / RUN_NAME / "test_latest" / "images").glob("*_fake.png"))
    if len(fakes) != count:
        raise RuntimeError(f"{' '.join(command)} wrote {len(fakes)} fake images, not {count}")
    return fakes


def read_fakes(paths: list[Path]) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def compare_fakes(fakes: np.ndarray, baseline: np.ndarray) -> dict:
    """8-bit fakes against the baseline's: mean and largest |difference| in levels, PSNR (pooled over all)."""
    gap = np.abs(fakes.astype(np.int16) - baseline.astype(np.int16))
    mse = float((gap.astype(np.float64) ** 2).mean())
    return {"png_diff_mean": float(gap.mean()), "png_diff_max": int(gap.max()),
            "png_psnr_db": 10 * np.log10(255**2 / mse) if mse > 0 else None, "png_identical": mse == 0}


def measure(setup: EndToEnd, side: str, variant: str, batch: int, args: argparse.Namespace) -> tuple[dict, np.ndarray]:
    """One row: the small then the large run of one side, each a fresh process; its record and its fakes."""
    seconds = {}
    for count in (args.images_small, args.images):
        results = setup.results_dir()
        command = reference_command(setup, count, results, args) if side == "reference" else \
            i2i_command(setup, variant, batch, count, results, args)
        seconds[count], _ = run_process(command, setup.work, args.threads)
        fakes = written_fakes(results, count, command)
        if count == args.images:
            outputs = read_fakes(fakes)
        shutil.rmtree(results)
    small, large = seconds[args.images_small], seconds[args.images]
    record = {"config": ("reference " if side == "reference" else "") + "test.py (jpg->png)", "side": side,
              "net": setup.config, "variant": variant, "batch": batch, "device": args.device,
              "images_small": args.images_small, "images": args.images, "seconds_small": small,
              "seconds_large": large, "img_per_s": (args.images - args.images_small) / (large - small)
              if large > small else None, "whole_img_per_s": args.images / large, "whole_s": large,
              "median_s": (large - small) / (args.images - args.images_small) * batch if large > small else None,
              "inputs": "photos" if args.photos else "noise", "weights": args.weights or "random",
              "weights_sha256": setup.weights_sha256}
    check = compare_fakes(outputs[:CHECK_IMAGES], setup.expected)
    record["model_check_max"] = check["png_diff_max"]  # levels, against the generator's fp32 output
    if side == "reference":
        record["reference_checkout"] = str(Path(args.reference_checkout).resolve())
        if setup.arch["residual_output"] or setup.arch["affine_output"]:
            record["note"] = ("the reference has no --residual_output/--affine_output: its fakes are not the same "
                              "network's")
    if variant == INT8 and side == "i2i":
        record |= {f"calibration_{k}": v for k, v in setup.calibration_error.items()}
    return record, outputs


def end_to_end(config: str, args: argparse.Namespace, backends: list[str], batches: list[int]) -> list[dict]:
    """Every end-to-end row of `config`, in the order run: reference, i2i, reference, i2i, ..., reference."""
    rows = [("i2i", variant, b) for b in batches for variant in backends]
    plan = []
    for row in rows:
        plan += [("reference", "fp32", 1)] if args.reference_checkout else []
        plan.append(row)
    plan += [("reference", "fp32", 1)] if args.reference_checkout else []
    baseline_row = ("i2i", "fp32", min(batches))
    records, pending, baseline = [], [], None
    with tempfile.TemporaryDirectory(prefix="i2i_infer_e2e_") as work:
        setup = prepare_end_to_end(config, args, backends, Path(work))
        for side, variant, batch in plan:
            record, fakes = measure(setup, side, variant, batch, args)
            print(f"done: {record['config']} {config} {variant} batch {batch}: {fmt(record['img_per_s'])} img/s "
                  f"steady, {record['whole_img_per_s']:.2f} whole", file=sys.stderr)
            records.append(record)
            if (side, variant, batch) == baseline_row and baseline is None:
                baseline = fakes
                for earlier, earlier_fakes in pending:
                    earlier |= compare_fakes(earlier_fakes, baseline)
                pending = []
            if baseline is None:
                pending.append((record, fakes))
            else:
                record |= compare_fakes(fakes, baseline)
    references = [i for i, r in enumerate(records) if r["side"] == "reference"]
    for i, record in enumerate(records):
        if record["side"] != "i2i" or not references:
            continue
        around = [records[j] for j in references if abs(j - i) == 1]  # the reference runs just before and after
        steady = [r["img_per_s"] for r in around if r["img_per_s"]]
        record["ref_steady_img_s"] = sum(steady) / len(steady) if steady else None
        record["ref_whole_img_s"] = sum(r["whole_img_per_s"] for r in around) / len(around)
        record["vs_ref_steady"] = record["img_per_s"] / record["ref_steady_img_s"] \
            if record["img_per_s"] and record["ref_steady_img_s"] else None
        record["vs_ref_whole"] = record["whole_img_per_s"] / record["ref_whole_img_s"]
    return records


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def stated_int8_error(printed: str) -> dict:
    """The error line test.py prints for int8 (on its calibration images themselves)."""
    import re

    found = re.search(r"\|int8 - fp32\| mean ([\d.]+), max ([\d.]+) .*PSNR ([\d.]+) dB", printed)
    return {"diff_mean": float(found[1]), "diff_max": float(found[2]), "psnr_db": float(found[3])} if found else {}


def attach_network_errors(e2e: list[dict], network: list[dict]) -> None:
    """Give each i2i end-to-end row the error its backend's network row measured (same weights, same images)."""
    by_key = {(r["config"], r["variant"], r["batch"]): r for r in network}
    for record in e2e:
        source = by_key.get((record["net"], record["variant"], record["batch"])) if record["side"] == "i2i" else None
        if source is None:
            continue
        record |= {"net_diff_mean": source["diff_mean"], "net_diff_max": source["diff_max"],
                   "net_psnr_db": source["psnr_db"], "net_error_images": source["error_images"],
                   "net_diff_max_levels": source["diff_max"] / LEVEL,
                   "within_1_255": source["diff_max"] <= LEVEL}


def verdicts(e2e: list[dict]) -> list[str]:
    """Issue 16's two questions, per config, from the i2i rows' ratios to the reference's test.py."""
    lines = []
    for config in dict.fromkeys(r["net"] for r in e2e):
        rows = [r for r in e2e if r["net"] == config and r["side"] == "i2i" and r.get("vs_ref_steady")]
        # int8 is judged on its own line: its error depends on the weights (random ones keep it within 1/255)
        within = [r for r in rows if r.get("within_1_255") and r["variant"] != INT8]
        if within:
            best = max(within, key=lambda r: r["vs_ref_steady"])
            lines.append(f"{config}: best float backend within 1/255 of fp32: {best['variant']} batch {best['batch']}, "
                         f"{best['vs_ref_steady']:.2f}x the reference's test.py steady ({best['vs_ref_whole']:.2f}x "
                         f"whole process), |diff| max {best['net_diff_max_levels']:.3f} levels; target "
                         f"{TARGETS['within']}x: {'met' if best['vs_ref_steady'] >= TARGETS['within'] else 'not met'}")
        int8 = [r for r in rows if r["variant"] == INT8]
        if int8:
            best = max(int8, key=lambda r: r["vs_ref_steady"])
            psnr = best.get("net_psnr_db")
            met = best["vs_ref_steady"] >= TARGETS["int8"] and psnr is not None and psnr >= TARGETS["int8_psnr_db"]
            lines.append(f"{config}: int8 batch {best['batch']}: {best['vs_ref_steady']:.2f}x the reference's test.py "
                         f"steady ({best['vs_ref_whole']:.2f}x whole process), PSNR against fp32 "
                         f"{fmt(psnr)} dB on {best.get('net_error_images', '-')} images (float outputs), "
                         f"{fmt(best.get('png_psnr_db'))} dB on the {best['images']} PNGs; target "
                         f"{TARGETS['int8']}x and {TARGETS['int8_psnr_db']:.0f} dB: {'met' if met else 'not met'}")
    return lines


def child(argv: list[str], args: argparse.Namespace) -> None:
    name, variant, batch = argv[0], argv[1], int(argv[2])
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(network_child(name, variant, batch, args)))


NETWORK_COLUMNS = [
    ("config", "config", "s"), ("variant", "variant", "s"), ("batch", "batch", "d"), ("img/s", "img_per_s", ".2f"),
    ("|diff| mean", "diff_mean", ".2e"), ("|diff| max", "diff_max", ".2e"), ("PSNR dB", "psnr_db", ".1f"),
    ("s/batch", "median_s", ".3f"), ("q1", "q1_s", ".3f"), ("q3", "q3_s", ".3f"),
    ("GFLOP/img", "gflop_per_img", ".1f"), ("GFLOP/s", "gflops", ".1f"), ("conv peak", "conv_peak_gflops", ".1f"),
    ("fraction", "fraction", ".2f"), ("peak GiB", "peak_mem_gib", ".2f"), ("ref img/s", "ref_img_s", ".2f"),
    ("ref fraction", "ref_fraction", ".2f"), ("vs ref", "vs_ref", ".2f"), ("target", "target", ".2f")]
E2E_COLUMNS = [
    ("config", "config", "s"), ("net", "net", "s"), ("variant", "variant", "s"), ("batch", "batch", "d"),
    ("img/s steady", "img_per_s", ".2f"), ("img/s whole", "whole_img_per_s", ".2f"), ("whole s", "whole_s", ".1f"),
    ("ref steady", "ref_steady_img_s", ".2f"), ("vs ref steady", "vs_ref_steady", ".2f"),
    ("vs ref whole", "vs_ref_whole", ".2f"), ("net |diff| mean", "net_diff_mean", ".2e"),
    ("net |diff| max", "net_diff_max", ".2e"), ("(levels)", "net_diff_max_levels", ".3f"),
    ("within 1/255", "within_1_255", ""), ("net PSNR dB", "net_psnr_db", ".1f"),
    ("png |diff| mean", "png_diff_mean", ".3f"), ("png max", "png_diff_max", "d"),
    ("png PSNR dB", "png_psnr_db", ".1f"), ("vs model (levels)", "model_check_max", "d")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.common_arguments(parser)
    parser.add_argument("--configs", default=None, help="comma-separated subset of: " + ", ".join(CONFIGS) +
                        " (default: all; resnet_9blocks_256 with --weights)")
    parser.add_argument("--batch_sizes", default="1,4", help="comma-separated batch sizes")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (default: PyTorch's choice; the "
                        "test.py processes of both sides get OMP_NUM_THREADS)")
    parser.add_argument("--images", type=int, default=None, help="images of the test.py end-to-end rows' large run "
                        "(default 200, 8 with --quick); 0: skip those rows")
    parser.add_argument("--images_small", type=int, default=None, help="images of their small run (default 20, 4 "
                        "with --quick): the difference of the two runs is the steady rate")
    parser.add_argument("--onnxruntime", action="store_true", help="also time the generator exported to ONNX and "
                        "run by onnxruntime (test.py --backend onnxruntime; CPU)")
    parser.add_argument("--int8", action="store_true", help="also time the generator quantised to int8 "
                        "(test.py --backend onnxruntime_int8; CPU)")
    parser.add_argument("--compile", action="store_true", help="also time test.py --compile (torch.compile, the "
                        "weights frozen; compilation is in the untimed warm-up, and in start-up end to end)")
    parser.add_argument("--fast_convs", action="store_true", help="also time test.py --fast_convs (the ResNet "
                        "blocks' 3x3 convolutions by Winograd's F(4x4, 3x3), the last one by kernel rows), and with "
                        "--compile both flags together")
    parser.add_argument("--loader_workers", type=int, default=0, help="test.py --num_threads in the end-to-end rows")
    parser.add_argument("--reference_checkout", default=None, metavar="PATH", help="a checkout of "
                        "pytorch-CycleGAN-and-pix2pix: also time its own test.py end to end on the same folder and "
                        "weights, alternating with i2i's rows")
    parser.add_argument("--weights", default=None, metavar="FILE", help="a trained resnet_9blocks generator's "
                        "state_dict (.pth, e.g. checkpoints/NAME/latest_net_G_A.pth) for every row, instead of "
                        "random weights")
    parser.add_argument("--photos", action="store_true", help="crops of real photographs instead of uniform noise "
                        "for the images to translate and (from other photographs) the int8 calibration images")
    args = parser.parse_args()
    if args.images is None:
        args.images = 8 if args.quick else 200
    if args.images_small is None:
        args.images_small = 4 if args.quick else 20
    if args.weights:
        args.weights = str(Path(args.weights).resolve())
    if args.child:
        child(args.child, args)
        return
    variants = common.prepare_run(args)
    configs = (args.configs or ("resnet_9blocks_256" if args.weights else ",".join(CONFIGS))).split(",")
    batches = [int(b) for b in args.batch_sizes.split(",")]
    check_arguments(args, configs, batches)
    wanted = {"compile": args.compile, "fast_convs": args.fast_convs,
              "compile+fast_convs": args.compile and args.fast_convs,
              ONNXRUNTIME: args.onnxruntime and args.device == "cpu", INT8: args.int8 and args.device == "cpu"}
    extra = [name for name, on in wanted.items() if on]  # rows both as network rows and as test.py backends
    variants += extra
    backends = ["fp32", *extra]
    jobs = [[name, variant, str(b)] for name in configs for b in batches for variant in variants]
    passed = common.child_flags(args, *([f"--weights={args.weights}"] if args.weights else []),
                                *(["--photos"] if args.photos else []))
    network = common.run_all(Path(__file__).resolve(), jobs, passed, lambda r: f"{r['img_per_s']:.2f} img/s")
    e2e, failed = [], []
    if args.images > 0:
        for name in configs:
            try:
                e2e += end_to_end(name, args, backends, batches)
            except RuntimeError as error:  # the other configs and the network rows are still reported
                print(f"failed: test.py end to end, {name}: {error}", file=sys.stderr)
                failed.append(name)
        attach_network_errors(e2e, network)
    info = common.machine()
    print(f"\ninference speed on {args.device} ({info.get('gpu') or info.get('cpu')}, {info['threads']} threads, "
          f"load average {info['load_average'][0]:.1f}; {'photographs' if args.photos else 'noise images'}, "
          f"{args.weights or 'random weights'})")
    common.print_table(network, NETWORK_COLUMNS)
    lines = []
    if e2e:
        print(f"\ntest.py end to end, {args.images_small} and {args.images} images per row (steady: the difference "
              "of the two runs; whole: the large run's process, start-up included); |diff| from the network rows "
              "(outputs in [-1, 1], 1 level = 2/255); png: the fakes against i2i's eager fp32 row's")
        common.print_table(e2e, E2E_COLUMNS)
        for note in dict.fromkeys(r["note"] for r in e2e if r.get("note")):
            print(f"note: {note}")
        lines = verdicts(e2e)
        for line in lines:
            print(line)
    meta = info | {"inputs": "photos" if args.photos else "noise", "weights": args.weights or "random",
                   "verdicts": lines, "targets": TARGETS}
    if args.reference_checkout:
        import reference_checkout

        meta |= {"reference_checkout": str(Path(args.reference_checkout).resolve()),
                 "reference_commit": reference_checkout.checkout_commit(args.reference_checkout)}
    common.write_json(args.json or "benchmarks/results/infer_speed.json", [*network, *e2e], meta)
    if failed:
        raise SystemExit(f"error: the end-to-end rows of {', '.join(failed)} failed (see above)")


def check_arguments(args: argparse.Namespace, configs: list[str], batches: list[int]) -> None:
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"error: unknown --configs {','.join(unknown)}; choose from {', '.join(CONFIGS)}")
    if args.weights:
        if not Path(args.weights).is_file():
            raise SystemExit(f"error: --weights {args.weights} does not exist")
        for config in configs:
            arch = weights_architecture(args.weights, config)
        from networks import build_generator, identity_start_arguments
        from util.errors import I2IError

        try:  # here rather than in every row's process
            load_weights(build_generator("resnet_9blocks", 3, 3, arch["ngf"], norm="instance", use_dropout=False,
                                         **identity_start_arguments(arch)), args.weights)
        except I2IError as error:
            raise SystemExit(f"error: --weights: {error}") from None
    if args.images > 0:
        if not 0 < args.images_small < args.images:
            raise SystemExit(f"error: --images_small {args.images_small} must be between 0 and --images {args.images}")
        uneven = [b for b in batches if args.images % b or args.images_small % b]
        if uneven:
            raise SystemExit(f"error: --images {args.images} and --images_small {args.images_small} must be multiples "
                             f"of every batch size (not of {uneven}): a last, smaller batch would time another shape")
    if args.reference_checkout:
        checkout = Path(args.reference_checkout)
        if not (checkout / "test.py").is_file() or not (checkout / "models" / "test_model.py").is_file():
            raise SystemExit(f"error: --reference_checkout {checkout}: no test.py and models/test_model.py there; "
                             "give a checkout of pytorch-CycleGAN-and-pix2pix.")
        if args.images <= 0:
            raise SystemExit("error: --reference_checkout times test.py end to end; give --images above 0")


if __name__ == "__main__":
    main()
