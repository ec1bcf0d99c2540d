"""Writing files so that a reader, or a crash, never sees half of one: a temporary file beside the target,
renamed over it (atomic on one file system)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import WriteError

logger = logging.getLogger(__name__)


_UMASK = os.umask(0)  # the only way to read the umask is to set it: put it back at once
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, write: Any, mode: str = "wb", *, durable: bool = True) -> None:
    """Call `write(file)` on a temporary file beside `path`, flush it to disk, then rename it over `path`.

    A crash or a full disk leaves the previous file intact. `durable=False` skips the flush (a reader still never
    sees half a file): for many small files that a crash may lose, such as results."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a checkpoint gets the usual permissions
    except OSError as exc:
        raise WriteError(f"could not write {path}: {exc.strerror or exc}. Make its folder writable.") from exc
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise WriteError(f"could not write {path}: {exc.strerror or exc}. Free disk space or fix the "
                           "folder's permissions; the previous file, if any, is unchanged.") from exc
        raise


def link_or_copy(source: Path, target: Path) -> None:
    """Make `target` the same file as `source`, atomically: a hard link (no second copy on disk) where the file
    system allows it, else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.unlink(tmp)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temp_files(folder: Path) -> None:
    """Delete temporary files a killed process left half-written (`.<name>.*.tmp`, see `atomic_write`)."""
    if folder.is_dir():
        for path in folder.glob(".*.tmp"):
            logger.info("removing %s, left by an interrupted write", path)
            path.unlink(missing_ok=True)
