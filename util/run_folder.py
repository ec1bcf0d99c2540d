"""One training run per run folder (`checkpoints/NAME/`): a lock for the live run, no silent overwrites.

- `RunLock`: an exclusive POSIX lock (`lockf`) on `NAME/.run.lock` while a run trains (docs/differences.md,
  "Checkpoints"). Unlike `flock`, it is not shared with forked data-loader workers, which can outlive a killed
  run by seconds.
- a fresh run into a folder holding checkpoints stops, naming `--continue_train` and `--overwrite_run`;
  `clear_run(folder)` is what `--overwrite_run` does.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from .checkpoint import saved_checkpoints
from .errors import I2IError

LOCK_NAME = ".run.lock"
_RUN_OUTPUTS = ("loss_log.txt", "loss_log.jsonl", "best_metric.json", "web", "tensorboard")


def clear_run(folder: Path) -> list[Path]:
    """--overwrite_run: delete the previous run's checkpoints, logs and pages (nothing else); returns them."""
    removed = saved_checkpoints(folder) + [folder / n for n in _RUN_OUTPUTS if (folder / n).exists()]
    for path in removed:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return removed


class RunLock:
    """An exclusive lock on a run folder for the life of this process (or until `release`)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._file = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no advisory locks; runs are not guarded there
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115  (held open while the run lives)
        except OSError as exc:
            raise I2IError(f"could not create {self.path}: {exc.strerror or exc}. Make --checkpoints_dir "
                           "writable.") from None
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                pass  # the file system has no locks (some network mounts): carry on unguarded
            else:
                holder = _describe_holder(handle)
                handle.close()
                raise I2IError(f"{self.path.parent} is in use by another live run ({holder}). Wait for it to "
                               "finish or stop it, or train under another --name.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                                 "command": " ".join(sys.argv)}) + "\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock; the file stays as the record of the last run
            self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe_holder(handle) -> str:
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
    except ValueError:
        return "its process is unknown"
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.get("started", 0)))
    return f"PID {info.get('pid', '?')} on {info.get('host', '?')}, started {started}: {info.get('command', '?')}"


def claim_run_folder(folder: str | os.PathLike, *, resuming: bool, overwrite: bool) -> RunLock:
    """Lock `folder` for this run. A fresh run first refuses a trained folder (touching nothing) or, with
    --overwrite_run, clears it once the lock is held. Returns the held lock (released when the process ends)."""
    folder = Path(folder)
    found = [] if resuming or overwrite else saved_checkpoints(folder)
    if found:  # a fresh run into a trained folder: stop before anything is written
        shown = ", ".join(p.name for p in found[:4]) + (", ..." if len(found) > 4 else "")
        raise I2IError(f"{folder} holds a trained run ({shown}); a fresh run there would overwrite it. Pass "
                       "--continue_train to resume it, --overwrite_run to start over and replace it, or another "
                       "--name.")
    lock = RunLock(folder).acquire()
    if not resuming and overwrite:
        for path in clear_run(folder):
            print(f"--overwrite_run: removed {path}")
    return lock
