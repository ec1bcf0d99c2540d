"""The training page, `checkpoints/NAME/web/`: the loss curves and each epoch's visuals, newest first.

index.html holds the curves and the newest `EPOCHS_PER_PAGE` epochs. Block b (epochs b*K+1 .. (b+1)*K) also has a
page of its own, linked newer/older; a save rewrites index.html, its epoch's block page, and a neighbouring block
page only when its links must change, so its cost does not grow with the number of epochs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from util.html import HTML

from .plot_losses import LossHistory, render_losses

EPOCHS_PER_PAGE = 20  # epochs on index.html and on each older page of the training page
LOSS_IMAGE = "loss_curves.png"  # inside web/images/
_EPOCH_IMAGE = re.compile(r"^epoch(\d+)_(.+)\.png$")


class TrainingPage:
    """The pages of one run folder; `write(epoch, ...)` after new images of `epoch` were saved."""

    def __init__(self, run_dir: Path, name: str, win_size: int) -> None:
        self.name, self.win_size = name, win_size
        self.web_dir = run_dir / "web"
        self.img_dir = self.web_dir / "images"
        self.jsonl_name = run_dir / "loss_log.jsonl"
        self.written = False
        self._epochs: dict[int, list[str]] | None = None  # epoch -> visual names with images on disk
        self._block_links: dict[int, tuple[int | None, int | None]] = {}  # block page -> links it was written with
        self._history: LossHistory | None = None  # for the loss curves, read from the log once

    def image_path(self, epoch: int, label: str) -> Path:
        return self.img_dir / f"epoch{epoch:03d}_{label}.png"

    def add_epoch(self, epoch: int, labels: list[str]) -> None:
        self._known_epochs()[epoch] = labels

    def newest_epoch(self) -> int:
        return max(self._known_epochs())

    def _known_epochs(self) -> dict[int, list[str]]:
        """Epochs with images on disk: one folder scan per page, then kept up to date in memory."""
        if self._epochs is None:
            self._epochs = {}
            if self.img_dir.is_dir():
                for path in sorted(self.img_dir.iterdir()):
                    match = _EPOCH_IMAGE.match(path.name)
                    if match:
                        self._epochs.setdefault(int(match.group(1)), []).append(match.group(2))
        return self._epochs

    @staticmethod
    def _block_page(block: int) -> str:
        k = EPOCHS_PER_PAGE
        return f"epochs_{block * k + 1:03d}-{(block + 1) * k:03d}.html"

    def write(self, epoch: int, refresh: int, order: Sequence[str] = ()) -> None:
        if self._history is not None or self.jsonl_name.is_file():
            render_losses(self.loss_history(), self.img_dir / LOSS_IMAGE, title=f"{self.name}: losses")
        epochs = self._known_epochs()
        newest = sorted(epochs, reverse=True)[:EPOCHS_PER_PAGE]
        blocks = sorted({(e - 1) // EPOCHS_PER_PAGE for e in epochs})
        older = [b for b in blocks if b * EPOCHS_PER_PAGE + 1 < min(newest)]
        page = HTML(self.web_dir, f"Experiment name = {self.name}", refresh=refresh)
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
        self.written = True

    def _links(self, block: int, blocks: Sequence[int]) -> tuple[int | None, int | None]:
        """The (newer, older) blocks a block page links to."""
        i = blocks.index(block)
        return (blocks[i + 1] if i + 1 < len(blocks) else None, blocks[i - 1] if i > 0 else None)

    def _write_block(self, block: int, blocks: Sequence[int], refresh: int, order: Sequence[str]) -> None:
        k = EPOCHS_PER_PAGE
        newer, older = self._block_links[block] = self._links(block, blocks)
        page = HTML(self.web_dir, f"Experiment name = {self.name}, epochs {block * k + 1}-{(block + 1) * k}",
                    refresh=refresh)
        page.add_links([("newest (index)", "index.html"),
                        ("\u00ab newer", None if newer is None else self._block_page(newer)),
                        ("older \u00bb", None if older is None else self._block_page(older))])
        epochs = [e for e in range(block * k + 1, (block + 1) * k + 1) if e in self._known_epochs()]
        self._add_epochs(page, sorted(epochs, reverse=True), order)
        page.save(self._block_page(block))

    def _add_epochs(self, page: HTML, epochs: Sequence[int], order: Sequence[str]) -> None:
        rank = {label: i for i, label in enumerate(order)}
        for epoch in epochs:
            labels = sorted(self._known_epochs()[epoch], key=lambda x: (rank.get(x, len(rank)), x))
            files = [f"epoch{epoch:03d}_{label}.png" for label in labels]
            page.add_header(f"epoch [{epoch}]")
            page.add_images(files, labels, files, width=self.win_size)

    def loss_history(self) -> LossHistory:
        """The logged losses of this run and, when resuming, of the runs before it (read once)."""
        if self._history is None:
            history = LossHistory.from_jsonl(self.jsonl_name) if self.jsonl_name.is_file() else LossHistory()
            # Points of this process are already in the log; an older log without epoch fractions is left out.
            self._history = history if history.x_label == "epoch" else LossHistory()
        return self._history
