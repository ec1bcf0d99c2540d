"""The full training state `<tag>_state.pth`, so that a stopped run continues exactly where it was.

What it holds and when it is written: docs/troubleshooting.md ("How resuming works"); torchrun jobs:
docs/scaling.md. Tensors and plain containers only, so it loads with `torch.load(weights_only=True)`. It is
self-contained: a run killed between writing the network files and the state still resumes from the previous
state. What differs between processes (image pools, loss sums, RNG) is gathered into rank 0's file under `ranks`.

    state = resume_or_start(opt, model, dataset)      # --continue_train: the saved state (or weights only)
    for epoch in range(state.epoch, last_epoch + 1):
        epoch_iter, epoch_losses = state.begin_epoch(epoch)
        for data in dataset:
            ...; epoch_losses.add(state.watch(model.current_loss_tensors(), total_iters))
            state.save_latest(epoch, epoch_iter, total_iters)        # where train.py saves `latest`
        model.update_learning_rate(...); state.save_epoch(epoch, total_iters)
"""

from __future__ import annotations

import argparse
import json
import re
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from util.checkpoint import load_state_dict, move_to, prune_checkpoints
from util.collectives import broadcast_int, gather_to_main, is_distributed, is_main, rank, world_size
from util.errors import I2IError
from util.files import atomic_write, link_or_copy, remove_stale_temp_files

from .distributed import shard_samples
from .divergence import DivergenceGuard, check_finite_weights
from .meters import EpochLosses
from .seed import rng_state, set_rng_state

STATE_FORMAT = 1
#: options that shape the LR schedule: changing one on resume rebuilds the schedulers from the new values
SCHEDULE_OPTIONS = ("lr_policy", "lr", "n_epochs", "n_epochs_decay", "lr_decay_iters")


def i2i_version() -> str:
    try:
        return metadata.version("i2i")
    except metadata.PackageNotFoundError:
        text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
        match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
        return match.group(1) if match else "unknown"


class TrainingState:
    """Where a run is (epoch, samples into it, total_iters) and how it saves and restores everything else."""

    def __init__(self, opt: argparse.Namespace, model: Any, dataset: Any) -> None:
        self.opt, self.model, self.dataset = opt, model, dataset
        self.run_dir = Path(opt.checkpoints_dir) / opt.name
        self.epoch = int(opt.epoch_count)
        self.epoch_iter = 0
        self.total_iters = 0
        self.epoch_losses = EpochLosses()
        self.guard = DivergenceGuard(opt.nan_policy)
        self.resumed_from: Path | None = None
        self._skip_epoch: int | None = None  # the epoch whose first epoch_iter samples were trained already
        self.world_size = world_size()  # processes of the job: epoch_iter counts the samples of all of them

    # -- the loop ---------------------------------------------------------------------------------------

    def describe(self) -> str:
        if self.resumed_from is None:
            return f"starting at epoch {self.epoch}"
        into = f", {self.epoch_iter} samples into it" if self.epoch_iter else ""
        last = self.opt.n_epochs + self.opt.n_epochs_decay
        done = (f"; the run already finished its {last} epochs (raise --n_epochs or --n_epochs_decay to train on)"
                if self.epoch > last else "")
        return f"resuming from {self.resumed_from}: epoch {self.epoch}{into}, total_iters {self.total_iters}{done}"

    def begin_epoch(self, epoch: int) -> tuple[int, EpochLosses]:
        """Select the epoch's data order -> (samples already trained this epoch, the epoch's loss meter).

        Only the first epoch of a mid-epoch resume starts above 0; its first samples are skipped unloaded (under
        torchrun each process skips the batches of its own shard it trained: its share of the job's count)."""
        self.dataset.set_epoch(epoch)
        if epoch == self._skip_epoch and self.epoch_iter:
            self.dataset.skip(shard_samples(self.epoch_iter, self.world_size))
        else:
            self.epoch_iter, self.epoch_losses = 0, EpochLosses()
        self._skip_epoch = None
        return self.epoch_iter, self.epoch_losses

    def watch(self, losses: dict[str, torch.Tensor], total_iters: int) -> dict[str, torch.Tensor]:
        """Note non-finite losses on the device (no sync); returns `losses` for the epoch meter."""
        return self.guard.watch(losses, total_iters)  # type: ignore[return-value]

    def check(self) -> None:
        """Stop if a loss was NaN/Inf since the last check (call where losses are synced anyway: printing)."""
        self.guard.check()

    def save_latest(self, epoch: int, epoch_iter: int, total_iters: int, tag: str = "latest") -> None:
        """Mid-epoch checkpoint: `<tag>_net_*` files and the training state (also as `latest_state.pth`)."""
        self._save([tag], epoch, epoch_iter, total_iters)

    def save_epoch(self, epoch: int, total_iters: int) -> None:
        """End-of-epoch checkpoint (after the LR step): `latest` and `<epoch>` files; resumes at epoch + 1."""
        self._save(["latest", str(epoch)], epoch + 1, 0, total_iters)

    # -- saving -----------------------------------------------------------------------------------------

    def _save(self, tags: list[str], epoch: int, epoch_iter: int, total_iters: int) -> None:
        self.guard.check(f" (total_iters {total_iters})")
        own = self._own_part()
        ranks = gather_to_main(own) if is_distributed() else None  # what differs between ranks
        if not is_main():
            return  # torchrun: every rank holds the same weights; rank 0 alone copies and writes them
        model_state = self.model.training_state()
        check_finite_weights(model_state["nets"])
        state = {"format": STATE_FORMAT, "i2i_version": i2i_version(),
                 "options": json.dumps(vars(self.opt), sort_keys=True, default=str),
                 "epoch": epoch, "epoch_iter": epoch_iter, "total_iters": total_iters, "world_size": self.world_size,
                 **self.dataset.state_dict(), **model_state, **own}
        if ranks is not None:
            state["ranks"] = [own, *ranks[1:]]  # rank 0's part as the same tensors: torch.save stores them once
        for tag in tags:
            self.model.save_networks(tag)
        # The numbered file first, then `latest`: `latest_state.pth` only ever moves forward to a complete state.
        numbered = [t for t in tags if t != "latest"]
        first = self.run_dir / f"{(numbered or tags)[0]}_state.pth"
        atomic_write(first, lambda f: torch.save(state, f))
        for tag in {*tags, "latest"} - {first.name.removesuffix("_state.pth")}:
            link_or_copy(first, self.run_dir / f"{tag}_state.pth")
        if self.opt.keep_last > 0:
            prune_checkpoints(self.run_dir, self.opt.keep_last)

    def _own_part(self) -> dict[str, Any]:
        """This process's own share of the state: its image pools, epoch loss sums and random generators."""
        return {**self.model.training_state(shared=False),
                "epoch_losses": {"sums": move_to(self.epoch_losses.sums, "cpu"), "count": self.epoch_losses.count},
                "rng": rng_state()}

    # -- loading ----------------------------------------------------------------------------------------

    def load(self, path: Path) -> None:
        """Restore everything saved by `_save` (the model must be built and set up, optimizers included)."""
        state = load_state_dict(path)
        if state.get("format") != STATE_FORMAT:
            raise I2IError(f"{path} is not an i2i training state of format {STATE_FORMAT} (found "
                           f"{state.get('format')!r}). Delete it to resume from the network weights only.")
        self.epoch, self.epoch_iter, self.total_iters = state["epoch"], state["epoch_iter"], state["total_iters"]
        saved = int(state.get("world_size", 1))
        if self.epoch_iter and saved != self.world_size:  # the rest of the epoch cannot follow the same shards
            warnings.warn(f"{path} was saved {self.epoch_iter} samples into epoch {self.epoch} by {saved} "
                          f"process(es) and resumes with {self.world_size}: the rest of that epoch is split "
                          "afresh, so some of its samples may be trained twice and others not at all.", stacklevel=2)
        if len(state.get("ranks") or []) == self.world_size > 1:
            state |= state["ranks"][rank()]  # this rank's own pools, loss sums and generators
        self.model.load_training_state(state, path)
        self._follow_new_schedule(json.loads(state["options"]), state["epoch"])
        self.dataset.load_state_dict(state)
        self._skip_epoch = self.epoch
        self.epoch_losses = EpochLosses()
        self.epoch_losses.sums = move_to(state["epoch_losses"]["sums"], self.model.device)
        self.epoch_losses.count = state["epoch_losses"]["count"]
        trim_loss_log(self.run_dir / "loss_log.jsonl", self.total_iters)
        set_rng_state(state["rng"])
        self.resumed_from = path

    def _follow_new_schedule(self, saved: dict[str, Any], epoch: int) -> None:
        """If a schedule option changed since the state was saved, rebuild the schedulers from the new values."""
        changed = [k for k in SCHEDULE_OPTIONS if k in saved and saved[k] != vars(self.opt)[k]]
        if changed:
            self.model.restart_schedules(epoch)
            warnings.warn(f"resuming with changed {', '.join('--' + k for k in changed)}: the learning-rate "
                          f"schedule follows the new values from epoch {epoch} on.", stacklevel=2)


def resume_or_start(opt: argparse.Namespace, model: Any, dataset: Any) -> TrainingState:
    """The run's `TrainingState`: restored from `<epoch>_state.pth` with `--continue_train`, else fresh.

    Call after `model.setup(opt)` (which creates the schedulers and, with `--continue_train`, loads the weights,
    all that a run without a state file resumes from)."""
    state = TrainingState(opt, model, dataset)
    state.guard.install(model.optimizers)
    share_data_seed(dataset)
    remove_stale_temp_files(state.run_dir)
    tag = f"iter_{opt.load_iter}" if opt.load_iter > 0 else str(opt.epoch)
    path = state.run_dir / f"{tag}_state.pth"
    if not opt.continue_train:
        return state
    if not path.is_file():
        warnings.warn(f"no training state {path}: resuming from the weights {tag}_net_*.pth only, at --epoch_count "
                      f"{opt.epoch_count}; optimizer moments, LR schedule, image pools and RNG start afresh "
                      "(the reference's resume).", stacklevel=2)
        return state
    state.load(path)
    return state


def share_data_seed(dataset: Any) -> None:
    """Under torchrun, give every process rank 0's data seed (without --seed each drew its own): rank 0's is the
    one a training state saves, so a resumed job augments every rank's items as the stopped one did."""
    if is_distributed():
        dataset.load_state_dict({"data_seed": broadcast_int(dataset.state_dict()["data_seed"])})


def trim_loss_log(path: Path, total_iters: int) -> None:
    """Drop records past `total_iters` (steps a killed run logged after its last state) and torn lines."""
    if not path.is_file():
        return
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            dropped += 1
            continue
        if record.get("total_iters", 0) > total_iters:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        atomic_write(path, lambda f: f.write("".join(k + "\n" for k in kept)), mode="w")
