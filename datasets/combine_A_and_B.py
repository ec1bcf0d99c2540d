"""Build pix2pix training images (A and B side by side) from two folders of same-named pairs.

    fold_A/<split>/x.jpg  +  fold_B/<split>/x.jpg   ->   fold_AB/<split>/x.jpg   (A left, B right)

Every sub-folder of fold_A is a split (train, val, test, ...); images lying directly in fold_A form one more
split written directly into fold_AB. With --use_AB the pairs are `x_A.jpg` / `x_B.jpg` in the same folders and
the output is `x.jpg`. Pairs without a partner or with different sizes are skipped and reported.

    python datasets/combine_A_and_B.py --fold_A path/A --fold_B path/B --fold_AB path/AB
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image  # noqa: E402

from data.image_folder import is_image_file, load_image  # noqa: E402
from util.errors import I2IError  # noqa: E402

_SHOWN = 5  # how many skipped names a report lists


@dataclass
class SplitReport:
    """What happened to one split."""

    name: str
    written: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fold_A", required=True, help="input folder of A images, one sub-folder per split")
    parser.add_argument("--fold_B", required=True, help="input folder of B images with the same names as in fold_A")
    parser.add_argument("--fold_AB", required=True, help="output folder for the A|B images")
    parser.add_argument("--num_imgs", type=int, default=1_000_000, help="at most this many images per split")
    parser.add_argument("--use_AB", action="store_true", help="pair x_A.* with x_B.* and write x.*")
    parser.add_argument("--no_multiprocessing", action="store_true", help="combine in this process only")
    return parser.parse_args(argv)


def find_splits(fold_A: Path) -> list[str]:
    """Sub-folders of fold_A (sorted), plus "." when images lie directly in fold_A."""
    if not fold_A.is_dir():
        raise I2IError(f"--fold_A '{fold_A}' does not exist. Point it at the folder of A images "
                       "(with train/, test/, ... sub-folders).")
    splits = sorted(p.name for p in fold_A.iterdir() if p.is_dir())
    if any(is_image_file(p.name) for p in fold_A.iterdir() if p.is_file()):
        splits.append(".")
    if not splits:
        raise I2IError(f"--fold_A '{fold_A}' holds no split folders and no images; expected e.g. {fold_A}/train/*.jpg.")
    return splits


def plan_split(args: argparse.Namespace, split: str, report: SplitReport) -> list[tuple[str, str, str]]:
    """The (A, B, AB) path triples of one split; A images without a partner are noted in `report`."""
    dir_A, dir_B, dir_AB = (Path(f) / split for f in (args.fold_A, args.fold_B, args.fold_AB))
    names = sorted(p.name for p in dir_A.iterdir() if p.is_file() and is_image_file(p.name))
    if args.use_AB:
        names = [n for n in names if "_A." in n]
    jobs = []
    for name in names[: args.num_imgs]:
        name_B = name.replace("_A.", "_B.") if args.use_AB else name
        name_AB = name.replace("_A.", ".") if args.use_AB else name
        if not (dir_B / name_B).is_file():
            report.missing.append(name)
            continue
        jobs.append((str(dir_A / name), str(dir_B / name_B), str(dir_AB / name_AB)))
    return jobs


def combine_pair(job: tuple[str, str, str]) -> tuple[str, str]:
    """Write one A|B image; returns (status, detail) with status "ok", "size" or "unreadable"."""
    path_A, path_B, path_AB = job
    try:
        im_A, im_B = load_image(path_A), load_image(path_B)
    except I2IError as exc:
        return "unreadable", str(exc)
    if im_A.size != im_B.size:
        (wa, ha), (wb, hb) = im_A.size, im_B.size
        return "size", f"{Path(path_A).name} (A {wa}x{ha}, B {wb}x{hb})"
    w, h = im_A.size
    im_AB = Image.new("RGB", (2 * w, h))
    im_AB.paste(im_A, (0, 0))
    im_AB.paste(im_B, (w, 0))
    Path(path_AB).parent.mkdir(parents=True, exist_ok=True)
    im_AB.save(path_AB, quality=95)  # quality only applies to JPEG; PNG and others ignore it
    return "ok", path_AB


def combine(args: argparse.Namespace) -> list[SplitReport]:
    """Combine every split; returns one report per split."""
    fold_A, fold_B = Path(args.fold_A), Path(args.fold_B)
    splits = find_splits(fold_A)
    if not fold_B.is_dir():
        raise I2IError(f"--fold_B '{fold_B}' does not exist. Point it at the folder of B images "
                       "(same sub-folders and file names as --fold_A).")
    reports = []
    for split in splits:
        report = SplitReport(split)
        reports.append(report)
        if not (fold_B / split).is_dir():
            report.missing.append(f"(whole split: '{fold_B / split}' does not exist)")
            continue
        jobs = plan_split(args, split, report)
        if args.no_multiprocessing or len(jobs) < 2:
            results = [combine_pair(job) for job in jobs]
        else:
            with multiprocessing.Pool() as pool:
                results = pool.map(combine_pair, jobs)
        for status, detail in results:
            if status == "ok":
                report.written += 1
            else:
                (report.mismatched if status == "size" else report.unreadable).append(detail)
    return reports


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f", ... ({len(items) - _SHOWN} more)" if len(items) > _SHOWN else "")


def format_report(report: SplitReport, fold_AB: str) -> list[str]:
    lines = [f"split '{report.name}': wrote {report.written} A|B images to {Path(fold_AB) / report.name}"]
    if report.missing:
        lines.append(f"  skipped {len(report.missing)} without a partner in fold_B: {_names(report.missing)}")
    if report.mismatched:
        lines.append(f"  skipped {len(report.mismatched)} whose A and B sizes differ: {_names(report.mismatched)}")
    for message in report.unreadable:
        lines.append(f"  skipped: {message}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns 0 when images were written, 1 when none were, 2 on a usage error."""
    args = parse_args(argv)
    try:
        reports = combine(args)
    except I2IError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for report in reports:
        print("\n".join(format_report(report, args.fold_AB)))
    if not any(r.written for r in reports):
        print("error: no A|B image was written; check that fold_A and fold_B hold same-named images.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
