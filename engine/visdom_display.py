"""Live training feedback in Visdom: the loss curves, the visuals as a grid with their labels, the options.

Visdom is optional and never started by i2i: an unreachable server gets one warning, training goes on, and
the connection is retried at most every `I2I_VISDOM_RETRY_SECONDS` (60), resending the whole loss history
once a server is up; after that only new loss points are sent.
"""

from __future__ import annotations

import html
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

RETRY_SECONDS = float(os.environ.get("I2I_VISDOM_RETRY_SECONDS", 60))  # how often an absent server is retried


class _QuietVisdom(logging.Filter):
    """Drops visdom's own per-connection chatter; i2i says what matters in one line itself."""

    NOISE = ("Setting up a new session", "Without the incoming socket")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.NOISE)


_QUIET_VISDOM = _QuietVisdom()


class VisdomLink:
    """A lazily made visdom client that degrades to "off, retry later" instead of raising."""

    def __init__(self, server: str, port: int, env: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.server, self.port, self.env = server, port, env
        self.clock = clock
        self.client: Any = None
        self.next_try = float("-inf")
        self.warned = False
        self.connections = 0  # bumped at each (re)connection: whoever sends deltas must resend everything

    def get(self) -> Any:
        """The connected client, or None while the server is unreachable (tried at most every minute)."""
        if self.client is not None or self.clock() < self.next_try:
            return self.client
        try:
            import visdom
        except ImportError:
            self._lost("visdom is not installed: `pip install visdom`, then start a server with "
                       f"`python -m visdom.server -p {self.port}`")
            return None
        logging.getLogger("visdom").addFilter(_QUIET_VISDOM)
        try:
            self.client = visdom.Visdom(server=self.server, port=self.port, env=self.env,
                                        raise_exceptions=True, use_incoming_socket=False)
        except OSError:  # visdom raises ConnectionError; requests' errors are OSErrors too
            self._lost(f"no visdom server at {self.server}:{self.port}; start one with "
                       f"`python -m visdom.server -p {self.port}`")
            return None
        self.connections += 1
        logger.info("connected to visdom at %s:%s (env %s)", self.server, self.port, self.env)
        return self.client

    def send(self, action: Callable[[Any], object]) -> None:
        """Run `action(client)` if connected; a connection error switches the display off until the next retry."""
        client = self.get()
        if client is None:
            return
        try:
            action(client)
        except OSError:
            self._lost(f"lost the visdom server at {self.server}:{self.port}")

    def _lost(self, reason: str) -> None:
        self.client = None
        self.next_try = self.clock() + RETRY_SECONDS
        if not self.warned:
            self.warned = True
            logger.warning("%s (or pass --display_id 0 to turn the display off). Training continues; "
                           "i2i retries every %d s.", reason, int(RETRY_SECONDS))


class VisdomDisplay:
    """Windows `display_id` (loss curves), +1 (the visuals), +2 (their labels) and `<display_id>_options`."""

    def __init__(self, opt: Any) -> None:
        self.opt, self.name = opt, opt.name
        self.display_id, self.ncols = opt.display_id, opt.display_ncols
        self.link = VisdomLink(opt.display_server, opt.display_port, opt.display_env)
        self._plotted = (0, 0)  # (visdom connection, points it holds): what the next plot may append to
        self._options_shown = 0  # the visdom connection that has the options pane

    def show_images(self, images: Mapping[str, np.ndarray]) -> None:
        self.link.send(lambda vis: self._show_images(vis, images))

    def plot(self, plot_data: dict[str, list]) -> None:
        self.link.send(lambda vis: self._plot(vis, plot_data))

    def _show_images(self, vis: Any, images: Mapping[str, np.ndarray]) -> None:
        self._show_options(vis)
        chw = [np.tile(im, (1, 1, 3)).transpose(2, 0, 1) if im.shape[2] == 1 else im.transpose(2, 0, 1)
               for im in images.values()]
        if self.ncols <= 0 or len({im.shape for im in chw}) > 1:  # a grid needs equal sizes
            for offset, (label, im) in enumerate(zip(images, chw), start=1):
                vis.image(im, win=self.display_id + offset, opts={"title": label})
            return
        ncols = min(self.ncols, len(chw))
        white = np.full_like(chw[0], 255)
        padded = chw + [white] * (-len(chw) % ncols)
        vis.images(np.stack(padded), nrow=ncols, win=self.display_id + 1, padding=2,
                   opts={"title": f"{self.name} images"})
        labels = list(images)
        cell = '<td style="padding:2px 12px">'
        rows = ["<tr>" + "".join(f"{cell}{html.escape(x)}</td>" for x in labels[i : i + ncols]) + "</tr>"
                for i in range(0, len(labels), ncols)]
        vis.text(f"<table>{''.join(rows)}</table>", win=self.display_id + 2, opts={"title": f"{self.name} labels"})

    def _show_options(self, vis: Any) -> None:
        """The run's options as a text pane, once per visdom connection."""
        if self._options_shown == self.link.connections:
            return
        self._options_shown = self.link.connections
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in sorted(vars(self.opt).items()))
        vis.text(f"<table>{rows}</table>", win=f"{self.display_id}_options", opts={"title": f"{self.name} options"})

    def _plot(self, vis: Any, plot_data: dict[str, list]) -> None:
        """Send the whole curve to a new connection, afterwards only the points it does not have."""
        self._show_options(vis)
        legend = plot_data["legend"]
        connection, sent = self._plotted
        # Visdom keys windows by string: appending to the integer id finds no window and starts a new plot.
        win = str(self.display_id)
        fresh = connection != self.link.connections or not vis.win_exists(win)  # (or closed in the browser)
        start = 0 if fresh else sent
        x = np.stack([np.asarray(plot_data["X"][start:], dtype=float)] * len(legend), axis=1)
        y = np.asarray(plot_data["Y"][start:], dtype=float)
        opts = {"title": f"{self.name} loss over time", "legend": legend, "xlabel": "epoch", "ylabel": "loss"}
        if fresh:
            vis.line(X=x, Y=y, win=self.display_id, opts=opts)
        else:
            vis.line(X=x, Y=y, win=win, update="append")
        self._plotted = (self.link.connections, len(plot_data["X"]))
