"""Time i2i's inference: a generator translating batches (`model.test()`, as test.py runs it), and test.py end to end.

    python benchmarks/infer_speed.py                        # resnet_9blocks and unet_256 at 256 px, batch 1 and 4
    python benchmarks/infer_speed.py --quick
    python benchmarks/infer_speed.py --variants fp32 --onnxruntime   # PyTorch against onnxruntime
    python benchmarks/infer_speed.py --variants fp32 --compile       # and against test.py --compile
    python benchmarks/infer_speed.py --variants fp32 --onnxruntime --int8 --batch_sizes 4   # and int8 (CPU)
    python benchmarks/infer_speed.py --device cuda --batch_sizes 1,8

Network figures are for synthetic batches (no I/O): images per second (median of repeats after warm-up, with
the spread), FLOPs per image, and the fraction of the forward convolution peak measured in the same process
(benchmarks/common.py), and how far each backend's output is from the fp32 PyTorch output of the same batch
(mean and largest absolute difference, outputs in [-1, 1], and PSNR). The `test.py` rows translate a folder of
`--images` JPEGs with the real driver (loading, the network, PNG writing and the result page), per network and
backend, to show where the rest of the time goes; the int8 row quantises first (untimed, as its cache would) on
32 other JPEGs and reports the error test.py prints. All images are uniform noise, as are the weights.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; puts the repository on sys.path)
import torch  # noqa: E402

CONFIGS = {"resnet_9blocks_256": ["--netG", "resnet_9blocks", "--no_dropout"],
           "unet_256": ["--netG", "unet_256", "--norm", "batch"]}
# The reference's resnet_9blocks at 256 px, batch 1, on the machine it was measured on (issue 6).
REFERENCE = {"resnet_9blocks_256": {"img_s": (1.11, 1.28), "gflop": 99, "fraction": (0.83, 0.88), "target": 1.05}}


def build_model(name: str, variant: str, batch: int, device: torch.device, quick: bool, tmp: str):
    from models import create_model
    from options.test_options import TestOptions

    size = "64" if quick and name.startswith("resnet") else "256"  # a U-Net 256 needs 256 px
    argv = ["--dataroot", tmp, "--checkpoints_dir", tmp, "--model", "test", "--batch_size", str(batch),
            "--load_size", size, "--crop_size", size, "--gpu_ids", "0" if device.type == "cuda" else "-1",
            *CONFIGS[name], *(["--ngf", "8"] if quick else []), *{**common.VARIANTS, **EXTRA_VARIANTS}.get(variant, [])]
    opt = TestOptions().parse(argv)
    torch.manual_seed(0)
    model = create_model(opt)  # random weights: the speed does not depend on them
    model.eval()
    return model, opt


ONNXRUNTIME = "onnxruntime"  # an extra variant: the generator exported to ONNX and run by onnxruntime (CPU)
INT8 = "onnxruntime_int8"  # an extra variant: the generator quantised to int8 (static QDQ) and run by onnxruntime
EXTRA_VARIANTS = {"compile": ["--compile"]}  # test.py --compile: torch.compile with the weights frozen
E2E_BACKENDS = {"fp32": "torch", ONNXRUNTIME: ONNXRUNTIME, INT8: INT8}  # end-to-end rows: test.py --backend


def use_onnxruntime(model, tmp: str) -> None:
    """Swap the model's generator for its ONNX export run by onnxruntime (test.py --backend onnxruntime)."""
    from inference.export import export_onnx
    from inference.translator import OnnxGenerator

    path = export_onnx(model.netG, Path(tmp) / "netG.onnx", model.opt.input_nc)
    model.netG = OnnxGenerator(path, use_cuda=False)


def use_int8(model, calibration: list[torch.Tensor], tmp: str) -> None:
    """Swap the model's generator for its int8 quantisation (test.py --backend onnxruntime_int8), calibrated on
    `calibration`."""
    from inference.int8 import quantize
    from inference.translator import OnnxGenerator
    from util.runtime import unwrap

    model.netG = OnnxGenerator(quantize(unwrap(model.netG), calibration, Path(tmp)), use_cuda=False)


def difference(output: torch.Tensor, fp32: torch.Tensor) -> dict:
    """Mean and largest |output - fp32| (outputs in [-1, 1]) and the PSNR of output against fp32 (mean over images)."""
    from metrics.paired import psnr

    gap = (output.float().cpu() - fp32.float().cpu()).abs()
    return {"diff_mean": float(gap.mean()), "diff_max": float(gap.max()),
            "psnr_db": float(psnr(output.float().cpu(), fp32.float().cpu(), data_range=2.0).mean())}


def network_child(name: str, variant: str, batch: int, args: argparse.Namespace) -> dict:
    device = common.device_of(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        model, opt = build_model(name, variant, batch, device, args.quick, tmp)
        data = {"A": torch.rand(batch, 3, opt.crop_size, opt.crop_size) * 2 - 1,
                "A_paths": [f"{i}.png" for i in range(batch)]}

        def step() -> None:
            model.set_input(data)
            model.test()

        peak = common.ConvPeak(device, backward=False, amp="amp" in variant, channels_last="channels_last" in variant)
        fp32 = eager_fp32_output(model, data["A"])
        step()
        flops = common.count_flops(step)
        if variant == ONNXRUNTIME:
            use_onnxruntime(model, tmp)  # the FLOPs stay those of the PyTorch network it was exported from
        if variant == INT8:  # calibrated on other batches of the same distribution
            use_int8(model, [torch.rand_like(data["A"][:1]) * 2 - 1 for _ in range(8)], tmp)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = common.time_interleaved(step, peak, device, args.warmup, args.repeats, args.iters)
        if args.profile:
            print(f"== {name} {variant} batch {batch}: top operators of one batch ==")
            print(common.profile_top(step, device))
        step()
        record = {"config": name, "variant": variant, "batch": batch, "device": args.device, **common.summary(times),
                  **difference(model.fake, fp32),
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


def eager_fp32_output(model, batch: torch.Tensor) -> torch.Tensor:
    """The plain PyTorch network's fp32 output for `batch` (what every variant is compared with)."""
    from util.runtime import unwrap

    with torch.no_grad():
        return unwrap(model.netG).float()(batch.float().to(model.device)).cpu()


def random_jpegs(folder: Path, count: int, size: int, seed: int) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(folder / f"{i:05d}.jpg")
    return folder


def prepare_backend(model, opt, backend: str, argv: list[str], test_script) -> None:
    """What a backend needs before test.py runs: the ONNX file (export.py), or the int8 cache (one untimed run)."""
    from inference.export import export_onnx
    from util.checkpoint import network_file
    from util.runtime import unwrap

    if backend == ONNXRUNTIME:
        export_onnx(unwrap(model.netG), network_file(Path(opt.checkpoints_dir) / opt.name, "latest", "G", ".onnx"),
                    opt.input_nc)
    elif backend == INT8:
        with contextlib.redirect_stdout(io.StringIO()):
            test_script.main([*argv, "--num_test", "1"])


def end_to_end_child(name: str, variant: str, batch: int, args: argparse.Namespace, count: int) -> dict:
    """test.py over `count` JPEGs: everything a user waits for, after start-up (model built, weights loaded)."""
    from util.runtime import unwrap
    from tests.helpers import load_script

    device = common.device_of(args.device)
    backend = E2E_BACKENDS[variant]
    with tempfile.TemporaryDirectory() as tmp:
        model, opt = build_model(name, "fp32", batch, device, args.quick, tmp)
        folder = random_jpegs(Path(tmp) / "images", count, opt.crop_size, seed=0)
        calibration = random_jpegs(Path(tmp) / "trainA", 32, opt.crop_size, seed=1)
        (Path(tmp) / opt.name).mkdir(parents=True, exist_ok=True)
        torch.save(unwrap(model.netG).state_dict(), Path(tmp) / opt.name / "latest_net_G.pth")
        argv = ["--dataroot", str(folder), "--checkpoints_dir", tmp, "--results_dir", str(Path(tmp) / "results"),
                "--model", "test", *CONFIGS[name], "--batch_size", str(batch), "--load_size", str(opt.crop_size),
                "--crop_size", str(opt.crop_size), "--num_threads", str(args.loader_workers), "--gpu_ids",
                "0" if device.type == "cuda" else "-1", *(["--ngf", "8"] if args.quick else []), "--eval",
                "--backend", backend, "--calibration_dir", str(calibration)]
        test_script = load_script("test")
        prepare_backend(model, opt, backend, argv, test_script)
        printed = io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(printed):
            test_script.main([*argv, "--num_test", str(count)])
        seconds = time.perf_counter() - start
    return {"config": "test.py (jpg->png)", "net": name, "variant": variant, "batch": batch, "device": args.device,
            "median_s": seconds / count * batch, "img_per_s": count / seconds, "images": count,
            **stated_int8_error(printed.getvalue())}


def stated_int8_error(printed: str) -> dict:
    """The error line test.py prints for int8 (on its calibration images), as the table's columns."""
    import re

    found = re.search(r"\|int8 - fp32\| mean ([\d.]+), max ([\d.]+) .*PSNR ([\d.]+) dB", printed)
    return {"diff_mean": float(found[1]), "diff_max": float(found[2]), "psnr_db": float(found[3])} if found else {}


def child(argv: list[str], args: argparse.Namespace) -> None:
    name, variant, batch = argv[0], argv[1], int(argv[2])
    if args.threads:
        torch.set_num_threads(args.threads)
    if name.startswith("test.py:"):
        record = end_to_end_child(name.split(":", 1)[1], variant, batch, args, count=8 if args.quick else args.images)
    else:
        record = network_child(name, variant, batch, args)
    print(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.common_arguments(parser)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of: " + ", ".join(CONFIGS))
    parser.add_argument("--batch_sizes", default="1,4", help="comma-separated batch sizes")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (default: PyTorch's choice)")
    parser.add_argument("--images", type=int, default=200, help="images for the test.py end-to-end rows; 0: skip them")
    parser.add_argument("--onnxruntime", action="store_true", help="also time the generator exported to ONNX and "
                        "run by onnxruntime (test.py --backend onnxruntime; CPU)")
    parser.add_argument("--int8", action="store_true", help="also time the generator quantised to int8 "
                        "(test.py --backend onnxruntime_int8; CPU)")
    parser.add_argument("--compile", action="store_true", help="also time test.py --compile (torch.compile, the "
                        "weights frozen; compilation is in the untimed warm-up)")
    parser.add_argument("--loader_workers", type=int, default=0, help="test.py --num_threads in the end-to-end row")
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    variants = common.prepare_run(args)
    backends = ["fp32"]
    if args.onnxruntime and args.device == "cpu":
        variants.append(ONNXRUNTIME)
        backends.append(ONNXRUNTIME)
    if args.int8 and args.device == "cpu":
        variants.append(INT8)
        backends.append(INT8)
    if args.compile:
        variants.append("compile")
    batches = [int(b) for b in args.batch_sizes.split(",")]
    configs = args.configs.split(",")
    jobs = [[name, variant, str(b)] for name in configs for b in batches for variant in variants]
    if args.images > 0:
        jobs += [[f"test.py:{name}", backend, str(b)] for name in configs for b in batches for backend in backends]
    passed = common.child_flags(args, f"--images={args.images}", f"--loader_workers={args.loader_workers}")
    records = common.run_all(Path(__file__).resolve(), jobs, passed, lambda r: f"{r['img_per_s']:.2f} img/s")
    common.report(f"inference speed on {args.device}", records, [
        ("config", "config", "s"), ("net", "net", "s"), ("variant", "variant", "s"), ("batch", "batch", "d"),
        ("img/s", "img_per_s", ".2f"), ("|diff| mean", "diff_mean", ".4f"), ("|diff| max", "diff_max", ".4f"),
        ("PSNR dB", "psnr_db", ".1f"), ("s/batch", "median_s", ".3f"), ("q1", "q1_s", ".3f"), ("q3", "q3_s", ".3f"),
        ("GFLOP/img", "gflop_per_img", ".1f"), ("GFLOP/s", "gflops", ".1f"), ("conv peak", "conv_peak_gflops", ".1f"),
        ("fraction", "fraction", ".2f"), ("peak GiB", "peak_mem_gib", ".2f"), ("ref img/s", "ref_img_s", ".2f"),
        ("ref fraction", "ref_fraction", ".2f"), ("vs ref", "vs_ref", ".2f"), ("target", "target", ".2f")],
        args.json or "benchmarks/results/infer_speed.json")


if __name__ == "__main__":
    main()
