"""Throughput of train.py with 1 and N processes (torchrun, gloo on the CPU / NCCL on GPUs), start-up excluded.

    python benchmarks/scaling.py                          # cycle_gan, 64 px, full widths: 1 process vs 2
    python benchmarks/scaling.py --nproc 1,2,4 --device cuda --crop_size 256 --short 20 --long 100
    python benchmarks/train_speed.py --device cuda        # runs this for 1 and all GPUs after its own table

Each setting runs train.py twice, for --short and --long samples per process; the difference of the two wall
times over the difference of samples gives the seconds per sample with start-up, data set-up and the final
checkpoint cancelled out. Also printed: the bytes each optimizer step all-reduces (the models' parameters in
float32) and the share of time that communication and waiting take, from the 1-process figure.
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

ROOT = Path(__file__).resolve().parents[1]


def run(nproc: int, batch: int, samples: int, args: argparse.Namespace, tmp: Path) -> float:
    """Wall seconds of one train.py run over `samples` images per process."""
    options = ["--model", args.model, "--dataroot", str(args.dataroot), "--name", f"scale{nproc}_{samples}",
               "--checkpoints_dir", str(tmp), "--display_id", "0", "--no_html", "--n_epochs", "1",
               "--n_epochs_decay", "0", "--batch_size", str(batch), "--max_dataset_size", str(samples * nproc),
               "--load_size", str(args.crop_size), "--crop_size", str(args.crop_size), "--ngf", str(args.ngf),
               "--ndf", str(args.ngf), "--num_threads", "0" if args.device == "cpu" else "4",
               "--print_freq", "1000000", "--seed", "0",
               "--gpu_ids", "-1" if args.device == "cpu" else "0"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if nproc == 1:
        command = [sys.executable, str(ROOT / "train.py"), *options]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                   "--rdzv_backend", "c10d", "--rdzv_endpoint", "localhost:0", str(ROOT / "train.py"), *options]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"train.py failed ({nproc} processes):\n{result.stderr[-3000:]}")
    return seconds


def gradient_bytes(model: str, ngf: int) -> int:
    sys.path.insert(0, str(ROOT))
    from networks import build_discriminator, build_generator

    def count(net) -> int:
        return sum(p.numel() for p in net.parameters())

    if model == "cycle_gan":
        g = build_generator("resnet_9blocks", 3, 3, ngf, norm="instance", use_dropout=False)
        d = build_discriminator("basic", 3, ngf, n_layers_D=3, norm="instance")
        return 4 * (2 * count(g) + 2 * count(d))
    g = build_generator("unet_256", 3, 3, ngf, norm="batch", use_dropout=True)
    d = build_discriminator("basic", 6, ngf, n_layers_D=3, norm="batch")
    return 4 * (count(g) + count(d))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cycle_gan", choices=["cycle_gan"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--nproc", default="1,2", help="comma-separated process counts")
    parser.add_argument("--crop_size", type=int, default=64)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--short", type=int, default=4, help="samples per process in the short run")
    parser.add_argument("--long", type=int, default=12, help="samples per process in the long run")
    parser.add_argument("--batch_size", type=int, default=1, help="--batch_size of each process")
    parser.add_argument("--json", default=None, help="default: benchmarks/results/scaling.json (scaling_gpu.json "
                        "with --device cuda)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.device == "cuda":
        import common  # noqa: F401  (benchmarks/common.py)

        common.device_of("cuda")  # no GPU: one line
    args.json = args.json or f"benchmarks/results/scaling{'_gpu' if args.device == 'cuda' else ''}.json"
    from data.demo import N_TRAIN, make_unaligned_demo

    counts = [int(n) for n in args.nproc.split(",")]
    needed = args.long * max(counts)  # images of one epoch of the longest run: none may be short of data
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        args.dataroot = Path(make_unaligned_demo() if needed <= N_TRAIN else
                             make_unaligned_demo(Path(tmp) / "data", n_train=needed, n_test=1)).resolve()
        for nproc in counts:
            short = run(nproc, args.batch_size, args.short, args, Path(tmp))
            long = run(nproc, args.batch_size, args.long, args, Path(tmp))
            per_step = (long - short) / (args.long - args.short) * args.batch_size
            images = nproc * args.batch_size / per_step
            records.append({"processes": nproc, "batch_per_process": args.batch_size, "s_per_step": per_step,
                            "img_per_s": images, "load_average": os.getloadavg()[0]})
            print(f"{nproc} process(es): {per_step:.3f} s/step, {images:.2f} img/s", file=sys.stderr)
    base = records[0]["img_per_s"]
    for r in records:
        r["speedup"] = r["img_per_s"] / base
    volume = gradient_bytes(args.model, args.ngf)
    print(f"\n{args.model} at {args.crop_size} px, ngf {args.ngf}, {args.device}; all-reduced per step: "
          f"{volume / 2**20:.1f} MiB (float32)")
    print(f"batch {args.batch_size} per process\nprocesses  s/step  img/s  speed-up  load")
    for r in records:
        print(f"{r['processes']:>9}  {r['s_per_step']:6.3f}  {r['img_per_s']:5.2f}  {r['speedup']:8.2f}  "
              f"{r['load_average']:4.1f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"gradient_bytes": volume, "results": records}, indent=2) + "\n")


if __name__ == "__main__":
    main()
