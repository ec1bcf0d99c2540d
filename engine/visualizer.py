"""Training feedback: the loss log (text + JSON lines), the training web page, visdom and wandb.

Differences from the reference, on purpose:
- visdom is optional and never started for you: if the server is unreachable (or visdom is not
  installed) one warning says how to start it, training goes on, and the connection is retried at
  most once a minute, so the display comes back by itself once a server is up;
- every loss line is also appended to `loss_log.jsonl` for machines to read;
- the training page is written incrementally: index.html holds the newest `EPOCHS_PER_PAGE` epochs and
  the loss curves, older epochs sit on fixed pages of `EPOCHS_PER_PAGE` epochs, and a save rewrites
  only the pages it changes, so its cost does not grow with the number of epochs;
- visdom also shows the run's options; after the first plot only new loss points are sent;
- wandb logs losses whatever `--display_id` is; `--use_tensorboard` logs to checkpoints/NAME/tensorboard.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from util.collectives import is_main
from util.errors import I2IError
from util.html import HTML, ResultPages
from util.images import save_image, tensor2im, tensors2ims
from .plot_losses import LossHistory, render_losses

logger = logging.getLogger(__name__)

RETRY_SECONDS = 60.0  # how often an unreachable visdom server is tried again
EPOCHS_PER_PAGE = 20  # epochs on index.html and on each older page of the training page
LOSS_IMAGE = "loss_curves.png"  # inside web/images/
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


def _main_process_only(method: Callable[..., None]) -> Callable[..., None]:
    """Under torchrun only rank 0 prints, logs, writes pages and talks to visdom/wandb; elsewhere a no-op."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        if is_main():
            method(self, *args, **kwargs)

    return wrapper


class Visualizer:
    """What train.py reports through: `print_current_losses`, `plot_current_losses`, `display_current_results`.

    `progress` (a `engine.progress.TrainProgress`, optional) gets the current losses for its bar."""

    def __init__(self, opt: Any, progress: Any = None) -> None:
        self.opt = opt
        self.name = opt.name
        self.progress = progress
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
        use_wandb = getattr(opt, "use_wandb", False) and is_main()  # torchrun: rank 0 reports for the job
        self.wandb, self._owns_wandb_run = _start_wandb(opt) if use_wandb else (None, False)
        use_tensorboard = getattr(opt, "use_tensorboard", False) and is_main()
        self.tensorboard = _start_tensorboard(opt, run_dir) if use_tensorboard else None
        self.plot_data: dict[str, list] = {"X": [], "Y": [], "legend": []}
        self._plotted = (0, 0)  # (visdom connection, points it holds): what the next plot may append to
        self._options_shown = 0  # the visdom connection that has the options pane
        self._header_written = False
        self._saved_epoch: int | None = None  # the reference's `saved` flag, kept per epoch
        self._epochs: dict[int, list[str]] | None = None  # epoch -> visual names with images on disk
        self._page_written = False
        self._order: list[str] = []  # the visuals in the model's order, for the page's columns
        self._block_links: dict[int, tuple[int | None, int | None]] = {}  # block page -> links it was written with
        self._history: LossHistory | None = None  # for the loss curves on the page, read from the log once
        self._step = 0  # TensorBoard's global step: samples seen, as last reported

    def reset(self) -> None:
        """Forget that images were saved this epoch (the next display saves them again)."""
        self._saved_epoch = None

    # ---- images ------------------------------------------------------------------------------------

    @_main_process_only
    def display_current_results(self, visuals: Mapping[str, torch.Tensor], epoch: int, save_result: bool) -> None:
        """Show the first image of each visual in visdom/wandb/TensorBoard; write them and the web page when
        `save_result` is set or nothing was saved yet this epoch."""
        save = self.use_html and (save_result or self._saved_epoch != epoch)
        if not (save or self.visdom or self.wandb or self.tensorboard):
            return  # spare the device-to-host copies
        images = {label: tensor2im(t) for label, t in visuals.items()}
        if self.visdom is not None:
            self.visdom.send(lambda vis: self._show_images(vis, images))
        if self.wandb is not None:
            self.wandb.log({label: self.wandb.Image(im) for label, im in images.items()} | {"epoch": epoch})
        if self.tensorboard is not None:
            for label, im in images.items():
                self.tensorboard.add_image(f"visuals/{label}", im, self._step, dataformats="HWC")
        if save:
            self._saved_epoch = epoch
            for label, im in images.items():
                save_image(im, self.img_dir / f"epoch{epoch:03d}_{label}.png")
            self._known_epochs()[epoch] = self._order = list(images)
            self._write_pages(epoch, refresh=1, order=self._order)

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
        if self.visdom is None or self._options_shown == self.visdom.connections:
            return
        self._options_shown = self.visdom.connections
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in sorted(vars(self.opt).items()))
        vis.text(f"<table>{rows}</table>", win=f"{self.display_id}_options", opts={"title": f"{self.name} options"})

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

    # ---- the training page -----------------------------------------------------------------------------
    # index.html: the loss curves and the newest EPOCHS_PER_PAGE epochs. Block b (epochs b*K+1 .. (b+1)*K)
    # also has a page of its own; a save rewrites index.html, its epoch's block page, and a neighbouring
    # block page only when its newer/older link must change: a bounded amount of work at any epoch count.

    @staticmethod
    def _block_page(block: int) -> str:
        k = EPOCHS_PER_PAGE
        return f"epochs_{block * k + 1:03d}-{(block + 1) * k:03d}.html"

    def _blocks(self) -> list[int]:
        return sorted({(epoch - 1) // EPOCHS_PER_PAGE for epoch in self._known_epochs()})

    def _write_pages(self, epoch: int, refresh: int, order: Sequence[str] = ()) -> None:
        if self._history is not None or self.jsonl_name.is_file():
            render_losses(self._loss_history(), self.img_dir / LOSS_IMAGE, title=f"{self.name}: losses")
        epochs = self._known_epochs()
        newest = sorted(epochs, reverse=True)[:EPOCHS_PER_PAGE]
        blocks = self._blocks()
        older = [b for b in blocks if b * EPOCHS_PER_PAGE + 1 < min(newest)]
        page = self._page(f"Experiment name = {self.name}", refresh)
        page.add_links([("older epochs \u00bb", self._block_page(older[-1]) if older else None)])
        if (self.img_dir / LOSS_IMAGE).is_file():
            page.add_image(LOSS_IMAGE, "loss curves")
        self._add_epochs(page, newest, order)
        page.save()
        block = (epoch - 1) // EPOCHS_PER_PAGE
        self._write_block(block, blocks, refresh, order)
        i = blocks.index(block)
        for neighbour in blocks[max(i - 1, 0) : i] + blocks[i + 1 : i + 2]:
            if self._block_links.get(neighbour) != self._links(neighbour, blocks):
                self._write_block(neighbour, blocks, 0, order)
        self._page_written = True

    def _links(self, block: int, blocks: Sequence[int]) -> tuple[int | None, int | None]:
        """The (newer, older) blocks a block page links to."""
        i = blocks.index(block)
        return (blocks[i + 1] if i + 1 < len(blocks) else None, blocks[i - 1] if i > 0 else None)

    def _write_block(self, block: int, blocks: Sequence[int], refresh: int, order: Sequence[str]) -> None:
        k = EPOCHS_PER_PAGE
        newer, older = self._block_links[block] = self._links(block, blocks)
        page = self._page(f"Experiment name = {self.name}, epochs {block * k + 1}-{(block + 1) * k}", refresh)
        page.add_links([("newest (index)", "index.html"),
                        ("\u00ab newer", None if newer is None else self._block_page(newer)),
                        ("older \u00bb", None if older is None else self._block_page(older))])
        epochs = [e for e in range(block * k + 1, (block + 1) * k + 1) if e in self._known_epochs()]
        self._add_epochs(page, sorted(epochs, reverse=True), order)
        page.save(self._block_page(block))

    def _page(self, title: str, refresh: int) -> HTML:
        return HTML(self.web_dir, title, refresh=refresh)

    def _add_epochs(self, page: HTML, epochs: Sequence[int], order: Sequence[str]) -> None:
        rank = {label: i for i, label in enumerate(order)}
        for epoch in epochs:
            labels = sorted(self._known_epochs()[epoch], key=lambda x: (rank.get(x, len(rank)), x))
            files = [f"epoch{epoch:03d}_{label}.png" for label in labels]
            page.add_header(f"epoch [{epoch}]")
            page.add_images(files, labels, files, width=self.win_size)

    def _loss_history(self) -> LossHistory:
        """The logged losses of this run and, when resuming, of the runs before it (read once)."""
        if self._history is None:
            history = LossHistory.from_jsonl(self.jsonl_name) if self.jsonl_name.is_file() else LossHistory()
            # Points of this process are already in the log; an older log without epoch fractions is left out.
            self._history = history if history.x_label == "epoch" else LossHistory()
        return self._history

    # ---- losses ------------------------------------------------------------------------------------

    @_main_process_only
    def plot_current_losses(self, epoch: int, counter_ratio: float, losses: Mapping[str, float]) -> None:
        """Add a point at x = epoch + counter_ratio to the loss plot (visdom) and log the losses (wandb)."""
        if not self.plot_data["legend"]:
            self.plot_data["legend"] = list(losses)
        legend = self.plot_data["legend"]
        self.plot_data["X"].append(epoch + counter_ratio)
        self.plot_data["Y"].append([float(losses.get(k, float("nan"))) for k in legend])
        if self._history is not None:  # (loaded from the log lazily, after which new points come here)
            self._history.add(epoch + counter_ratio, losses)
        if self.visdom is not None:
            self.visdom.send(self._plot)
        if self.wandb is not None:
            self.wandb.log({k: float(v) for k, v in losses.items()} | {"epoch": epoch + counter_ratio})

    def _plot(self, vis: Any) -> None:
        """Send the whole curve to a new connection, afterwards only the points it does not have."""
        self._show_options(vis)
        legend = self.plot_data["legend"]
        connection, sent = self._plotted
        # Visdom keys windows by string: appending to the integer id finds no window and starts a new plot.
        win = str(self.display_id)
        fresh = connection != self.visdom.connections or not vis.win_exists(win)  # (or closed in the browser)
        start = 0 if fresh else sent
        x = np.stack([np.asarray(self.plot_data["X"][start:], dtype=float)] * len(legend), axis=1)
        y = np.asarray(self.plot_data["Y"][start:], dtype=float)
        opts = {"title": f"{self.name} loss over time", "legend": legend, "xlabel": "epoch", "ylabel": "loss"}
        if fresh:
            vis.line(X=x, Y=y, win=self.display_id, opts=opts)
        else:
            vis.line(X=x, Y=y, win=win, update="append")
        self._plotted = (self.visdom.connections, len(self.plot_data["X"]))

    @_main_process_only
    def print_current_losses(self, epoch: int, iters: int, losses: Mapping[str, float], t_comp: float, t_data: float,
                             total_iters: int | None = None, dataset_size: int | None = None) -> None:
        """Print the reference's loss line and append it to loss_log.txt, plus a JSON record to loss_log.jsonl.

        `iters`: samples seen this epoch; `t_comp`: compute seconds per sample; `t_data`: data-wait seconds;
        `dataset_size` (samples per epoch), when given, lets the curves be drawn over fractional epochs."""
        message = "(epoch: %d, iters: %d, time: %.3f, data: %.3f) " % (epoch, iters, t_comp, t_data)
        message += "".join("%s: %.3f " % (k, v) for k, v in losses.items())
        tqdm.write(message)  # stdout, without breaking a progress bar the driver may show
        if self.progress is not None:
            self.progress.show_losses(losses)
        self.log_name.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_name, "a", encoding="utf-8") as f:
            if not self._header_written:
                f.write("================ Training Loss (%s) ================\n" % time.strftime("%c"))
                self._header_written = True
            f.write(message + "\n")
        if self.use_html:
            self._loss_history()  # read the earlier log before this line joins it
        record: dict[str, Any] = {"epoch": epoch, "iters": iters}
        if total_iters is not None:
            record["total_iters"] = total_iters
        if dataset_size:
            record["dataset_size"] = dataset_size
        record |= {"time": t_comp, "data": t_data, "losses": {k: float(v) for k, v in losses.items()}}
        with open(self.jsonl_name, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self._step = total_iters if total_iters is not None else self._step + 1
        if self.tensorboard is not None:
            for name, value in losses.items():
                self.tensorboard.add_scalar(f"loss/{name}", float(value), self._step)

    @_main_process_only
    def close(self) -> None:
        """End of training: rewrite the pages without auto-refresh and finish a wandb run we started."""
        if self._page_written:
            self._write_pages(max(self._known_epochs()), refresh=0, order=self._order)
        if self.wandb is not None and self._owns_wandb_run:
            self.wandb.finish()
        if self.tensorboard is not None:
            self.tensorboard.close()


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


def _start_tensorboard(opt: Any, run_dir: Path) -> Any:
    """A SummaryWriter logging to checkpoints/NAME/tensorboard (the `tensorboard` package is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise I2IError("--use_tensorboard needs the tensorboard package: `pip install tensorboard`, "
                       "or drop --use_tensorboard") from None
    writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
    writer.add_text("options", "  \n".join(f"{k}: {v}" for k, v in sorted(vars(opt).items())))
    return writer


def save_test_images(webpage: ResultPages | HTML, visuals: Mapping[str, torch.Tensor], image_paths: Sequence[str],
                     aspect_ratio: float = 1.0, width: int = 256) -> None:
    """For every image i of the batch and every visual: write images/<stem>_<visual>.png (the reference's
    name) and images/<visual>/<stem>.png (a folder per visual, for metric tools), and add the input's row
    to `webpage` (the caller saves the page). `stem` is the file name of image_paths[i] without extension.

    With a reference-style `HTML` page, each input gets a header and a row of captioned images instead."""
    batches = {label: tensors2ims(t) for label, t in visuals.items()}
    image_dir = webpage.get_image_dir()
    for i, source in enumerate(image_paths):
        stem = Path(str(source)).stem
        names = []
        for label, ims in batches.items():
            name = f"{stem}_{label}.png"
            save_image(ims[i], image_dir / name, aspect_ratio=aspect_ratio)
            _link_or_copy(image_dir / name, image_dir / label / f"{stem}.png")
            names.append(name)
        if isinstance(webpage, ResultPages):
            webpage.add_row(stem, list(zip(batches, names)))
        else:
            webpage.add_header(stem)
            webpage.add_images(names, list(batches), names, width=width)


def _link_or_copy(source: Path, target: Path) -> None:
    """Make `target` the same file as `source`: a hard link (no second copy on disk) where the file
    system allows it, a copy elsewhere; replaced atomically when it exists."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
