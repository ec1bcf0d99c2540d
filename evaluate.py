"""Score translated images: FID/KID between distributions, PSNR/SSIM/LPIPS between pairs.

    python evaluate.py results/maps_cyclegan/test_latest                 # a test.py results folder
    python evaluate.py results/facades_pix2pix/test_latest --paired      # pix2pix: fake_B vs real_B as pairs
    python evaluate.py results/h2z/test_latest --real datasets/h2z/testB # translations vs a target folder
    python evaluate.py --fake DIR --real DIR [--paired]                  # any two folders

A results folder is compared visual by visual: fake_X with real_X as distributions (and, with --paired, image
by image), rec_X with real_X image by image. The table is printed and written as JSON (RESULTS/metrics.json, or
--json FILE). Metrics whose weights are missing are skipped with the download instructions, unless --metrics
asks for them.
"""

from __future__ import annotations

import util.cpu_setup  # noqa: F401, I001  (first, before torch: glibc reads its allocator settings once)

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path

from metrics import METRICS, MetricSuite
from metrics.folders import list_images, result_visuals
from metrics.weights import ALEXNET, INCEPTION_FID, resolve_weights
from options.base_options import OptionParser, parse_gpu_ids
from util.cli import run_main
from util.errors import I2IError
from util.option_types import number

DEFAULT_METRICS = ("fid", "kid", "psnr", "ssim", "lpips")


def make_parser() -> argparse.ArgumentParser:
    parser = OptionParser(prog="evaluate.py", description=__doc__.split("\n\n")[0],
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("results", nargs="?", help="a test.py results folder (holding images/)")
    add("--fake", help="folder of translated images (instead of a results folder)")
    add("--real", help="folder of real target-domain images")
    add("--paired", action="store_true", help="also compare translations with their targets image by image "
        "(same file names; pix2pix test sets)")
    add("--metrics", default=None, help=f"comma-separated, from {', '.join(METRICS)} (default: all that can run)")
    add("--inception_weights", default=None, help="FID Inception weights file (pt_inception-2015-12-05-6726825d.pth)")
    add("--lpips_weights", default=None, help="LPIPS AlexNet backbone file (alexnet-owt-7be5be79.pth)")
    add("--download", action="store_true", help="download missing weights into the cache ($I2I_CACHE or ~/.cache/i2i)")
    add("--batch_size", type=number(int, at_least=1), default=50, help="images per batch")
    add("--gpu_ids", default="-1", help="GPU id to run the networks on; -1 for the CPU")
    add("--json", default=None, help="where to write the scores (default: RESULTS/metrics.json or ./metrics.json)")
    return parser


def build_suite(args: argparse.Namespace, device: str) -> tuple[MetricSuite, dict[str, str]]:
    """The suite of requested metrics; with no --metrics, those that cannot run here are left out, with why."""
    explicit = args.metrics is not None
    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if explicit else list(DEFAULT_METRICS)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise I2IError(f"--metrics: unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}.")
    skipped: dict[str, str] = {}
    for need, problem in unavailable(args).items():
        wanted = [n for n in names if METRICS[n].needs == need]
        if wanted and explicit:
            raise I2IError(problem)
        skipped |= {n: problem for n in wanted}
    names = [n for n in names if n not in skipped]
    suite = MetricSuite(names, inception_weights=args.inception_weights, lpips_weights=args.lpips_weights,
                        download=args.download, device=device, batch_size=args.batch_size)
    return suite, skipped


def unavailable(args: argparse.Namespace) -> dict[str, str]:
    """{need: why it cannot run} for the weights/packages that are missing here."""
    problems = {}
    checks = (("inception", INCEPTION_FID, args.inception_weights, "--inception_weights"),
              ("lpips", ALEXNET, args.lpips_weights, "--lpips_weights"))
    for need, spec, path, option in checks:
        try:
            resolve_weights(spec, path, option=option, download=args.download)
        except I2IError as exc:
            problems[need] = str(exc)
    if "inception" not in problems and not all(importlib.util.find_spec(m) for m in ("torchmetrics", "torch_fidelity")):
        problems["inception"] = "FID and KID need the `torchmetrics` and `torch-fidelity` packages: " \
                                "pip install torchmetrics torch-fidelity"
    if "lpips" not in problems and importlib.util.find_spec("lpips") is None:
        problems["lpips"] = "the LPIPS metric needs the `lpips` package: pip install lpips"
    return problems


def comparisons(args: argparse.Namespace) -> list[tuple[str, list[Path], list[Path], bool, bool]]:
    """(label, files A, files B, paired, distributions) for every comparison the arguments ask for."""
    if args.results is None:
        if not (args.fake and args.real):
            raise I2IError("give a results folder, or both --fake DIR and --real DIR.")
        return [_folders(Path(args.fake), Path(args.real), args.paired)]
    visuals = result_visuals(args.results)
    rows = []
    fakes = sorted(v for v in visuals if v.startswith("fake"))
    if args.real:
        if not fakes:
            raise I2IError(f"{args.results} holds no fake* images to compare with --real {args.real}.")
        for fake in fakes:
            rows.append((f"{fake} vs {args.real}", sorted(visuals[fake].values()), list_images(Path(args.real)),
                         False, True))
        return rows
    for name in sorted(visuals):
        kind, _, domain = name.partition("_")
        target = visuals.get(f"real_{domain}") if domain else None
        if target is None:
            continue
        if kind == "fake":
            rows.append(_pairs_or_sets(name, visuals[name], f"real_{domain}", target, args.paired))
        elif kind == "rec":
            rows.append(_pairs_or_sets(name, visuals[name], f"real_{domain}", target, True, distributions=False))
    if not rows:
        raise I2IError(f"{args.results}: found visuals {', '.join(sorted(visuals))} but no fake_X/real_X or "
                       "rec_X/real_X to compare; pass --real DIR with the target-domain images.")
    return rows


def _pairs_or_sets(name: str, a: dict[str, Path], target_name: str, b: dict[str, Path], paired: bool, *,
                   distributions: bool = True):
    if paired:
        stems = sorted(a.keys() & b.keys())
        return (f"{name} ~ {target_name} (pairs)", [a[s] for s in stems], [b[s] for s in stems], True, distributions)
    return (f"{name} vs {target_name}", sorted(a.values()), sorted(b.values()), False, True)


def _folders(fake: Path, real: Path, paired: bool):
    if paired:
        from metrics.folders import paired_rows

        rows = paired_rows(fake, real)
        return (f"{fake.name} ~ {real.name} (pairs)", [r[0] for r in rows], [r[1] for r in rows], True, True)
    return (f"{fake.name} vs {real.name}", list_images(fake), list_images(real), False, True)


def format_table(rows: list[dict], names: list[str]) -> str:
    columns = ["compare", *names, "count"]
    cells = [[str(r["compare"]), *[_fmt(r.get(n)) for n in names], str(r.get("count", ""))] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(c) for c in cells)])


def _fmt(value) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.4f}"


def main(argv: list[str] | None = None) -> dict:
    args = make_parser().parse_args(argv)
    gpu_ids = parse_gpu_ids(args.gpu_ids)
    suite, skipped = build_suite(args, f"cuda:{gpu_ids[0]}" if gpu_ids else "cpu")
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}", file=sys.stderr)
    rows = []
    for label, files_a, files_b, paired, distributions in comparisons(args):
        if not (paired and suite.paired_metrics) and not (distributions and suite.distribution_metrics):
            continue  # nothing selected applies to this comparison
        scores = suite.compare_files(files_a, files_b, paired=paired, distributions=distributions, desc=label)
        rows.append({"compare": label, "paired": paired, **scores})
    if not rows:
        raise I2IError(f"none of the selected metrics ({', '.join(suite.names)}) applies to these comparisons: "
                       "psnr, ssim and lpips compare pairs of images (pass --paired where fake_X and real_X "
                       "correspond, as in pix2pix results), fid and kid compare sets.")
    shown = [c for n in suite.names for c in ((n, "kid_std") if n == "kid" else (n,)) if any(c in r for r in rows)]
    print(format_table(rows, shown))
    report = {"results": args.results, "fake": args.fake, "real": args.real, "metrics": suite.names,
              "skipped": skipped, "rows": rows}
    out = Path(args.json) if args.json else (Path(args.results) / "metrics.json" if args.results else
                                             Path("metrics.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"scores written to {out}")
    return report


if __name__ == "__main__":
    run_main(main)
