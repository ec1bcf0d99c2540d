"""Translation quality with ground truth: each method trained under one budget, scored against the truth.

    python benchmarks/quality.py                       # every task and method, 2 seeds (28 min here with --jobs 1)
    python benchmarks/quality.py --tasks tone --configs cyclegan,recipe --seeds 0
    python benchmarks/quality.py --quick               # a smoke run: tiny budget, one task, one seed
    python benchmarks/quality.py --demo                # shapes kept on the demo data (IoU of foreground masks)

Tasks (benchmarks/quality_tasks.py): real photographs, domain B a known transform of domain A (a global colour
grade, a local stylisation, a recolouring that keeps geometry), unpaired training sets, paired test ground truth.
Every method trains through train.py for the same number of iterations and translates the test crops through
test.py; PSNR and SSIM (scikit-image's) of the translations against the truth are compared with doing nothing
(the identity: the input itself). A table goes to stdout, JSON to benchmarks/results/quality.json, and a picture
(input, truth, CycleGAN, the recipe, CUT, pix2pix with the affine output) to docs/images/quality.png
(`--picture PATH`: elsewhere).
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
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality_tasks  # noqa: E402

#: method -> (train.py options, dataroot below the task folder); the networks are the same size for every method
CONFIGS = {
    "cyclegan": (["--model", "cycle_gan"], ""),
    "recipe": (["--model", "cycle_gan", "--preset", "recommended"], ""),
    "cut": (["--model", "cut"], ""),
    "fastcut": (["--model", "cut", "--CUT_mode", "FastCUT"], ""),
    "pix2pix": (["--model", "pix2pix", "--netG", "resnet_9blocks", "--norm", "instance"], "aligned"),
    # pix2pix with the recipe's colour output (not a pix2pix preset: it loses on label maps; docs/quality.md)
    "pix2pix_affine": (["--model", "pix2pix", "--netG", "resnet_9blocks", "--norm", "instance", "--affine_output",
                        "--affine_smooth", "5", "--affine_edge_sigma", "0.1"], "aligned"),
}
#: the methods drawn in the picture, after the input and the truth
PICTURED = ("cyclegan", "recipe", "cut", "pix2pix_affine")
#: test.py options per method (test.py reads the generator's architecture from the run's train_opt.json, so
#: architecture options given after `--` reach the tests too)
TEST_MODEL = {"pix2pix": ["--model", "pix2pix"], "pix2pix_affine": ["--model", "pix2pix"], "cut": ["--model", "cut"],
              "fastcut": ["--model", "cut", "--CUT_mode", "FastCUT"]}


def run(script: str, args: list[str], cwd: Path, threads: int | None = None) -> float:
    """Run one of i2i's scripts in `cwd` (with `threads` intra-op threads where given); returns its seconds."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads)) if threads else None
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True,
                            env=env)
    if result.returncode != 0:
        raise SystemExit(f"{script} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def train_and_translate(config: str, task_root: Path, work: Path, args: argparse.Namespace, seed: int) -> dict:
    """Train `config` on the task for `args.iters` iterations, translate testA; returns timings and the folder."""
    options, sub = CONFIGS[config]
    dataroot = task_root / sub if sub else task_root
    n_epochs = max(1, args.iters // args.n_train)
    common = ["--dataroot", str(dataroot), "--checkpoints_dir", str(work / "checkpoints"), "--name", config,
              "--gpu_ids", "-1", "--ngf", str(args.ngf), "--ndf", str(args.ndf), "--load_size", str(args.size),
              "--crop_size", str(args.size), "--num_threads", "0"]
    train = [*common, *options, "--seed", str(seed), "--n_epochs", str((n_epochs + 1) // 2), "--n_epochs_decay",
             str(n_epochs // 2), "--display_id", "0", "--no_html", "--print_freq", "100000",
             "--save_latest_freq", "10000000", "--save_epoch_freq", "100000", *args.extra]
    seconds = run("train.py", train, work, args.threads)
    test_model = TEST_MODEL.get(config, ["--model", "cycle_gan"])
    test = [*common, *test_model, "--results_dir", str(work / "results"), "--num_test", "100000", "--phase", "test",
            "--preprocess", "none"]
    if sub:
        test += ["--dataset_mode", "aligned"]
    run("test.py", test, work, args.threads)
    made = {"train_seconds": seconds, "images": work / "results" / config / "test_latest" / "images" / "fake_B"}
    if args.seen:  # the training A crops too: did the method learn the truth's map on the crops it saw?
        run("test.py", [*test, "--phase", "train"], work, args.threads)
        made["seen_images"] = work / "results" / config / "train_latest" / "images" / "fake_B"
    return made


def scores(translated: list[np.ndarray], truth: list[np.ndarray]) -> dict[str, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    psnr = [peak_signal_noise_ratio(t, x, data_range=255) for x, t in zip(translated, truth)]
    ssim = [structural_similarity(t, x, channel_axis=-1, data_range=255) for x, t in zip(translated, truth)]
    return {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim))}


def load(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))]


def evaluate_task(task: str, args: argparse.Namespace, out: Path) -> dict:
    """Every config and seed on one task -> {config: {"psnr": [...], "ssim": [...], "train_seconds": [...]}}, the
    runs `args.jobs` at a time."""
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        task_root = quality_tasks.make_task(Path(tmp) / task, task, args.size, args.n_train)
        inputs, truth = load(task_root / "testA"), load(task_root / "testB")
        identity = scores(inputs, truth)
        results["identity"] = {k: [v] for k, v in identity.items()} | {"train_seconds": [0.0]}
        if args.seen:
            seen_inputs = load(task_root / "trainA")
            seen_truth = [np.asarray(quality_tasks.TRANSFORMS[task](Image.fromarray(x))) for x in seen_inputs]
            results["identity"]["seen_psnr"] = [scores(seen_inputs, seen_truth)["psnr"]]

        def one(config: str, seed: int) -> tuple[dict, list[np.ndarray]]:
            made = train_and_translate(config, task_root, Path(tmp) / f"{config}_{seed}", args, seed)
            translated = load(made["images"])
            score = scores(translated, truth)
            if args.seen:
                score["seen_psnr"] = scores(load(made["seen_images"]), seen_truth)["psnr"]
            print(f"  {task} {config} seed {seed}: PSNR {score['psnr']:.2f} dB, SSIM {score['ssim']:.3f}, "
                  f"train {made['train_seconds']:.0f} s", flush=True)
            return score | {"train_seconds": made["train_seconds"]}, translated

        runs = [(config, seed) for config in args.configs for seed in args.seeds]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            done = list(pool.map(lambda run: one(*run), runs))
        for (config, seed), (score, translated) in zip(runs, done):
            entry = results.setdefault(config, {key: [] for key in score})
            for key, value in score.items():
                entry[key].append(value)
            if seed == args.seeds[0]:
                keep = out / "samples" / task / config
                keep.mkdir(parents=True, exist_ok=True)
                for i, image in enumerate(translated[: args.samples]):
                    Image.fromarray(image).save(keep / f"{i:02d}.png")
        for name, images in (("input", inputs), ("truth", truth)):
            keep = out / "samples" / task / name
            keep.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(images[: args.samples]):
                Image.fromarray(image).save(keep / f"{i:02d}.png")
    return results


def table(all_results: dict[str, dict]) -> str:
    seen = any("seen_psnr" in entry for results in all_results.values() for entry in results.values())
    lines = ["| task | method | PSNR (dB) | vs identity | SSIM | train s |", "|---|---|---|---|---|---|"]
    if seen:
        lines = [lines[0] + " PSNR on training crops |", lines[1] + "---|"]
    for task, results in all_results.items():
        base = statistics.mean(results["identity"]["psnr"])
        for config, entry in results.items():
            psnr, ssim = entry["psnr"], entry["ssim"]
            spread = f" ± {statistics.stdev(psnr):.2f}" if len(psnr) > 1 else ""
            lines.append(f"| {task} | {config} | {statistics.mean(psnr):.2f}{spread} | "
                         f"{statistics.mean(psnr) - base:+.2f} | {statistics.mean(ssim):.3f} | "
                         f"{statistics.mean(entry['train_seconds']):.0f} |"
                         + (f" {statistics.mean(entry['seen_psnr']):.2f} |" if seen else ""))
    return "\n".join(lines)


def picture(out: Path, tasks: list[str], columns: list[str], path: Path, rows_per_task: int = 2) -> None:
    """A grid: for each task a few test crops, as input, truth and each method's translation."""
    tiles = []
    for task in tasks:
        for i in range(rows_per_task):
            row = [out / "samples" / task / c / f"{i:02d}.png" for c in columns]
            if all(p.is_file() for p in row):
                tiles.append([Image.open(p).convert("RGB") for p in row])
    if not tiles:
        return
    size = tiles[0][0].width
    grid = Image.new("RGB", (size * len(columns), size * len(tiles)), "white")
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            grid.paste(tile, (c * size, r * size))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.resize((grid.width * 2, grid.height * 2), Image.Resampling.NEAREST).save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(quality_tasks.DEFAULT_TASKS),
                        help=f"of {','.join(quality_tasks.TRANSFORMS)}")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--iters", type=int, default=400, help="training iterations (batch 1) of every method")
    parser.add_argument("--n_train", type=int, default=100, help="training crops per domain")
    parser.add_argument("--size", type=int, default=64, help="crop size")
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--ndf", type=int, default=16)
    parser.add_argument("--samples", type=int, default=4, help="test crops kept per method for the picture")
    parser.add_argument("--jobs", type=int, default=2, help="runs side by side, the cores shared out between them "
                        "(2 here: the two seeds of a method together, one thread each; 1 for uncontended timings)")
    parser.add_argument("--seen", action="store_true", help="also translate the training A crops and score them "
                        "against their transform (a low score there: the method learned another map than the truth's, "
                        "not one that fails on new photographs)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tone only, 2 configs, 1 seed, 40 iterations")
    parser.add_argument("--demo", action="store_true", help="measure shape preservation on the demo data instead")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quality"))
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "quality.json"))
    parser.add_argument("--picture", help="where the picture goes (default: docs/images/quality.png, none with "
                        "--quick)")
    parser.add_argument("extra", nargs="*", help="more train.py options for every method (after --)")
    args = parser.parse_args(argv)
    if args.demo:
        from quality_demo import main as demo_main

        return demo_main(args)
    if args.quick:
        args.tasks, args.configs, args.seeds, args.iters, args.n_train = "tone", "cyclegan,recipe", "0", 40, 20
    args.jobs = max(1, args.jobs)
    args.threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None
    args.tasks, args.configs = args.tasks.split(","), args.configs.split(",")
    quality_tasks.reject_unknown(parser, "--tasks", args.tasks, quality_tasks.TRANSFORMS)
    quality_tasks.reject_unknown(parser, "--configs", args.configs, CONFIGS)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    start = time.perf_counter()
    all_results = {}
    for task in args.tasks:
        print(f"task {task}", flush=True)
        all_results[task] = evaluate_task(task, args, out)
    print(f"\n{args.iters} iterations, {args.size} px, ngf/ndf {args.ngf}/{args.ndf}, seeds {args.seeds}, "
          f"{args.jobs} run(s) at a time, {time.perf_counter() - start:.0f} s in all\n")
    print(table(all_results))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    # The same seeds train to other figures on another torch build (sums in another order): say which one.
    settings = vars(args) | {"torch": metadata.version("torch")}
    Path(args.json).write_text(json.dumps({"settings": settings, "results": all_results}, indent=2, default=str))
    if args.picture or not args.quick:
        picture(out, args.tasks, ["input", "truth", *[c for c in PICTURED if c in args.configs]],
                Path(args.picture or ROOT / "docs" / "images" / "quality.png"))


if __name__ == "__main__":
    main()
