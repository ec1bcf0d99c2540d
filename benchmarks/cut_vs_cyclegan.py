"""Per-iteration time and peak memory of CUT, FastCUT and CycleGAN training steps at one image size.

    python benchmarks/cut_vs_cyclegan.py                       # 128 px, ngf/ndf 64, CPU, 2 warm-up + 5 timed steps
    python benchmarks/cut_vs_cyclegan.py --size 256 --repeats 10 --gpu_ids 0

Each model runs in its own Python process (so one model's peak memory does not hide another's), on a
random batch held in memory (no data loading in the timing), with the options users get by default
(`--model cut` is CUT with identity NCE and anti-aliased nets; FastCUT drops the identity pass; CycleGAN
has two generators and two discriminators). Warm-up steps are excluded; the table shows the median and
the spread (min-max) of the timed steps, the peak resident memory of the process (RSS high-water mark,
`VmHWM`) and its growth over the state right after importing torch. On CUDA it also shows the peak
allocated GPU memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "cut": ["--model", "cut", "--CUT_mode", "CUT"],
    "fastcut": ["--model", "cut", "--CUT_mode", "FastCUT"],
    "cycle_gan": ["--model", "cycle_gan"],
}


def rss_kib(field: str) -> int:
    """A memory line of /proc/self/status in KiB (VmRSS: now, VmHWM: peak); 0 where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss if field == "VmHWM" else 0


def worker(args: argparse.Namespace) -> dict:
    """Build one model, run warm-up and timed steps, return the measurements."""
    import torch

    baseline = rss_kib("VmRSS")
    sys.path.insert(0, str(ROOT))
    from models import create_model
    from options.train_options import TrainOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        argv = MODELS[args.worker] + [
            "--dataroot", tmp, "--checkpoints_dir", tmp, "--gpu_ids", args.gpu_ids, "--display_id", "0",
            "--ngf", str(args.ngf), "--ndf", str(args.ndf), "--crop_size", str(args.size),
            "--load_size", str(args.size), "--batch_size", str(args.batch_size), "--seed", "0"]
        opt = TrainOptions().parse(argv)
        model = create_model(opt)
        shape = (args.batch_size, 3, args.size, args.size)
        batch = {"A": torch.rand(shape) * 2 - 1, "B": torch.rand(shape) * 2 - 1,
                 "A_paths": ["a.png"] * args.batch_size, "B_paths": ["b.png"] * args.batch_size}
        model.data_dependent_initialize(batch)
        model.setup(opt)
        cuda = model.device.type == "cuda"
        times = []
        for step in range(args.warmup + args.repeats):
            start = time.perf_counter()
            model.set_input(batch)
            model.optimize_parameters()
            if cuda:
                torch.cuda.synchronize()
            if step >= args.warmup:
                times.append(time.perf_counter() - start)
        params = sum(p.numel() for net in model.networks() for p in net.parameters())
    return {
        "model": args.worker, "times": times, "params_m": params / 1e6, "peak_rss_mib": rss_kib("VmHWM") / 1024,
        "growth_mib": (rss_kib("VmHWM") - baseline) / 1024,
        "gpu_peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
    }


def run_all(args: argparse.Namespace) -> list[dict]:
    results = []
    for name in args.models:
        cmd = [sys.executable, __file__, "--worker", name] + [
            f"--{key}={value}" for key, value in vars(args).items() if key not in ("worker", "models")]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def table(results: list[dict], args: argparse.Namespace) -> str:
    head = (f"{args.size}x{args.size}, batch {args.batch_size}, ngf/ndf {args.ngf}/{args.ndf}, "
            f"{args.warmup} warm-up + {args.repeats} timed steps, {results[0]['threads']} threads, "
            f"torch {results[0]['torch']}, gpu_ids {args.gpu_ids}")
    rows = [head, "", "| model | params (M) | s/iter median | min - max | vs cycle_gan | peak RSS (MiB) | "
                      "RSS growth (MiB) | GPU peak (MiB) |", "|---|---|---|---|---|---|---|---|"]
    reference = {r["model"]: statistics.median(r["times"]) for r in results}.get("cycle_gan")
    for r in results:
        median = statistics.median(r["times"])
        ratio = f"{median / reference:.2f}x" if reference else "-"
        gpu = f"{r['gpu_peak_mib']:.0f}" if r["gpu_peak_mib"] is not None else "-"
        rows.append(f"| {r['model']} | {r['params_m']:.2f} | {median:.3f} | {min(r['times']):.3f} - "
                    f"{max(r['times']):.3f} | {ratio} | {r['peak_rss_mib']:.0f} | {r['growth_mib']:.0f} | {gpu} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128, help="image side (crop size)")
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--gpu_ids", default="-1", help="-1 for the CPU, 0 for the first GPU")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--worker", choices=list(MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        os.environ.setdefault("PYTHONWARNINGS", "ignore")
        print(json.dumps(worker(args)))
        return
    print(table(run_all(args), args))


if __name__ == "__main__":
    main()
