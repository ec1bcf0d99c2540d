"""Shared parts of the speed benchmarks: the machine's convolution peak, timing, memory, FLOPs, reporting.

Absolute times drift on shared machines (10-15 % between runs here), so every figure is also given as a
fraction of the machine's convolution rate *measured in the same process, interleaved with the work being
timed*: a large 3x3 convolution (256 -> 256 channels, 64 x 64, batch 1), forward (+ backward for training),
with the same threads, dtype and memory layout. That fraction is what compares across runs and machines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if os.environ.get("I2I_BENCH_PLAIN_RUNTIME") != "1":  # set by reference_speed.py for the reference's side
    import util.cpu_setup  # noqa: E402,F401  (before torch, as in the drivers: glibc's allocator settings)
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

CONV_CHANNELS, CONV_SIZE = 256, 64
VARIANTS = {"fp32": [], "amp": ["--amp"], "channels_last": ["--channels_last"],
            "amp+channels_last": ["--amp", "--channels_last"]}


def device_of(name: str) -> torch.device:
    """The benchmark's device; `--device cuda` without a usable GPU ends here with one line."""
    if name == "cuda" and not torch.cuda.is_available():
        build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise SystemExit(f"error: --device cuda: no CUDA GPU is usable here (torch {torch.__version__}, {build}); "
                         "run without --device cuda for the CPU figures.")
    return torch.device(name)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def amp_dtype_for(device: torch.device) -> torch.dtype:
    """The dtype `--amp` picks on `device` (bf16 where the hardware has it, else fp16): i2i's own choice."""
    from util.precision import amp_dtype

    return amp_dtype(True, "auto", device)


class ConvPeak:
    """The reference convolution, timed on demand (call `measure()` between pieces of the real work)."""

    def __init__(self, device: torch.device, backward: bool, amp: bool, channels_last: bool) -> None:
        self.device, self.backward = device, backward
        layout = torch.channels_last if channels_last else torch.contiguous_format
        self.conv = torch.nn.Conv2d(CONV_CHANNELS, CONV_CHANNELS, 3, padding=1).to(device, memory_format=layout)
        self.x = torch.randn(1, CONV_CHANNELS, CONV_SIZE, CONV_SIZE, device=device).to(memory_format=layout)
        self.x.requires_grad_(backward)
        self.autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype_for(device))) if amp else \
            contextlib.nullcontext
        # forward: 2 * C_in * C_out * 9 * H * W; backward: as much again for the input and for the weights
        self.flops = 2 * CONV_CHANNELS * CONV_CHANNELS * 9 * CONV_SIZE * CONV_SIZE * (3 if backward else 1)
        self.rates: list[float] = []
        for _ in range(2):
            self._run()  # warm-up: kernel selection, first-touch of the buffers

    def _run(self) -> None:
        with self.autocast():
            y = self.conv(self.x)
        if self.backward:
            y.float().sum().backward()

    def measure(self, times: int = 3) -> float:
        """GFLOP/s of the best of `times` runs now (best: the machine's capability, not its noise)."""
        best = float("inf")
        for _ in range(times):
            sync(self.device)
            start = time.perf_counter()
            with torch.inference_mode() if not self.backward else contextlib.nullcontext():
                self._run()
            sync(self.device)
            best = min(best, time.perf_counter() - start)
        rate = self.flops / best / 1e9
        self.rates.append(rate)
        return rate

    def median(self) -> float:
        return statistics.median(self.rates)


def time_interleaved(step: Callable[[], None], peak: ConvPeak, device: torch.device, warmup: int, repeats: int,
                     iters: int) -> list[float]:
    """Seconds per call of `step`: `warmup` calls untimed, then `repeats` x `iters` timed calls, the conv
    peak measured before each repeat and once after the last."""
    for _ in range(warmup):
        step()
    sync(device)
    times = []
    for _ in range(repeats):
        peak.measure()
        for _ in range(iters):
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            times.append(time.perf_counter() - start)
    peak.measure()
    return times


def count_flops(step: Callable[[], None]) -> int:
    """FLOPs of one call of `step` (torch.utils.flop_counter: convolutions and matmuls, forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def peak_memory(device: torch.device) -> int:
    """Peak bytes: the process's maximum RSS on the CPU, max_memory_allocated on a GPU."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def summary(times: Sequence[float]) -> dict[str, float]:
    ordered = sorted(times)
    q1, q3 = ordered[len(ordered) // 4], ordered[(3 * len(ordered)) // 4]
    return {"median_s": statistics.median(ordered), "min_s": ordered[0], "max_s": ordered[-1], "q1_s": q1, "q3_s": q3}


def profile_top(step: Callable[[], None], device: torch.device, rows: int = 15) -> str:
    """torch.profiler's table of the top operators (self time) over one call of `step`."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


# -- driving one subprocess per measurement (clean peak memory and allocator state) ------------------------


def run_children(script: Path, jobs: Sequence[list[str]], common: list[str]) -> Iterator[dict[str, Any]]:
    """Run `script COMMON --child JOB` for each job, one process each (so peak memory is the job's own);
    yield the JSON record each prints on its last line."""
    for job in jobs:
        command = [sys.executable, str(script), *common, "--child", *job]
        result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if result.returncode != 0:
            print(f"failed: {' '.join(job)}\n{result.stderr[-2000:]}", file=sys.stderr)
            continue
        if result.stdout.count("\n") > 1:
            print(result.stdout.rsplit("\n", 2)[0], file=sys.stderr)  # a profile table, if asked for
        yield json.loads(result.stdout.strip().splitlines()[-1])


def run_all(script: Path, jobs: Sequence[list[str]], common: list[str],
            speed: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """`run_children`'s records, with a `done: CONFIG VARIANT batch B: <speed>` line on stderr as each ends."""
    records = []
    for record in run_children(script, jobs, common):
        records.append(record)
        print(f"done: {record['config']} {record['variant']} batch {record['batch']}: {speed(record)}",
              file=sys.stderr)
    return records


def print_table(records: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]]) -> None:
    """columns: (header, key, format)."""
    cells = [[h for h, _, _ in columns]]
    for r in records:
        cells.append([format(r[k], f) if r.get(k) is not None else "-" for _, k, f in columns])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def report(title: str, records: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]],
           json_path: str) -> None:
    """How every benchmark ends: a line naming the machine, the table on stdout, the records as JSON."""
    info = machine()
    print(f"\n{title} ({info.get('gpu') or info.get('cpu')}, {info['threads']} threads, load average "
          f"{info['load_average'][0]:.1f})")
    print_table(records, columns)
    write_json(json_path, records, info)


def write_json(path: str | None, records: Sequence[dict[str, Any]], meta: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps({"meta": meta, "results": list(records)}, indent=2) + "\n")
        print(f"wrote {path}")


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                            "cpus": os.cpu_count(), "load_average": os.getloadavg()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    return info


def common_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--device", default="cpu", choices=["cpu", "cuda"])
    add("--variants", default=None, help=f"comma-separated subset of {', '.join(VARIANTS)} (default: all the "
        "device supports)")
    add("--warmup", type=int, default=None, help="untimed calls first (default 1 on the CPU, 5 on GPUs)")
    add("--repeats", type=int, default=3, help="timed repeats (the conv peak is measured between them)")
    add("--iters", type=int, default=None, help="timed calls per repeat (default 2 on the CPU, 20 on GPUs)")
    add("--json", default=None, help="write the results here as JSON")
    add("--quick", action="store_true", help="a smoke run: tiny widths and sizes, one repeat")
    add("--profile", action="store_true", help="print torch.profiler's top operators for one call of each config")
    add("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def prepare_run(args: argparse.Namespace) -> list[str]:
    """Apply the device's defaults and --quick, and return the variants to run (all unless --variants names some).
    GPUs: more calls per repeat (a step takes milliseconds) and a longer warm-up (cuDNN's kernel search)."""
    gpu = args.device == "cuda"
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    args.iters = args.iters if args.iters is not None else (20 if gpu else 2)
    if args.quick:
        args.repeats, args.iters, args.warmup = 1, 1, 0
    return args.variants.split(",") if args.variants else list(VARIANTS)


def child_flags(args: argparse.Namespace, *extra: str) -> list[str]:
    """The options every child process of a benchmark receives (plus a script's own `extra`)."""
    flags = [f"--device={args.device}", f"--warmup={args.warmup}", f"--repeats={args.repeats}",
             f"--iters={args.iters}", f"--threads={args.threads}", *extra]
    return flags + (["--quick"] if args.quick else []) + (["--profile"] if args.profile else [])
