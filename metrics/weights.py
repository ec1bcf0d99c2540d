"""Feature-extractor weights (the FID Inception, LPIPS's AlexNet): a local file, a cache folder, or a download.

Looked for in order: an explicit file (`--inception_weights PATH`, `--lpips_weights PATH`); the cache folder
(`$I2I_CACHE`, else `~/.cache/i2i`, under the published file name); with `download=True`, the published URL,
checked against the SHA-256 prefix the file name carries (the torch.hub convention). When none works, the
error names the URL and the exact path to put the file at.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from util.files import atomic_write
from util.errors import I2IError

logger = logging.getLogger(__name__)

CACHE_ENV = "I2I_CACHE"


@dataclass(frozen=True)
class WeightsFile:
    """A published weights file: its file name, where it is published, and the SHA-256 prefix it must have."""

    filename: str
    url: str
    sha256_prefix: str
    what: str  # shown in messages, e.g. "FID Inception-v3"


INCEPTION_FID = WeightsFile(
    filename="pt_inception-2015-12-05-6726825d.pth",
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    sha256_prefix="6726825d",
    what="FID Inception-v3 (the TensorFlow FID network ported to PyTorch, as pytorch-fid uses)",
)

ALEXNET = WeightsFile(
    filename="alexnet-owt-7be5be79.pth",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    sha256_prefix="7be5be79",
    what="AlexNet (torchvision's ImageNet weights, the LPIPS backbone)",
)


def cache_dir() -> Path:
    """Where downloaded weights live: `$I2I_CACHE` or `~/.cache/i2i`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "i2i")


def missing_message(spec: WeightsFile, option: str) -> str:
    """The fix for absent weights: which file, from where, to where (or which option points at it)."""
    target = cache_dir() / spec.filename
    return (f"the {spec.what} weights are not available offline. Download {spec.url} and put it at {target} "
            f"(or set {CACHE_ENV} to the folder holding it, or pass {option} PATH).")


def resolve_weights(spec: WeightsFile, path: str | os.PathLike | None = None, *, option: str,
                    download: bool = False, timeout: float = 60.0) -> Path:
    """The local path of `spec`'s weights: `path` if given, else the cache, else a checked download.

    Raises I2IError naming the URL and the cache path when the weights cannot be had.
    """
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise I2IError(f"{option} {path}: no such file. {missing_message(spec, option)}")
        return path
    cached = cache_dir() / spec.filename
    if cached.is_file():
        return cached
    if not download:
        raise I2IError(missing_message(spec, option))
    return download_weights(spec, cached, timeout=timeout, option=option)


def download_weights(spec: WeightsFile, target: Path, *, timeout: float = 60.0, option: str = "") -> Path:
    """Fetch `spec.url` to `target`, refusing a file whose SHA-256 does not start with `spec.sha256_prefix`."""
    logger.warning("downloading %s to %s", spec.url, target)
    digest = hashlib.sha256()

    def write(f) -> None:
        try:
            with urllib.request.urlopen(spec.url, timeout=timeout) as response:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    f.write(block)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:  # URLError is an OSError
            raise I2IError(f"could not download {spec.url} ({exc}). {missing_message(spec, option)}") from None
        if not digest.hexdigest().startswith(spec.sha256_prefix):
            raise I2IError(f"the file downloaded from {spec.url} has SHA-256 {digest.hexdigest()}, which does not "
                           f"start with {spec.sha256_prefix}: refusing it (nothing was written to {target}). "
                           "Try again, or fetch it yourself and check it.")

    atomic_write(target, write)
    return target
