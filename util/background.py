"""Work handed to one background thread, so that writing results (PNG encoding, file I/O) overlaps with compute."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class BackgroundWorker:
    """Runs submitted calls in order on one thread; `close()` waits for them and re-raises the first failure.

    The queue holds at most `backlog` calls, so a slow disk holds the producer back instead of filling memory.
    Use it as a context manager: leaving the block closes it (and, after an exception, drops what is queued).
    """

    def __init__(self, backlog: int = 4, name: str = "i2i-writer") -> None:
        self._calls: queue.Queue = queue.Queue(maxsize=backlog)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._calls.get()) is not _STOP:
            if self._error is None:  # after a failure, the rest is drained unrun
                function, args, kwargs = item
                try:
                    function(*args, **kwargs)
                except BaseException as exc:  # handed to the producer by submit() or close()
                    self._error = exc

    def submit(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue `function(*args, **kwargs)`; raises at once if an earlier call has failed."""
        self._raise_error()
        self._calls.put((function, args, kwargs))

    def close(self) -> None:
        """Wait for every queued call, then raise the first failure, if any."""
        if self._thread.is_alive():
            self._calls.put(_STOP)
            self._thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BackgroundWorker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        self._error = self._error or exc  # stop running what is queued; the exception in flight wins
        self._calls.put(_STOP)
        self._thread.join()
