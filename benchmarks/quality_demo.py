"""Shapes kept on the demo data: `python benchmarks/quality.py --demo` (see quality.py).

Each method trains with the demo's own settings (train.py without --dataroot: the demo data and presets) and
translates the demo's test images; the score is the IoU of the foreground masks of input and translation
(data/demo.py: `shape_iou`), both ways where the method translates both ways, 1 = every shape kept.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from data.demo import ShapeKeeping  # noqa: E402

#: method -> (train.py options, test.py options); the demo presets fill in the rest
DEMO_CONFIGS = {
    "cyclegan": (["--model", "cycle_gan", "--preset", "none"], ["--model", "cycle_gan"]),  # the demo's own is the recipe
    "recipe": (["--model", "cycle_gan", "--preset", "recommended"], ["--model", "cycle_gan"]),
    "cut": (["--model", "cut", "--preset", "none"], ["--model", "cut"]),  # the demo's own CUT is the recipe
    "cut_recipe": (["--model", "cut", "--preset", "recommended"], ["--model", "cut"]),
    "fastcut": (["--model", "cut", "--CUT_mode", "FastCUT"], ["--model", "cut", "--CUT_mode", "FastCUT"]),
}


def _run(script: str, args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{script} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def shapes_kept(config: str, seed: int, work: Path, extra: list[str]) -> dict[str, float]:
    """Train and test one method on the demo; returns {"A->B": iou, "B->A": iou, "train_seconds": s}."""
    train_options, test_options = DEMO_CONFIGS[config]
    where = ["--name", config, "--checkpoints_dir", str(work / "checkpoints"), "--gpu_ids", "-1"]
    seconds = _run("train.py", [*train_options, *where, "--seed", str(seed), "--no_html", *extra], work)
    _run("test.py", [*test_options, *where, "--results_dir", str(work / "results")], work)
    keeping = ShapeKeeping("A")
    keeping.add_results(work / "results" / config / "test_latest" / "images")
    ious = {f"{s.split('_')[1]}->{t.split('_')[1]}": float(np.mean(v)) for (s, t), v in keeping.ious.items()}
    return ious | {"train_seconds": seconds}


def main(args) -> None:
    configs = [c for c in args.configs.split(",") if c in DEMO_CONFIGS]
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for config in configs:
            for seed in seeds:
                work = Path(tmp) / f"{config}_{seed}"
                work.mkdir(parents=True)
                # The demo data is drawn into ./datasets/demo of the working folder, the same bytes everywhere.
                scores = shapes_kept(config, seed, work, args.extra)
                for key, value in scores.items():
                    results.setdefault(config, {}).setdefault(key, []).append(value)
                shown = ", ".join(f"{k} {v:.2f}" for k, v in scores.items() if k != "train_seconds")
                print(f"  demo {config} seed {seed}: shape IoU {shown}, train {scores['train_seconds']:.0f} s",
                      flush=True)
    print("\n| method | A->B shape IoU | B->A shape IoU | train s |\n|---|---|---|---|")
    for config, entry in results.items():
        cells = []
        for key in ("A->B", "B->A"):
            values = entry.get(key)
            spread = f" ± {statistics.stdev(values):.2f}" if values and len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.2f}{spread}" if values else "—")
        print(f"| {config} | {cells[0]} | {cells[1]} | {statistics.mean(entry['train_seconds']):.0f} |")
    path = Path(args.json).with_name("quality_demo.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"seeds": seeds, "extra": args.extra, "results": results}, indent=2))
