"""Time i2i's inference: a generator translating batches (`model.test()`, as test.py runs it), and test.py end to end.

    python benchmarks/infer_speed.py                        # resnet_9blocks and unet_256 at 256 px, batch 1 and 4
    python benchmarks/infer_speed.py --quick
    python benchmarks/infer_speed.py --variants fp32 --onnxruntime   # PyTorch against onnxruntime
    python benchmarks/infer_speed.py --variants fp32 --compile       # and against test.py --compile
    python benchmarks/infer_speed.py --device cuda --batch_sizes 1,8

Network figures are for synthetic batches (no I/O): images per second (median of repeats after warm-up, with
the spread), FLOPs per image, and the fraction of the forward convolution peak measured in the same process
(benchmarks/common.py). The `test.py` row translates a folder of JPEGs with the real driver (loading, the
network, PNG writing and the result page) to show where the rest of the time goes.
"""

from __future__ import annotations

import argparse
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
EXTRA_VARIANTS = {"compile": ["--compile"]}  # test.py --compile: torch.compile with the weights frozen


def use_onnxruntime(model, tmp: str) -> None:
    """Swap the model's generator for its ONNX export run by onnxruntime (test.py --backend onnxruntime)."""
    from inference.export import export_onnx
    from inference.translator import OnnxGenerator

    path = export_onnx(model.netG, Path(tmp) / "netG.onnx", model.opt.input_nc)
    model.netG = OnnxGenerator(path, use_cuda=False)


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
        step()
        flops = common.count_flops(step)
        if variant == ONNXRUNTIME:
            use_onnxruntime(model, tmp)  # the FLOPs stay those of the PyTorch network it was exported from
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = common.time_interleaved(step, peak, device, args.warmup, args.repeats, args.iters)
        if args.profile:
            print(f"== {name} {variant} batch {batch}: top operators of one batch ==")
            print(common.profile_top(step, device))
        record = {"config": name, "variant": variant, "batch": batch, "device": args.device, **common.summary(times),
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


def end_to_end_child(variant: str, batch: int, args: argparse.Namespace, count: int) -> dict:
    """test.py over `count` JPEGs: everything a user waits for, after start-up (model built, weights loaded)."""
    import numpy as np
    from PIL import Image

    from util.runtime import unwrap
    from tests.helpers import load_script

    device = common.device_of(args.device)
    size = 64 if args.quick else 256
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)).save(folder / f"{i:05d}.jpg")
        model, opt = build_model("resnet_9blocks_256", variant, batch, device, args.quick, tmp)
        (Path(tmp) / opt.name).mkdir(parents=True, exist_ok=True)
        torch.save(unwrap(model.netG).state_dict(), Path(tmp) / opt.name / "latest_net_G.pth")
        argv = ["--dataroot", str(folder), "--checkpoints_dir", tmp, "--results_dir", str(Path(tmp) / "results"),
                "--model", "test", "--no_dropout", "--num_test", str(count), "--batch_size", str(batch),
                "--load_size", str(size), "--crop_size", str(size), "--num_threads", str(args.loader_workers),
                "--gpu_ids", "0" if device.type == "cuda" else "-1", *(["--ngf", "8"] if args.quick else []),
                *common.VARIANTS[variant]]
        test_script = load_script("test")
        start = time.perf_counter()
        test_script.main(argv)
        seconds = time.perf_counter() - start
    return {"config": "test.py (jpg->png)", "variant": variant, "batch": batch, "device": args.device,
            "median_s": seconds / count * batch, "img_per_s": count / seconds, "images": count}


def child(argv: list[str], args: argparse.Namespace) -> None:
    name, variant, batch = argv[0], argv[1], int(argv[2])
    if args.threads:
        torch.set_num_threads(args.threads)
    if name == "test.py":
        record = end_to_end_child(variant, batch, args, count=8 if args.quick else args.images)
    else:
        record = network_child(name, variant, batch, args)
    print(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.common_arguments(parser)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of: " + ", ".join(CONFIGS))
    parser.add_argument("--batch_sizes", default="1,4", help="comma-separated batch sizes")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (default: PyTorch's choice)")
    parser.add_argument("--images", type=int, default=64, help="images for the test.py end-to-end row; 0: skip it")
    parser.add_argument("--onnxruntime", action="store_true", help="also time the generator exported to ONNX and "
                        "run by onnxruntime (test.py --backend onnxruntime; CPU)")
    parser.add_argument("--compile", action="store_true", help="also time test.py --compile (torch.compile, the "
                        "weights frozen; compilation is in the untimed warm-up)")
    parser.add_argument("--loader_workers", type=int, default=0, help="test.py --num_threads in the end-to-end row")
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    variants = common.prepare_run(args)
    if args.onnxruntime and args.device == "cpu":
        variants.append(ONNXRUNTIME)
    if args.compile:
        variants.append("compile")
    batches = [int(b) for b in args.batch_sizes.split(",")]
    jobs = [[name, variant, str(b)] for name in args.configs.split(",") for b in batches for variant in variants]
    if args.images > 0:
        jobs += [["test.py", "fp32", str(b)] for b in batches]
    passed = common.child_flags(args, f"--images={args.images}", f"--loader_workers={args.loader_workers}")
    records = common.run_all(Path(__file__).resolve(), jobs, passed, lambda r: f"{r['img_per_s']:.2f} img/s")
    common.report(f"inference speed on {args.device}", records, [
        ("config", "config", "s"), ("variant", "variant", "s"), ("batch", "batch", "d"),
        ("img/s", "img_per_s", ".2f"), ("s/batch", "median_s", ".3f"), ("q1", "q1_s", ".3f"), ("q3", "q3_s", ".3f"),
        ("GFLOP/img", "gflop_per_img", ".1f"), ("GFLOP/s", "gflops", ".1f"), ("conv peak", "conv_peak_gflops", ".1f"),
        ("fraction", "fraction", ".2f"), ("peak GiB", "peak_mem_gib", ".2f"), ("ref img/s", "ref_img_s", ".2f"),
        ("ref fraction", "ref_fraction", ".2f"), ("vs ref", "vs_ref", ".2f"), ("target", "target", ".2f")],
        args.json or "benchmarks/results/infer_speed.json")


if __name__ == "__main__":
    main()
