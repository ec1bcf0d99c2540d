"""Dataset modes (`--dataset_mode`), preprocessing and the embedded demo data.

A mode `foo` is a `BaseDataset` subclass registered with `@DATASETS.register("foo")`, or class `FooDataset` in
`data/foo_dataset.py` (the reference's convention); start from `data/template_dataset.py` and see
docs/plugins.md ("Writing a dataset mode"). `create_dataset(opt)` builds it and wraps it in a `DatasetLoader`.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch.utils.data

from util.errors import I2IError
from util.registry import Registry

from .base_dataset import PREPROCESS_MODES, BaseDataset
from .batches import CollateBatch, worker_message
from .sampler import EpochOrder, SeededItems, draw_seed

DATASETS = Registry("dataset mode", base=BaseDataset, option="dataset_mode", legacy=("data", "dataset"))

# Built-in modes register themselves on import; explicit imports keep the list visible and greppable.
from . import aligned_dataset, single_dataset, template_dataset, unaligned_dataset  # noqa: E402
from . import colorization_dataset  # noqa: E402

SamplerArg = torch.utils.data.Sampler | Callable[[torch.utils.data.Dataset], torch.utils.data.Sampler] | None


class DatasetLoader:
    """A torch DataLoader over one dataset mode, capped at `--max_dataset_size` samples per epoch (over all
    processes under torchrun). len(loader) is the number of *samples*, as the reference's loader reports it."""

    def __init__(self, opt: argparse.Namespace, dataset: torch.utils.data.Dataset, sampler: SamplerArg = None) -> None:
        self.opt = opt
        self.dataset = dataset
        if sampler is not None and not isinstance(sampler, torch.utils.data.Sampler):
            sampler = sampler(dataset)  # a factory, e.g. lambda ds: DistributedSampler(ds)
        self.sampler = sampler
        self.max_dataset_size = math.inf if opt.max_dataset_size is None else opt.max_dataset_size
        # Under torchrun the cap counts the samples of all processes, as the frequencies do: each its share.
        replicas = getattr(sampler, "num_replicas", 1)
        self.pass_limit = math.ceil(self.max_dataset_size / replicas) if math.isfinite(self.max_dataset_size) \
            else math.inf
        # The order and each item's augmentation follow from one seed (data/sampler.py): replayable, resumable.
        self.order = EpochOrder(len(dataset), shuffle=not opt.serial_batches,
                                seed=draw_seed() if opt.seed is None else opt.seed, inner=sampler)
        self._epoch_given, self._passes, self._skip = False, 0, 0
        # More loader processes than cores only competes with the training step for the CPU.
        workers = min(int(opt.num_threads), os.cpu_count() or 1)
        self.dataloader = torch.utils.data.DataLoader(
            SeededItems(dataset),
            batch_size=opt.batch_size,
            sampler=self.order,
            generator=torch.Generator(),  # the loader's own seed draws leave the training RNG alone
            collate_fn=CollateBatch.from_options(opt),  # one-line errors for mixed sizes, wrong --input_nc
            num_workers=workers,
            drop_last=False,
            persistent_workers=workers > 0,  # no re-forking at every epoch
            pin_memory=bool(opt.gpu_ids),
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's order (also forwarded to a sampler with `set_epoch`, e.g. DistributedSampler).
        Without calls, each pass over the loader counts as the next epoch."""
        self._epoch_given = True
        self.order.set_epoch(epoch)

    def state_dict(self) -> dict[str, int | None]:
        """The seeds of the data order: item augmentations and, under torchrun, the shards' shuffle (which a job
        without --seed draws afresh at each start), so a resumed epoch goes on in the order it began."""
        sampler_seed = getattr(self.sampler, "seed", None)
        return {"data_seed": int(self.order.seed), "sampler_seed": None if sampler_seed is None else int(sampler_seed)}

    def load_state_dict(self, state: dict[str, int | None]) -> None:
        if state.get("data_seed") is not None:
            self.order.seed = int(state["data_seed"])
        if state.get("sampler_seed") is not None and hasattr(self.sampler, "seed"):
            self.sampler.seed = int(state["sampler_seed"])

    def skip(self, samples: int) -> None:
        """Start the next pass after its first `samples` samples, without loading them (a resumed run)."""
        self._skip = max(0, int(samples))

    def __len__(self) -> int:
        return int(min(len(self.dataset), self.max_dataset_size))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self._epoch_given:
            self.order.set_epoch(self._passes)
        self._passes += 1
        skipped, self._skip = self._skip, 0
        self.order.skip(skipped)
        try:
            for i, batch in enumerate(self.dataloader):
                if skipped + i * self.opt.batch_size >= self.pass_limit:
                    break
                yield batch
        except I2IError as exc:  # from a loader worker it arrives wrapped in the worker's traceback
            raise worker_message(exc) from None


def create_dataset(opt: argparse.Namespace, sampler: SamplerArg = None) -> DatasetLoader:
    """Build the dataset of `--dataset_mode` and wrap it in a `DatasetLoader`; `sampler`: a Sampler, or a function
    dataset -> Sampler (for DistributedSampler), which replaces the shuffle."""
    dataset = DATASETS.get(opt.dataset_mode)(opt)
    return DatasetLoader(opt, dataset, sampler)


__all__ = ["DATASETS", "PREPROCESS_MODES", "BaseDataset", "DatasetLoader", "create_dataset"]
