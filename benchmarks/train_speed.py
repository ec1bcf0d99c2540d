"""Time i2i's own training iterations (`model.set_input` + `model.optimize_parameters`, as train.py runs them).

    python benchmarks/train_speed.py                        # every config x variant on the CPU; table + JSON
    python benchmarks/train_speed.py --quick                # a smoke run at tiny widths and sizes
    python benchmarks/train_speed.py --configs cycle_gan_128 --variants fp32 --profile
    python benchmarks/train_speed.py --device cuda          # GPUs: the table at batch 1 and 8, then 1 vs all GPUs
    python benchmarks/train_speed.py --configs cycle_gan_256 --variants fp32,fp32+ckpt   # --checkpoint_activations
    python benchmarks/train_speed.py --configs cycle_gan_256 --variants recipe_unfiltered,recipe  # the filter's cost
    python benchmarks/train_speed.py --sweep                # cycle_gan batch 1 at 256/512/1024 px, with and without

Each config x variant runs in its own process on synthetic images (data loading is timed separately, per
image, through i2i's dataset classes on JPEG files of the config's size). Reported: seconds per iteration
(median of repeats x iters after warm-up, with the spread), FLOPs per iteration (torch.utils.flop_counter),
achieved GFLOP/s and its fraction of the convolution peak measured in the same process (benchmarks/common.py),
peak memory (the process's maximum RSS on the CPU, max_memory_allocated on a GPU), the training steps' own memory
(`step GiB`: the peak from just before the first step, after the model, its optimizers, the data and the conv
reference are built, less the memory held then: on the CPU the RSS high-water mark reset then through
/proc/self/clear_refs, less the RSS then; on a GPU max_memory_allocated less memory_allocated then; it includes the
gradients and Adam's moments, allocated by the first step; on the CPU with train.py's allocator settings, which
keep freed memory resident, or with `--live_rss` a fixed 128 KiB mmap threshold, so that freed tensors leave the
RSS) and, apart, the part the iterations added to what the
built model held, less its gradients and Adam's moments (`act GiB`: the
activations and the backward pass's temporaries, what grows with the pixels), page faults
per iteration, and the reference's figures on the machine it was measured on. Every variant has a `+ckpt` twin
that adds --checkpoint_activations (fp32+ckpt, amp+ckpt, ...), run when named in --variants, as is
`fast_convs` and `fast_convs+ckpt` (fp32 with train.py --fast_convs).

`--sweep`: cycle_gan at batch 1 and 256, 512 and 1024 px (`--sweep_sizes`), fp32 with and without
--checkpoint_activations (or the --variants given), smallest size first. Before each larger size its peak is
predicted from the last one measured (the model's memory plus the iterations' part scaled by the pixel count); a
size predicted over `--memory_budget_gb` (default: this machine's RAM, or the GPU's memory, less a margin) is
reported as skipped, with the larger ones, instead of being run out of memory. Each `+ckpt` row also gives its
peak, step memory and time over the same size without the flag, and the time ratio at equal conv rate.

With `--device cuda` the defaults are those docs/scaling.md's GPU tables need, in one command of a few minutes:
cycle_gan and pix2pix at 256 px, each fp32 / --amp / --channels_last / both, at batch 1 and 8 (20 timed iterations
per repeat after 5 of warm-up), then train.py under torchrun on 1 GPU and on all of them (benchmarks/scaling.py,
cycle_gan 256 px); `--no_scaling` skips that part. Results: benchmarks/results/train_speed_gpu.json and
scaling_gpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (benchmarks/common.py; puts the repository on sys.path)
import torch  # noqa: E402

# name: (options, batch size); the reference's defaults otherwise (ngf/ndf 64, resnet_9blocks, PatchGAN, ...)
CONFIGS = {
    "cycle_gan_128": (["--model", "cycle_gan", "--load_size", "128", "--crop_size", "128"], 1),
    "cycle_gan_256": (["--model", "cycle_gan", "--load_size", "256", "--crop_size", "256"], 1),
    "pix2pix_256": (["--model", "pix2pix", "--load_size", "256", "--crop_size", "256"], 1),
    "pix2pix_unet128_bs4": (["--model", "pix2pix", "--netG", "unet_128", "--load_size", "128", "--crop_size", "128"],
                            4),
}
#: --device cuda: the configs of docs/scaling.md's GPU estimates, at these batch sizes
GPU_CONFIGS = ("cycle_gan_256", "pix2pix_256")
GPU_BATCH_SIZES = "1,8"
QUICK = ["--ngf", "8", "--ndf", "8"]
QUICK_SIZE = {"cycle_gan_128": 64, "cycle_gan_256": 64, "pix2pix_256": 256, "pix2pix_unet128_bs4": 128}
#: each variant of benchmarks/common.py, its twin with --checkpoint_activations (training only), fp32 with
#: train.py --fast_convs (Winograd and kernel-row layers on the CPU), and the model's --preset recommended with and
#: without the affine output's edge-aware filter (what the filter costs a step)
VARIANTS = {**common.VARIANTS,
            **{f"{name}+ckpt": [*flags, "--checkpoint_activations"] for name, flags in common.VARIANTS.items()},
            "fast_convs": ["--fast_convs"], "fast_convs+ckpt": ["--fast_convs", "--checkpoint_activations"],
            "recipe": ["--preset", "recommended"],
            "recipe_unfiltered": ["--preset", "recommended", "--affine_smooth", "1", "--affine_edge_sigma", "0"]}
SWEEP_SIZES = "256,512,1024"
SWEEP_VARIANTS = "fp32,fp32+ckpt"
MMAP_THRESHOLD = 128 * 1024  # bytes; MALLOC_MMAP_THRESHOLD_ of the CPU children (see main)


def sweep_config(side: int) -> tuple[list[str], int]:
    return ["--model", "cycle_gan", "--load_size", str(side), "--crop_size", str(side)], 1


def config(name: str) -> tuple[list[str], int]:
    """A named config, or `cycle_gan_<side>` for any side (--sweep's)."""
    if name in CONFIGS:
        return CONFIGS[name]
    if name.startswith("cycle_gan_") and name.removeprefix("cycle_gan_").isdigit():
        return sweep_config(int(name.removeprefix("cycle_gan_")))
    raise SystemExit(f"error: unknown config {name!r}; choose from {', '.join(CONFIGS)} or cycle_gan_<side>")

# The reference on the 2-core CPU it was measured on (issue 6): s/it of two runs, FLOP/it, fraction of the
# forward+backward conv rate, and i2i's target speed-up.
REFERENCE = {
    "cycle_gan_128": {"s_it": (5.33, 4.63), "gflop": 469, "fraction": (0.67, 0.70), "target": 1.25},
    "cycle_gan_256": {"s_it": (18.9, 16.6), "gflop": 1879, "fraction": (0.75, 0.78), "target": 1.1},
    "pix2pix_256": {"s_it": (1.16, 1.25), "gflop": 87, "fraction": (0.57, 0.48), "target": 1.6},
    "pix2pix_unet128_bs4": {"s_it": (1.20, 1.18), "gflop": 85, "fraction": (0.53, 0.50), "target": 1.6},
}


def build_model(name: str, variant: str, batch: int, device: torch.device, quick: bool, tmp: str):
    from models import create_model
    from options.train_options import TrainOptions

    args, _ = config(name)
    if quick:  # --sweep's sizes are its own (cycle_gan_32, _48, _64)
        size = str(QUICK_SIZE.get(name, args[args.index("--crop_size") + 1]))
        args = [*args, *QUICK, "--load_size", size, "--crop_size", size]
    argv = ["--dataroot", tmp, "--checkpoints_dir", tmp, "--display_id", "0", "--batch_size", str(batch),
            "--gpu_ids", "0" if device.type == "cuda" else "-1", *args, *VARIANTS[variant]]
    opt = TrainOptions().parse(argv)
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup(opt)
    return model, opt


def synthetic_batch(opt: argparse.Namespace, batch: int) -> dict:
    size = opt.crop_size
    return {"A": torch.rand(batch, opt.input_nc, size, size) * 2 - 1, "B": torch.rand(batch, opt.output_nc, size, size)
            * 2 - 1, "A_paths": [f"a{i}.png" for i in range(batch)], "B_paths": [f"b{i}.png" for i in range(batch)]}


def data_cost(opt: argparse.Namespace, tmp: str, count: int = 8) -> float:
    """Milliseconds to load and augment one training sample (JPEG decode, resize, crop, flip, to tensor)."""
    import numpy as np
    from PIL import Image

    from data import DATASETS

    rng = np.random.default_rng(0)
    root = Path(tmp) / "data"
    side = opt.load_size + 30  # a little larger than --load_size, as real datasets are
    for folder, width in (("trainA", side), ("trainB", side), ("train", 2 * side)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(side, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / folder / f"{i}.jpg", quality=90)
    data_opt = argparse.Namespace(**{**vars(opt), "dataroot": str(root), "phase": "train"})
    dataset = DATASETS.get(opt.dataset_mode)(data_opt)
    dataset[0]
    start = time.perf_counter()
    for i in range(count):
        dataset[i]
    return (time.perf_counter() - start) / count * 1000


def current_rss() -> int:
    """The process's resident bytes now (/proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def step_memory_start(device: torch.device) -> tuple[int, int]:
    """Where the steps' own memory is counted from: memory_allocated on a GPU; on the CPU the RSS now, after
    resetting the kernel's RSS high-water mark to it (/proc/self/clear_refs), so that `rss_peak` is the peak of
    what follows. Also returns the process's peak so far (the reset lowers ru_maxrss too)."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device)), 0
    peak_before = common.peak_memory(device)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # no reset: the steps' peak is the process's (it is the larger, at these sizes)
        pass
    return current_rss(), peak_before


def rss_peak() -> int:
    """The RSS high-water mark (VmHWM; since the reset of `step_memory_start` where the kernel allows it)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return common.peak_memory(torch.device("cpu"))


def child(argv: list[str], args: argparse.Namespace) -> None:
    name, variant, batch = argv[0], argv[1], int(argv[2])
    device = common.device_of(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model, opt = build_model(name, variant, batch, device, args.quick, tmp)
        data = synthetic_batch(opt, batch)
        base = common.peak_memory(device) if device.type == "cpu" else torch.cuda.memory_allocated(device)
        weights = sum(p.numel() * p.element_size() for net in model.networks() for p in net.parameters())

        def step() -> None:
            model.set_input(data)
            model.optimize_parameters()
            model.current_loss_tensors()

        amp, channels_last = "amp" in variant, "channels_last" in variant
        peak = common.ConvPeak(device, backward=True, amp=amp, channels_last=channels_last)
        # the steps' own memory: from here (model, optimizers, data and the conv reference built) to the peak
        before_steps, peak_before = step_memory_start(device)
        step()  # first call: allocations (gradients, Adam's moments), kernel choices
        if device.type == "cuda":
            first_peak = torch.cuda.max_memory_allocated(device)
            torch.cuda.reset_peak_memory_stats(device)
        faults = common.minor_faults()
        times = common.time_interleaved(step, peak, device, args.warmup, args.repeats, args.iters)
        faults = (common.minor_faults() - faults) / max(1, args.warmup + len(times))
        if device.type == "cuda":
            step_peak = max(first_peak, torch.cuda.max_memory_allocated(device))
            process_peak = torch.cuda.max_memory_allocated(device)
        else:
            step_peak = rss_peak()
            process_peak = max(peak_before, common.peak_memory(device))
        # last, after the memory is read: the FLOP counter's dispatch mode holds activations that checkpointing
        # frees (measured: +1.6 GiB on cycle_gan 256 px with --checkpoint_activations), so its step is no real one
        # Above 512 px that extra memory (16x the 256 px figure at 1024 px) would not fit a 24 GiB machine: the FLOPs
        # grow with the pixels, so the sweep scales them from the smaller sizes instead (add_ratios).
        flops = common.count_flops(step) if opt.crop_size <= 512 else float("nan")
        if args.profile:
            print(f"== {name} {variant} batch {batch}: top operators of one iteration ==")
            print(common.profile_top(step, device))
        record = {"config": name, "variant": variant, "batch": batch, "device": args.device,
                  **common.summary(times), "gflop_per_iter": flops / 1e9, "conv_peak_gflops": peak.median(),
                  "peak_mem_gib": process_peak / 2**30, "base_mem_gib": base / 2**30,
                  "step_mem_gib": (step_peak - before_steps) / 2**30,
                  "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"),
                  "weights_gib": weights / 2**30,
                  "crop_size": opt.crop_size, "faults_per_iter": faults,
                  "data_ms_per_img": data_cost(opt, tmp) if device.type == "cpu" else None}
    # what the steps added to the built model, less its gradients and Adam's two moments (3 x the weights): the
    # activations (and the temporaries of the backward pass), the part that grows with the pixels
    record["act_mem_gib"] = record["peak_mem_gib"] - record["base_mem_gib"] - 3 * record["weights_gib"]
    record["act_bytes_per_px"] = record["act_mem_gib"] * 2**30 / (batch * record["crop_size"] ** 2)
    record["img_per_s"] = batch / record["median_s"]
    record["gflops"] = record["gflop_per_iter"] / record["median_s"]
    record["fraction"] = record["gflops"] / record["conv_peak_gflops"]
    ref = REFERENCE.get(name)
    if ref and device.type == "cpu" and not args.quick and batch == config(name)[1]:
        ref_fraction = sum(ref["fraction"]) / 2
        record |= {"ref_s_it": sum(ref["s_it"]) / 2, "ref_fraction": ref_fraction, "target": ref["target"],
                   "vs_ref": record["fraction"] / ref_fraction}  # same FLOPs: speed-up normalized by the conv rate
    print(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.common_arguments(parser)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of: " + ", ".join(CONFIGS))
    parser.add_argument("--batch_sizes", default=None, help="comma-separated batch sizes instead of each config's own")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (default: PyTorch's choice)")
    parser.add_argument("--no_scaling", action="store_true", help="--device cuda: skip the 1-vs-all-GPUs torchrun table")
    parser.add_argument("--sweep", action="store_true", help="cycle_gan batch 1 at --sweep_sizes, with and without "
                        "--checkpoint_activations, stopping before a size over --memory_budget_gb")
    parser.add_argument("--sweep_sizes", default=SWEEP_SIZES, help="--sweep: comma-separated crop sizes")
    parser.add_argument("--live_rss", action="store_true",
                        help="CPU: run the children with MALLOC_MMAP_THRESHOLD_=131072 instead of train.py's allocator "
                        "settings, so that freed tensors leave the RSS (memory figures of the live tensors; slower)")
    parser.add_argument("--memory_budget_gb", type=float, default=None,
                        help="--sweep: skip a size whose predicted peak exceeds this many GiB (default: the RAM, or "
                        "the GPU's memory, less 10%% and at least 2 GiB)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    common.device_of(args.device)  # --device cuda without a GPU: one line, before any child starts
    if args.device == "cpu" and args.live_rss:
        # The drivers' allocator settings (util/cpu_setup.py, as train.py runs) keep freed tensors in glibc's heap,
        # resident, for speed: the RSS then follows the heap's high-water mark, fragmentation included, not the
        # live tensors. A fixed mmap threshold of 128 KiB (any MALLOC_* variable also turns cpu_setup's tuning off)
        # keeps every larger tensor in its own mapping, returned to the system when freed, so the children's RSS
        # follows what PyTorch holds, at the cost of page faults (slower steps).
        os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(MMAP_THRESHOLD))
    unknown = [v for v in (args.variants or "").split(",") if v and v not in VARIANTS]
    if unknown:
        raise SystemExit(f"error: unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    if args.sweep:
        sweep(args)
        return
    gpu = args.device == "cuda"
    if gpu and args.configs == ",".join(CONFIGS):
        args.configs = ",".join(GPU_CONFIGS)
    if gpu and not args.batch_sizes:
        args.batch_sizes = GPU_BATCH_SIZES
    variants = common.prepare_run(args)
    jobs = []
    for name in args.configs.split(","):
        sizes = [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else [config(name)[1]]
        jobs += [[name, variant, str(batch)] for batch in sizes for variant in variants]
    passed = common.child_flags(args)
    records = common.run_all(Path(__file__).resolve(), jobs, passed, lambda r: f"{r['median_s']:.3f} s/it")
    common.report(f"training speed on {args.device}", records, [
        ("config", "config", "s"), ("variant", "variant", "s"), ("batch", "batch", "d"),
        ("s/it", "median_s", ".3f"), ("q1", "q1_s", ".3f"), ("q3", "q3_s", ".3f"), ("img/s", "img_per_s", ".2f"),
        ("GFLOP/it", "gflop_per_iter", ".1f"), ("GFLOP/s", "gflops", ".1f"), ("conv peak", "conv_peak_gflops", ".1f"),
        ("fraction", "fraction", ".2f"), ("peak GiB", "peak_mem_gib", ".2f"), ("step GiB", "step_mem_gib", ".2f"),
        ("act GiB", "act_mem_gib", ".2f"), ("faults/it", "faults_per_iter", ".0f"),
        ("data ms/img", "data_ms_per_img", ".1f"), ("ref s/it", "ref_s_it", ".2f"), ("ref fraction", "ref_fraction",
                                                                                      ".2f"),
        ("vs ref", "vs_ref", ".2f"), ("target", "target", ".2f")],
        args.json or f"benchmarks/results/train_speed{'_gpu' if gpu else ''}.json")
    if gpu and not args.no_scaling:
        scaling_on_gpus(args.quick)


def memory_budget(device: str) -> float:
    """GiB a run may use here: the RAM (or the first GPU's memory) less 10 % and at least 2 GiB."""
    if device == "cuda":
        total = torch.cuda.get_device_properties(0).total_memory
    else:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    total /= 2**30
    return total - max(2.0, 0.1 * total)


def sweep(args: argparse.Namespace) -> None:
    """cycle_gan batch 1 at each --sweep_sizes side, each variant, stopping before a size predicted over budget."""
    args.variants = args.variants or SWEEP_VARIANTS
    variants = common.prepare_run(args)
    budget = args.memory_budget_gb if args.memory_budget_gb is not None else memory_budget(args.device)
    sides = sorted(int(s) for s in args.sweep_sizes.split(","))
    if args.quick:
        sides = [32, 48, 64][:len(sides)]
    print(f"sweep: cycle_gan batch 1 at {', '.join(map(str, sides))} px, {', '.join(variants)}; memory budget "
          f"{budget:.1f} GiB", file=sys.stderr)
    passed = common.child_flags(args)
    records: list[dict] = []
    for variant in variants:
        last = None
        for side in sides:
            if last is not None:
                fixed = last["base_mem_gib"] + 3 * last["weights_gib"]
                predicted = fixed + last["act_mem_gib"] * (side / last["crop_size"]) ** 2
                if predicted > budget:
                    print(f"skipped: cycle_gan_{side} {variant} and larger: predicted peak {predicted:.1f} GiB > "
                          f"budget {budget:.1f} GiB (--memory_budget_gb)", file=sys.stderr)
                    records.append({"config": f"cycle_gan_{side}", "variant": variant, "batch": 1,
                                    "skipped": f"predicted {predicted:.1f} GiB"})
                    break
            found = common.run_all(Path(__file__).resolve(), [[f"cycle_gan_{side}", variant, "1"]], passed,
                                   lambda r: f"{r['median_s']:.3f} s/it, peak {r['peak_mem_gib']:.2f} GiB")
            if not found:  # failed (out of memory despite the prediction, ...): larger sizes would too
                break
            last = found[0]
            records.append(last)
    scale_uncounted_flops(records)
    add_ratios(records)
    common.report(f"activation checkpointing sweep on {args.device}", records, [
        ("config", "config", "s"), ("variant", "variant", "s"), ("s/it", "median_s", ".3f"),
        ("conv peak", "conv_peak_gflops", ".1f"), ("peak GiB", "peak_mem_gib", ".2f"),
        ("model GiB", "base_mem_gib", ".2f"), ("step GiB", "step_mem_gib", ".2f"), ("act GiB", "act_mem_gib", ".2f"),
        ("act B/px", "act_bytes_per_px", ".0f"), ("peak x", "peak_ratio", ".2f"), ("step x", "step_ratio", ".2f"),
        ("time x", "time_ratio", ".2f"), ("time x eq. rate", "time_ratio_equal_rate", ".2f"),
        ("skipped", "skipped", "s")],
        args.json or f"benchmarks/results/train_sweep{'_gpu' if args.device == 'cuda' else ''}.json")


def scale_uncounted_flops(records: list[dict]) -> None:
    """FLOPs the child did not count (sizes over 512 px) scaled by the pixels from the same variant's largest
    counted size, and the rates that follow from them."""
    counted = {}
    for r in records:
        if "skipped" in r:
            continue
        if r["gflop_per_iter"] == r["gflop_per_iter"]:  # not NaN
            counted[r["variant"]] = r
        elif r["variant"] in counted:
            known = counted[r["variant"]]
            r["gflop_per_iter"] = known["gflop_per_iter"] * (r["crop_size"] / known["crop_size"]) ** 2
            r["gflops"] = r["gflop_per_iter"] / r["median_s"]
            r["fraction"] = r["gflops"] / r["conv_peak_gflops"]


def add_ratios(records: list[dict]) -> None:
    """On each `+ckpt` record, its figures over those of the same config without the flag: peak and step memory,
    time per iteration, and the time at equal conv rate (each time times the conv reference's rate measured in its
    own process, so that a change of the machine's load between the two runs cancels)."""
    plain = {(r["config"], r["variant"]): r for r in records if "skipped" not in r}
    for r in records:
        base = plain.get((r["config"], r["variant"].removesuffix("+ckpt")))
        if "skipped" in r or not r["variant"].endswith("+ckpt") or base is None:
            continue
        r["peak_ratio"] = r["peak_mem_gib"] / base["peak_mem_gib"]
        if base["step_mem_gib"] > 0:
            r["step_ratio"] = r["step_mem_gib"] / base["step_mem_gib"]
        r["time_ratio"] = r["median_s"] / base["median_s"]
        r["time_ratio_equal_rate"] = (r["median_s"] * r["conv_peak_gflops"]) / (base["median_s"]
                                                                               * base["conv_peak_gflops"])


def scaling_on_gpus(quick: bool) -> None:
    """train.py under torchrun on 1 GPU and on every GPU of this machine: benchmarks/scaling.py's table."""
    count = torch.cuda.device_count()
    if count < 2:
        print(f"\ntorchrun 1 vs N GPUs: this machine has {count} GPU; the table needs 2 or more.")
        return
    command = [sys.executable, str(Path(__file__).resolve().parent / "scaling.py"), "--device", "cuda",
               "--nproc", f"1,{count}", *(["--crop_size", "64", "--ngf", "8", "--short", "2", "--long", "4"] if quick
                                          else ["--crop_size", "256", "--short", "20", "--long", "100"])]
    print(f"\ntorchrun 1 vs {count} GPUs: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, check=False)


if __name__ == "__main__":
    main()
