"""A mutation check: deliberate one-line breaks of core behaviour, each of which the test suite must catch.

    python tests/mutation_check.py                  # every break (about half an hour on 2 cores)
    python tests/mutation_check.py --only pool,lr   # some of them
    python tests/mutation_check.py --list

Each break replaces one line of one file in a fresh copy of the working tree (under a temporary folder, with
`../shared` linked beside it so the reference-fixture tests run), runs the test files that should notice, slow
tests included, and reports which tests failed. A break that no test catches is a hole in the suite: the
script exits 1. The working tree itself is never modified. (Not collected by pytest: no `test_` prefix.)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Break:
    name: str
    what: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments: files, or file::test ids


BREAKS = (
    Break("cycle_weight", "the A cycle loss loses its weight lambda_A", "models/cycle_gan_model.py",
          "self.loss_cycle_A = self.criterionCycle(self.rec_A, self.real_A) * opt.lambda_A",
          "self.loss_cycle_A = self.criterionCycle(self.rec_A, self.real_A)",
          ("tests/test_models.py", "tests/test_losses.py")),
    Break("pool", "the image pool never returns an image from its history", "models/image_pool.py",
          "elif torch.rand(()).item() < 0.5:", "elif False:", ("tests/test_image_pool.py",)),
    Break("lr", "linear decay reaches 0 at the last epoch (the reference's defect)", "models/schedulers.py",
          "return 1.0 - max(0, epoch - self.n_epochs) / (self.n_epochs_decay + 1)",
          "return 1.0 - max(0, epoch - self.n_epochs) / max(1, self.n_epochs_decay)",
          ("tests/test_schedulers.py",)),
    Break("resume", "a mid-epoch resume does not skip the samples already trained", "engine/training_state.py",
          "self.dataset.skip(shard_samples(self.epoch_iter, self.world_size))", "pass",
          ("tests/test_resume.py",)),
    Break("page_size", "test.py puts 101 inputs on a results page", "test.py",
          "RESULTS_PER_PAGE = 100", "RESULTS_PER_PAGE = 101", ("tests/test_inference.py", "tests/test_html.py")),
    Break("visdom_history", "a new Visdom connection gets only the newest loss point",
          "engine/visdom_display.py", "start = 0 if fresh else sent",
          'start = len(plot_data["X"]) - 1 if fresh else sent', ("tests/test_feedback_visdom.py",)),
    Break("tile_stats", "tiles keep their own normalisation statistics", "inference/tiling.py",
          "norm.mean, norm.var = mean, var", "norm.mean, norm.var = None, None", ("tests/test_inference.py",)),
    Break("export_padding", "the exported wrapper pads with zeros instead of edge pixels", "inference/sizing.py",
          'x = F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")\n        return self.net(x)',
          'x = F.pad(x, [0, pad_w, 0, pad_h], mode="constant")\n        return self.net(x)',
          ("tests/test_export.py",)),
    Break("lpips_backbone", "the LPIPS backbone is loaded loosely into the wrong module (nothing loads)",
          "metrics/lpips.py", "net.net.load_state_dict(backbone_state(load_state_dict(path)), strict=True)",
          "net.load_state_dict(backbone_state(load_state_dict(path)), strict=False)", ("tests/test_metrics.py",)),
    Break("best_metric", "best_metric.json written straight into the file", "engine/evaluator.py",
          'atomic_write(self.best_file, lambda f: f.write(json.dumps(self.best, indent=2) + "\\n"), mode="w")',
          'self.best_file.write_text(json.dumps(self.best, indent=2) + "\\n")', ("tests/test_training_eval.py",)),
)


def copy_tree(target: Path) -> Path:
    """The working tree's files (tracked and untracked, not ignored) under target/repo, ../shared linked."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    repo = target / "repo"
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (target / "shared").symlink_to(shared, target_is_directory=True)
    return repo


def run_break(item: Break, workdir: Path) -> tuple[list[str], str, float]:
    """(the failed tests, pytest's summary line, seconds) with `item` applied to a fresh copy."""
    repo = copy_tree(workdir)
    path = repo / item.file
    text = path.read_text()
    if text.count(item.old) != 1:
        raise SystemExit(f"{item.name}: the line to break occurs {text.count(item.old)} times in {item.file}")
    path.write_text(text.replace(item.old, item.new))
    start = time.monotonic()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "slow or not slow",
                             "-rf", *item.tests], cwd=repo, capture_output=True, text=True, env=env)
    failed = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, flags=re.M)))
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return failed, (lines[-1] if lines else result.stderr[-300:]), time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated break names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the breaks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for item in BREAKS:
            print(f"{item.name:15} {item.file:28} {item.what}")
        return 0
    chosen = [b for b in BREAKS if not args.only or b.name in args.only.split(",")]
    holes = []
    for item in chosen:
        with tempfile.TemporaryDirectory(prefix=f"i2i-mutant-{item.name}-") as tmp:
            failed, summary, seconds = run_break(item, Path(tmp))
        print(f"\n## {item.name}: {item.what} ({item.file}; {seconds:.0f} s)\n   pytest: {summary}")
        for test in failed:
            print(f"   caught by {test}")
        if not failed:
            print("   NOT CAUGHT")
            holes.append(item.name)
        sys.stdout.flush()
    print(f"\n{len(chosen) - len(holes)} of {len(chosen)} breaks caught" + (f"; not caught: {', '.join(holes)}"
                                                                          if holes else ""))
    return 1 if holes else 0


if __name__ == "__main__":
    sys.exit(main())
