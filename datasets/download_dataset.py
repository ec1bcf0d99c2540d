"""Download and unpack one of the reference's public datasets into ./datasets (or --root).

    python datasets/download_dataset.py horse2zebra               # CycleGAN layout: trainA/ trainB/ testA/ testB/
    python datasets/download_dataset.py edges2shoes               # pix2pix layout: train/ val/ (A|B images)
    python datasets/download_dataset.py facades --kind pix2pix    # names in both collections need --kind

CycleGAN datasets are .zip files, pix2pix datasets .tar.gz files, both from the authors' server (plain http, as
the reference's scripts use). The archive is streamed to `<name>.<ext>.part`, its size checked against the
server's Content-Length (and its SHA-256 when one is listed in CHECKSUMS), renamed, unpacked, then deleted.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import http.client
import os
import socket
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tqdm import tqdm  # noqa: E402

from util.errors import I2IError  # noqa: E402

BASE_URL = "http://efrosgans.eecs.berkeley.edu"

#: CycleGAN (unaligned) datasets: <base>/cyclegan/datasets/<name>.zip
CYCLEGAN_DATASETS = (
    "ae_photos", "apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo",
    "ukiyoe2photo", "vangogh2photo", "maps", "facades", "iphone2dslr_flower", "mini", "mini_pix2pix",
    "mini_colorization",
)
#: pix2pix (aligned A|B) datasets: <base>/pix2pix/datasets/<name>.tar.gz
PIX2PIX_DATASETS = ("night2day", "edges2handbags", "edges2shoes", "facades", "maps")
KINDS = {"cyclegan": (CYCLEGAN_DATASETS, "cyclegan/datasets", ".zip", "trainA"),
         "pix2pix": (PIX2PIX_DATASETS, "pix2pix/datasets", ".tar.gz", "train")}

#: SHA-256 of archives, keyed "<kind>/<name>". The authors publish none, so this is empty and only the size is
#: checked; add entries (e.g. from a download you trust) to make the check strict.
CHECKSUMS: dict[str, str] = {}

CITYSCAPES_MESSAGE = (
    "cityscapes is not distributed here: its licence forbids redistribution. Register at "
    "https://www.cityscapes-dataset.com, download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, "
    "and convert them with the reference's datasets/prepare_cityscapes_dataset.py."
)

_CHUNK = 1 << 16


def resolve(name: str, kind: str | None) -> str:
    """The collection ("cyclegan" or "pix2pix") of dataset `name`; raises I2IError for unknown or ambiguous names."""
    if name == "cityscapes":
        raise I2IError(CITYSCAPES_MESSAGE)
    kinds = [k for k, (names, *_rest) in KINDS.items() if name in names and kind in (None, k)]
    if len(kinds) == 1:
        return kinds[0]
    if len(kinds) > 1:
        raise I2IError(
            f"'{name}' exists in both collections: --kind cyclegan gives the unaligned version "
            "(trainA/ trainB/, for --dataset_mode unaligned), --kind pix2pix the aligned A|B version "
            "(train/ val/, for --dataset_mode aligned). Add one of them."
        )
    pool = sorted(set(KINDS[kind][0] if kind else CYCLEGAN_DATASETS + PIX2PIX_DATASETS))
    close = difflib.get_close_matches(name, pool, n=1)
    where = f" for --kind {kind}" if kind else ""
    message = f"unknown dataset '{name}'{where}. Valid names: {', '.join(pool)}."
    raise I2IError(message + (f" Did you mean '{close[0]}'?" if close else ""))


def dataset_url(name: str, kind: str, base_url: str = BASE_URL) -> str:
    _names, folder, ext, _marker = KINDS[kind]
    return f"{base_url.rstrip('/')}/{folder}/{name}{ext}"


def download(url: str, target: Path, sha256: str | None = None, timeout: float = 30.0) -> Path:
    """Stream `url` to `target` through `target.part`; check size (and SHA-256 if given); rename when complete."""
    part = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            expected = int(expected) if expected is not None else None
            received = 0
            with open(part, "wb") as out, tqdm(total=expected, unit="B", unit_scale=True, desc=target.name) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise I2IError(f"the server answered {exc.code} {exc.reason} for {url}. Check the name, or try "
                       "--base_url with a mirror.") from None
    except (urllib.error.URLError, http.client.HTTPException, socket.timeout, OSError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise I2IError(f"could not download {url}: {reason}. The server may be down or unreachable from here; "
                       "try again later, or pass --base_url with a mirror.") from None
    if expected is not None and received != expected:
        part.unlink(missing_ok=True)
        raise I2IError(f"the download of {url} is incomplete: got {received} of {expected} bytes. Run the command "
                       "again.")
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        part.unlink(missing_ok=True)
        raise I2IError(f"the download of {url} has SHA-256 {digest.hexdigest()}, expected {sha256}: the file is "
                       "corrupt or was changed on the server. Run again; if it persists, report it.")
    os.replace(part, target)
    return target


def extract(archive: Path, root: Path) -> None:
    """Unpack a .zip or .tar.gz into `root`, refusing members that would land outside it."""
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    if not (root / member).resolve().is_relative_to(root.resolve()):
                        raise I2IError(f"archive {archive} contains an unsafe path '{member}'; not extracting it.")
                zf.extractall(root)
        else:
            with tarfile.open(archive, "r:gz") as tf:
                tf.extractall(root, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise I2IError(f"cannot unpack {archive} ({exc}); delete it and download again.") from None


def fetch(name: str, kind: str | None = None, root: Path = Path("datasets"), base_url: str = BASE_URL,
          force: bool = False, keep_archive: bool = False) -> Path:
    """Download and unpack dataset `name`; returns its folder `root/name`. Skips the work if it is already there."""
    kind = resolve(name, kind)
    _names, _folder, ext, marker = KINDS[kind]
    folder = root / name
    if (folder / marker).is_dir() and not force:
        print(f"{folder / marker} already exists; skipping (use --force to download again).")
        return folder
    root.mkdir(parents=True, exist_ok=True)
    archive = root / f"{name}{ext}"
    if not archive.is_file():  # a complete archive from an earlier run is reused (partial ones end in .part)
        url = dataset_url(name, kind, base_url)
        print(f"downloading {url}")
        download(url, archive, CHECKSUMS.get(f"{kind}/{name}"))
    extract(archive, root)
    if not keep_archive:
        archive.unlink()
    if not folder.is_dir():
        raise I2IError(f"{archive} did not contain the folder '{name}/'; look inside {root} for what it held.")
    return folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="dataset name, e.g. horse2zebra, facades, edges2shoes")
    parser.add_argument("--kind", choices=sorted(KINDS), help="collection, needed for names in both (facades, maps)")
    parser.add_argument("--root", type=Path, default=Path("datasets"), help="where to unpack (default ./datasets)")
    parser.add_argument("--base_url", default=BASE_URL, help=f"server to download from (default {BASE_URL})")
    parser.add_argument("--force", action="store_true", help="download again even if the folder exists")
    parser.add_argument("--keep_archive", action="store_true", help="keep the .zip/.tar.gz after unpacking")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns 0 on success, 1 on an error (printed as one line)."""
    args = parse_args(argv)
    try:
        folder = fetch(args.name, args.kind, args.root, args.base_url, args.force, args.keep_archive)
    except I2IError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"dataset ready in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
