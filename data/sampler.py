"""A data order that can be replayed and resumed mid-epoch.

`EpochOrder` (the loader's sampler) yields the indices of epoch E in an order drawn from (seed, E) alone, each
paired with an item seed drawn from (seed, E, index); `SeededItems` runs `dataset[index]` under that seed
(torch, NumPy, `random`). So random crops, flips and unaligned partners depend only on (seed, epoch, index):
the same in any DataLoader worker, leaving the training RNG untouched (the CPU state is restored after each
item, GPU generators are never seeded), and a resumed run skips trained batches unloaded (`EpochOrder.skip`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.utils.data

_SEED_RANGE = 2**63 - 1


def mix_seed(*parts: int) -> int:
    """A well-spread 63-bit seed from a few integers (NumPy's SeedSequence hashing)."""
    state = np.random.SeedSequence([int(p) % 2**64 for p in parts]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31 ^ int(state[1])) % _SEED_RANGE


def draw_seed() -> int:
    """A seed drawn from torch's global RNG: random per process, fixed after `torch.manual_seed`."""
    return int(torch.randint(0, _SEED_RANGE, (), dtype=torch.int64).item())


class EpochOrder(torch.utils.data.Sampler):
    """Yields `(item_seed, index)` for one epoch; `set_epoch` picks the epoch, `skip` resumes mid-epoch.

    inner -- an optional sampler giving the indices (e.g. DistributedSampler); it gets `set_epoch` too.
    """

    def __init__(self, length: int, shuffle: bool, seed: int, inner: torch.utils.data.Sampler | None = None) -> None:
        self.length = length
        self.shuffle = shuffle
        self.seed = int(seed)
        self.inner = inner
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def skip(self, count: int) -> None:
        """Start the next pass after its first `count` indices (a resumed run); later passes start at 0."""
        self._skip = max(0, int(count))

    def indices(self) -> list[int]:
        """This epoch's full order of dataset indices."""
        if self.inner is not None:
            return [int(i) for i in self.inner]
        if not self.shuffle:
            return list(range(self.length))
        generator = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
        return torch.randperm(self.length, generator=generator).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        start, self._skip = self._skip, 0
        for index in self.indices()[start:]:
            yield mix_seed(self.seed, self.epoch, index), index

    def __len__(self) -> int:
        total = len(self.inner) if self.inner is not None else self.length
        return max(0, total - self._skip)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the body with torch's CPU generator, NumPy and Python's `random` seeded by `seed`; restore all three
    after. GPU generators are neither seeded nor touched (`torch.manual_seed` would reseed every one of them and
    leave dropout, the gradient penalty's alpha and CUT's patch ids following the last loaded item's seed)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class SeededItems(torch.utils.data.Dataset):
    """`dataset[index]` under the item seed `EpochOrder` pairs with it; a plain index passes straight through."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            return self.dataset[key]
        seed, index = key
        with seeded(seed):
            return self.dataset[index]
