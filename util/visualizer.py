"""Training feedback: the loss log (text + JSON lines), the training web page, visdom and wandb.

Differences from the reference, on purpose:
- visdom is optional and never started for you: if the server is unreachable (or visdom is not
  installed) one warning says how to start it, training goes on, and the connection is retried at
  most once a minute, so the display comes back by itself once a server is up;
- every loss line is also appended to `loss_log.jsonl` for machines to read;
- the training page lists only epochs whose images exist, found with one folder scan per run;
- wandb logs losses whatever `--display_id` is.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .errors import I2IError
from .html import HTML
from .images import save_image, tensor2im, tensors2ims

logger = logging.getLogger(__name__)

RETRY_SECONDS = 60.0  # how often an unreachable visdom server is tried again
_EPOCH_IMAGE = re.compile(r"^epoch(\d+)_(.+)\.png$")


class _QuietVisdom(logging.Filter):
    """Drops visdom's own per-connection chatter; i2i says what matters in one line itself."""

    NOISE = ("Setting up a new session", "Without the incoming socket")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.NOISE)


_QUIET_VISDOM = _QuietVisdom()


class _VisdomLink:
    """A lazily made visdom client that degrades to "off, retry later" instead of raising."""

    def __init__(self, server: str, port: int, env: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.server, self.port, self.env = server, port, env
        self.clock = clock
        self.client: Any = None
        self.next_try = float("-inf")
        self.warned = False

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


class Visualizer:
    """What train.py reports through: `print_current_losses`, `plot_current_losses`, `display_current_results`."""

    def __init__(self, opt: Any) -> None:
        self.opt = opt
        self.name = opt.name
        self.display_id = int(getattr(opt, "display_id", 0))
        self.ncols = int(getattr(opt, "display_ncols", 4))
        self.win_size = int(getattr(opt, "display_winsize", 256))
        self.is_train = bool(getattr(opt, "isTrain", True))
        self.use_html = self.is_train and not getattr(opt, "no_html", False)
        run_dir = Path(opt.checkpoints_dir) / opt.name
        self.log_name = run_dir / "loss_log.txt"
        self.jsonl_name = run_dir / "loss_log.jsonl"
        self.web_dir = run_dir / "web"
        self.img_dir = self.web_dir / "images"
        self.visdom = None
        if self.display_id > 0:
            self.visdom = _VisdomLink(getattr(opt, "display_server", "http://localhost"),
                                      int(getattr(opt, "display_port", 8097)), getattr(opt, "display_env", "main"))
        self.wandb, self._owns_wandb_run = _start_wandb(opt) if getattr(opt, "use_wandb", False) else (None, False)
        self.plot_data: dict[str, list] = {"X": [], "Y": [], "legend": []}
        self._header_written = False
        self._saved_epoch: int | None = None  # the reference's `saved` flag, kept per epoch
        self._epochs: dict[int, list[str]] | None = None  # epoch -> visual names with images on disk
        self._page_written = False

    def reset(self) -> None:
        """Forget that images were saved this epoch (the next display saves them again)."""
        self._saved_epoch = None

    # ---- images ------------------------------------------------------------------------------------

    def display_current_results(self, visuals: Mapping[str, torch.Tensor], epoch: int, save_result: bool) -> None:
        """Show the first image of each visual in visdom/wandb; write them and the web page when
        `save_result` is set or nothing was saved yet this epoch."""
        save = self.use_html and (save_result or self._saved_epoch != epoch)
        if not (save or self.visdom or self.wandb):
            return  # spare the device-to-host copies
        images = {label: tensor2im(t) for label, t in visuals.items()}
        if self.visdom is not None:
            self.visdom.send(lambda vis: self._show_images(vis, images))
        if self.wandb is not None:
            self.wandb.log({label: self.wandb.Image(im) for label, im in images.items()} | {"epoch": epoch})
        if save:
            self._saved_epoch = epoch
            for label, im in images.items():
                save_image(im, self.img_dir / f"epoch{epoch:03d}_{label}.png")
            self._known_epochs()[epoch] = list(images)
            self._write_page(refresh=1, order=list(images))

    def _show_images(self, vis: Any, images: Mapping[str, np.ndarray]) -> None:
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
        rows = ["<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in labels[i : i + ncols]) + "</tr>"
                for i in range(0, len(labels), ncols)]
        vis.text(f"<table>{''.join(rows)}</table>", win=self.display_id + 2, opts={"title": f"{self.name} labels"})

    def _known_epochs(self) -> dict[int, list[str]]:
        """Epochs with images on disk: one folder scan per Visualizer, then kept up to date in memory."""
        if self._epochs is None:
            self._epochs = {}
            if self.img_dir.is_dir():
                for path in sorted(self.img_dir.iterdir()):
                    match = _EPOCH_IMAGE.match(path.name)
                    if match:
                        self._epochs.setdefault(int(match.group(1)), []).append(match.group(2))
        return self._epochs

    def _write_page(self, refresh: int, order: Sequence[str] = ()) -> None:
        rank = {label: i for i, label in enumerate(order)}
        page = HTML(self.web_dir, f"Experiment name = {self.name}", refresh=refresh)
        for epoch in sorted(self._known_epochs(), reverse=True):
            labels = sorted(self._known_epochs()[epoch], key=lambda x: (rank.get(x, len(rank)), x))
            files = [f"epoch{epoch:03d}_{label}.png" for label in labels]
            page.add_header(f"epoch [{epoch}]")
            page.add_images(files, labels, files, width=self.win_size)
        page.save()
        self._page_written = True

    # ---- losses ------------------------------------------------------------------------------------

    def plot_current_losses(self, epoch: int, counter_ratio: float, losses: Mapping[str, float]) -> None:
        """Add a point at x = epoch + counter_ratio to the loss plot (visdom) and log the losses (wandb)."""
        if not self.plot_data["legend"]:
            self.plot_data["legend"] = list(losses)
        legend = self.plot_data["legend"]
        self.plot_data["X"].append(epoch + counter_ratio)
        self.plot_data["Y"].append([float(losses.get(k, float("nan"))) for k in legend])
        if self.visdom is not None:
            self.visdom.send(self._plot)
        if self.wandb is not None:
            self.wandb.log({k: float(v) for k, v in losses.items()} | {"epoch": epoch + counter_ratio})

    def _plot(self, vis: Any) -> None:
        legend = self.plot_data["legend"]
        x = np.stack([np.asarray(self.plot_data["X"], dtype=float)] * len(legend), axis=1)
        vis.line(X=x, Y=np.asarray(self.plot_data["Y"], dtype=float), win=self.display_id,
                 opts={"title": f"{self.name} loss over time", "legend": legend, "xlabel": "epoch", "ylabel": "loss"})

    def print_current_losses(self, epoch: int, iters: int, losses: Mapping[str, float], t_comp: float, t_data: float,
                             total_iters: int | None = None) -> None:
        """Print the reference's loss line and append it to loss_log.txt, plus a JSON record to loss_log.jsonl.

        `iters`: samples seen this epoch; `t_comp`: compute seconds per sample; `t_data`: data-wait seconds."""
        message = "(epoch: %d, iters: %d, time: %.3f, data: %.3f) " % (epoch, iters, t_comp, t_data)
        message += "".join("%s: %.3f " % (k, v) for k, v in losses.items())
        tqdm.write(message)  # stdout, without breaking a progress bar the driver may show
        self.log_name.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_name, "a", encoding="utf-8") as f:
            if not self._header_written:
                f.write("================ Training Loss (%s) ================\n" % time.strftime("%c"))
                self._header_written = True
            f.write(message + "\n")
        record: dict[str, Any] = {"epoch": epoch, "iters": iters}
        if total_iters is not None:
            record["total_iters"] = total_iters
        record |= {"time": t_comp, "data": t_data, "losses": {k: float(v) for k, v in losses.items()}}
        with open(self.jsonl_name, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def close(self) -> None:
        """End of training: rewrite the page without auto-refresh and finish a wandb run we started."""
        if self._page_written:
            self._write_page(refresh=0)
        if self.wandb is not None and self._owns_wandb_run:
            self.wandb.finish()


def _start_wandb(opt: Any) -> tuple[Any, bool]:
    """Import wandb and join the active run or start one (-> module, whether we started the run).

    A missing package is a user error with the fix, not a traceback."""
    try:
        import wandb
    except ImportError:
        raise I2IError("--use_wandb needs the wandb package: `pip install wandb`, or drop --use_wandb") from None
    if wandb.run is not None:
        return wandb, False
    project = getattr(opt, "wandb_project_name", None) or "CycleGAN-and-pix2pix"
    wandb.init(project=project, name=opt.name, config=vars(opt))
    return wandb, True


def save_test_images(webpage: HTML, visuals: Mapping[str, torch.Tensor], image_paths: Sequence[str],
                     aspect_ratio: float = 1.0, width: int = 256) -> None:
    """For every image i of the batch: write images/<stem of image_paths[i]>_<visual>.png and add a header
    (the stem) and a row of its visuals to `webpage` (the caller saves the page)."""
    batches = {label: tensors2ims(t) for label, t in visuals.items()}
    image_dir = webpage.get_image_dir()
    for i, source in enumerate(image_paths):
        stem = Path(str(source)).stem
        names = []
        for label, ims in batches.items():
            name = f"{stem}_{label}.png"
            save_image(ims[i], image_dir / name, aspect_ratio=aspect_ratio)
            names.append(name)
        webpage.add_header(stem)
        webpage.add_images(names, list(batches), names, width=width)
