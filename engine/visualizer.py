"""Training feedback: the loss log (`loss_log.txt` in the reference's format, and `loss_log.jsonl`), the training
page (`engine.training_page`), Visdom (`engine.visdom_display`), wandb and TensorBoard. Under torchrun only
rank 0 reports.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from util.collectives import is_main
from util.errors import I2IError
from util.images import save_image, tensor2im

from .training_page import EPOCHS_PER_PAGE, TrainingPage  # noqa: F401  (EPOCHS_PER_PAGE: the page size)
from .visdom_display import VisdomDisplay


def _main_process_only(method: Callable[..., None]) -> Callable[..., None]:
    """Under torchrun only rank 0 prints, logs, writes pages and talks to visdom/wandb; elsewhere a no-op."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        if is_main():
            method(self, *args, **kwargs)

    return wrapper


class Visualizer:
    """What train.py reports through; `progress` (an optional `TrainProgress`) gets the current losses too."""

    def __init__(self, opt: Any, progress: Any = None) -> None:
        self.opt = opt
        self.progress = progress
        self.use_html = opt.isTrain and not opt.no_html
        run_dir = Path(opt.checkpoints_dir) / opt.name
        self.log_name = run_dir / "loss_log.txt"
        self.jsonl_name = run_dir / "loss_log.jsonl"
        self.page = TrainingPage(run_dir, opt.name, opt.display_winsize)
        self.visdom = VisdomDisplay(opt) if opt.display_id > 0 else None
        use_wandb = opt.use_wandb and is_main()  # torchrun: rank 0 reports for the job
        self.wandb, self._owns_wandb_run = _start_wandb(opt) if use_wandb else (None, False)
        use_tensorboard = opt.use_tensorboard and is_main()
        self.tensorboard = _start_tensorboard(opt, run_dir) if use_tensorboard else None
        self.plot_data: dict[str, list] = {"X": [], "Y": [], "legend": []}
        self._header_written = False
        self._saved_epoch: int | None = None  # the reference's `saved` flag, kept per epoch
        self._order: list[str] = []  # the visuals in the model's order, for the page's columns
        self._step = 0  # TensorBoard's global step: samples seen, as last reported

    def reset(self) -> None:
        """Forget that images were saved this epoch (the next display saves them again)."""
        self._saved_epoch = None

    @_main_process_only
    def display_current_results(self, visuals: Mapping[str, torch.Tensor], epoch: int, save_result: bool) -> None:
        """Show the first image of each visual in visdom/wandb/TensorBoard; write them and the web page when
        `save_result` is set or nothing was saved yet this epoch."""
        save = self.use_html and (save_result or self._saved_epoch != epoch)
        if not (save or self.visdom or self.wandb or self.tensorboard):
            return  # spare the device-to-host copies
        images = {label: tensor2im(t) for label, t in visuals.items()}
        if self.visdom is not None:
            self.visdom.show_images(images)
        if self.wandb is not None:
            self.wandb.log({label: self.wandb.Image(im) for label, im in images.items()} | {"epoch": epoch})
        if self.tensorboard is not None:
            for label, im in images.items():
                self.tensorboard.add_image(f"visuals/{label}", im, self._step, dataformats="HWC")
        if save:
            self._saved_epoch = epoch
            for label, im in images.items():
                save_image(im, self.page.image_path(epoch, label))
            self._order = list(images)
            self.page.add_epoch(epoch, self._order)
            self.page.write(epoch, refresh=1, order=self._order)

    @_main_process_only
    def plot_current_losses(self, epoch: int, counter_ratio: float, losses: Mapping[str, float]) -> None:
        """Add a point at x = epoch + counter_ratio to the loss plot (visdom) and log the losses (wandb)."""
        if not self.plot_data["legend"]:
            self.plot_data["legend"] = list(losses)
        legend = self.plot_data["legend"]
        self.plot_data["X"].append(epoch + counter_ratio)
        self.plot_data["Y"].append([float(losses.get(k, float("nan"))) for k in legend])
        if self.use_html:
            self.page.loss_history().add(epoch + counter_ratio, losses)
        if self.visdom is not None:
            self.visdom.plot(self.plot_data)
        if self.wandb is not None:
            self.wandb.log({k: float(v) for k, v in losses.items()} | {"epoch": epoch + counter_ratio})

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
            self.page.loss_history()  # read the earlier log before this line joins it
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
        if self.page.written:
            self.page.write(self.page.newest_epoch(), refresh=0, order=self._order)
        if self.wandb is not None and self._owns_wandb_run:
            self.wandb.finish()
        if self.tensorboard is not None:
            self.tensorboard.close()


def _start_wandb(opt: Any) -> tuple[Any, bool]:
    """Import wandb and join the active run or start one (-> module, whether we started the run)."""
    try:
        import wandb
    except ImportError:
        raise I2IError("--use_wandb needs the wandb package: `pip install wandb`, or drop --use_wandb") from None
    if wandb.run is not None:
        return wandb, False
    project = opt.wandb_project_name or "CycleGAN-and-pix2pix"
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
