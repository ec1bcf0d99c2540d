"""Progress of long loops: tqdm bars on a terminal, a plain line every so often otherwise.

A bar redrawn in place turns into thousands of carriage returns in a CI log or a file, so a counter whose
stream is not a terminal writes one plain line at most every `interval` seconds and one at the end.
Under torchrun only rank 0 shows progress and `write`s lines.

    progress = TrainProgress(first_epoch=1, last_epoch=200, batches_per_epoch=math.ceil(samples / batch_size))
    for epoch in progress.epochs():
        for data in progress.batches(loader):
            ...
            progress.show_losses(losses)   # when the losses are fetched anyway (no extra device sync)
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, TypeVar

from tqdm import tqdm

from util.cli import write_line
from util.collectives import is_main

T = TypeVar("T")

PLAIN_INTERVAL = 30.0  # seconds between plain progress lines when the stream is not a terminal


def is_terminal(stream: IO[str]) -> bool:
    """True when `stream` is an interactive terminal (a bar can be redrawn in place there)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


write = write_line  # a line above any bar on screen, rank 0 only


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """One counter towards `total` (None: unknown), shown as a tqdm bar or as plain periodic lines.

    stream   -- where it is shown (default: stderr, as tqdm; loss lines on stdout stay clean);
    terminal -- force bar (True) or plain lines (False); default: whether `stream` is a terminal;
    interval -- seconds between plain lines; clock -- injectable for tests;
    visible  -- show anything at all; default: unless this is a torchrun process other than rank 0.
    """

    def __init__(self, total: int | None, desc: str, unit: str = "it", *, stream: IO[str] | None = None,
                 terminal: bool | None = None, interval: float = PLAIN_INTERVAL, leave: bool = True,
                 position: int | None = None, clock: Callable[[], float] = time.monotonic,
                 visible: bool | None = None, initial: int = 0) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.visible = is_main() if visible is None else visible
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self.interval, self.clock = interval, clock
        self.n = self.initial = initial  # counted before this start (a resumed epoch's trained batches)
        self.shown = -1  # the count the last plain line showed
        self.postfix = ""
        self.start = self.last_line = clock()
        self.closed = False
        self.bar: tqdm | None = None
        if self.terminal and self.visible:
            self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=leave, position=position,
                            dynamic_ncols=True, initial=initial)

    def update(self, n: int = 1) -> None:
        """Count `n` more; a plain line if `interval` has passed since the last one."""
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.visible and self.clock() - self.last_line >= self.interval:
            self._line()

    def show_losses(self, losses: Mapping[str, float]) -> None:
        """Show these values beside the count (the bar's postfix; the next plain line)."""
        self.postfix = " ".join(f"{name} {float(value):.3f}" for name, value in losses.items())  # G_A 0.512 ...
        if self.bar is not None:
            self.bar.set_postfix_str(self.postfix, refresh=False)

    def line(self) -> str:
        """The plain progress line: `desc: 120/400 it (30%), 2.50 it/s, 0:00:48 elapsed, 0:02:00 left | losses`."""
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = (self.n - self.initial) / elapsed
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        text = f"{self.desc}: {count} {self.unit}"
        if self.total:
            text += f" ({100 * self.n / self.total:.0f}%)"
        text += f", {rate:.2f} {self.unit}/s, {_duration(elapsed)} elapsed"
        if self.total and self.n < self.total:
            text += f", {_duration((self.total - self.n) / rate if rate > 0 else math.inf)} left"
        return text + (f" | {self.postfix}" if self.postfix else "")

    def _line(self) -> None:
        self.last_line, self.shown = self.clock(), self.n
        print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        """Finish: close the bar, or write the final plain line (once)."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif self.visible and self.n and self.shown != self.n:
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class TrainProgress:
    """The two counters of training: epochs (outer) and batches within the epoch (inner)."""

    def __init__(self, first_epoch: int, last_epoch: int, batches_per_epoch: int | None, **kwargs: Any) -> None:
        """batches_per_epoch -- this process's batches (under torchrun: of its shard);
        kwargs go to each `Progress` (stream, terminal, interval, clock, visible)."""
        self.first_epoch, self.last_epoch = first_epoch, last_epoch
        self.batches_per_epoch = batches_per_epoch
        visible = kwargs.pop("visible", None)
        self.kwargs = kwargs | {"visible": is_main() if visible is None else visible}
        self.epoch_bar: Progress | None = None
        self.batch_bar: Progress | None = None
        self.epoch = first_epoch

    def epochs(self) -> Iterator[int]:
        """Epoch numbers first..last; on a terminal an epoch bar sits above the batch bar."""
        terminal = self.kwargs.get("terminal")
        stream = self.kwargs.get("stream") or sys.stderr
        if self.kwargs["visible"] and (terminal if terminal is not None else is_terminal(stream)):
            self.epoch_bar = Progress(self.last_epoch - self.first_epoch + 1, "epochs", "epoch", position=0,
                                      **self.kwargs)
        try:
            for epoch in range(self.first_epoch, self.last_epoch + 1):
                self.epoch = epoch
                yield epoch
                if self.epoch_bar is not None:
                    self.epoch_bar.update(1)
        finally:
            if self.epoch_bar is not None:
                self.epoch_bar.close()

    def batches(self, loader: Iterable[T], done: int = 0) -> Iterator[T]:
        """The loader's batches, counted on the inner bar (`epoch E/N`) from `done` (batches a resumed epoch
        trained before), closed at the end of the epoch."""
        position = 1 if self.epoch_bar is not None else None
        self.batch_bar = Progress(self.batches_per_epoch, f"epoch {self.epoch}/{self.last_epoch}", "it",
                                  leave=position is None, position=position, initial=done, **self.kwargs)
        try:
            for batch in loader:
                yield batch
                self.batch_bar.update(1)
        finally:
            self.batch_bar.close()

    def show_losses(self, losses: Mapping[str, float]) -> None:
        """Current losses beside the batch count."""
        if self.batch_bar is not None:
            self.batch_bar.show_losses(losses)

    @staticmethod
    def write(message: str) -> None:
        """Print a line to stdout without tearing a bar that is on screen (rank 0 only, see `write`)."""
        write(message)


def progress_bar(total: int | None, desc: str, unit: str = "img", **kwargs: Any) -> Progress:
    """A single counter (e.g. test images): `with progress_bar(n, "test") as bar: ... bar.update(k)`."""
    return Progress(total, desc, unit, **kwargs)
