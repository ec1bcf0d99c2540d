"""Learning-rate policies (`--lr_policy`) with one contract: step once at the END of every epoch.

So epoch E (1-based) trains at `lr * factor(E)`, including the first epoch of a resumed run (`--epoch_count k`
trains epoch k at factor(k), as an uninterrupted run would). Each policy's docstring says its schedule; how
they differ from the reference's: docs/differences.md. The epoch-factor policies are LambdaLR with small
picklable callables, so `scheduler.state_dict()` round-trips. A plugin adds a policy by registering a
`build(optimizer, opt) -> LRScheduler` function.
"""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau

from util.errors import I2IError
from util.registry import Registry

LR_POLICIES = Registry("LR policy", option="lr_policy")


class EpochFactor:
    """Multiplier of the initial LR as a function of the 1-based epoch; callable as a LambdaLR `lr_lambda`.

    LambdaLR calls it with the number of scheduler steps taken so far; since the scheduler is stepped at
    the end of each epoch and training starts at `epoch_count`, that step count maps to an epoch.
    Plain attributes only, so LambdaLR's state_dict stores and restores them.
    """

    def __init__(self, epoch_count: int = 1) -> None:
        self.epoch_count = epoch_count

    def __call__(self, steps: int) -> float:
        return self.factor(self.epoch_count + steps)

    def factor(self, epoch: int) -> float:
        raise NotImplementedError


class LinearDecay(EpochFactor):
    """1 for the first `n_epochs` epochs, then linearly down to 1/(n_epochs_decay+1) at the last epoch."""

    def __init__(self, n_epochs: int, n_epochs_decay: int, epoch_count: int = 1) -> None:
        super().__init__(epoch_count)
        self.n_epochs = n_epochs
        self.n_epochs_decay = n_epochs_decay

    def factor(self, epoch: int) -> float:
        epoch = min(epoch, self.n_epochs + self.n_epochs_decay)  # past the end: hold the last value
        return 1.0 - max(0, epoch - self.n_epochs) / (self.n_epochs_decay + 1)


class StepDecay(EpochFactor):
    """x`gamma` after every `step_size` epochs: epochs 1..step_size at full LR, the next step_size at gamma..."""

    def __init__(self, step_size: int, gamma: float = 0.1, epoch_count: int = 1) -> None:
        super().__init__(epoch_count)
        self.step_size = step_size
        self.gamma = gamma

    def factor(self, epoch: int) -> float:
        return self.gamma ** ((max(epoch, 1) - 1) // self.step_size)


class CosineDecay(EpochFactor):
    """Half a cosine from 1 at epoch 1 towards 0 at epoch total+1, so the last epoch still trains (> 0)."""

    def __init__(self, total_epochs: int, epoch_count: int = 1) -> None:
        super().__init__(epoch_count)
        self.total_epochs = total_epochs

    def factor(self, epoch: int) -> float:
        epoch = min(max(epoch, 1), self.total_epochs)  # past the end: hold the last value
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / self.total_epochs))


def _total_epochs(opt: Any) -> int:
    total = opt.n_epochs + opt.n_epochs_decay
    if opt.n_epochs < 0 or opt.n_epochs_decay < 0 or total < 1:
        raise I2IError(
            f"--n_epochs {opt.n_epochs} and --n_epochs_decay {opt.n_epochs_decay} must be >= 0 and add up to at "
            "least 1 epoch. Fix those options."
        )
    return total


@LR_POLICIES.register("linear")
def linear_policy(optimizer: Optimizer, opt: Any) -> LRScheduler:
    """Constant LR for --n_epochs, then linear decay over --n_epochs_decay (the last epoch still trains)."""
    _total_epochs(opt)
    return LambdaLR(optimizer, LinearDecay(opt.n_epochs, opt.n_epochs_decay, opt.epoch_count))


@LR_POLICIES.register("step")
def step_policy(optimizer: Optimizer, opt: Any) -> LRScheduler:
    """LR x0.1 every --lr_decay_iters epochs (the option counts epochs, despite its name)."""
    if opt.lr_decay_iters < 1:
        raise I2IError(f"--lr_decay_iters {opt.lr_decay_iters} must be >= 1 (epochs) for --lr_policy step.")
    return LambdaLR(optimizer, StepDecay(opt.lr_decay_iters, 0.1, opt.epoch_count))


@LR_POLICIES.register("cosine")
def cosine_policy(optimizer: Optimizer, opt: Any) -> LRScheduler:
    """Half-cosine decay over all --n_epochs + --n_epochs_decay epochs, ending small but above 0."""
    return LambdaLR(optimizer, CosineDecay(_total_epochs(opt), opt.epoch_count))


@LR_POLICIES.register("plateau")
def plateau_policy(optimizer: Optimizer, opt: Any) -> LRScheduler:
    """LR x0.2 when the per-epoch metric (mean generator loss) has not improved by 1% for 5 epochs."""
    return ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)


def build_scheduler(optimizer: Optimizer, opt: Any) -> LRScheduler:
    """The scheduler for `opt.lr_policy`, positioned so the next epoch (`opt.epoch_count`) trains at its LR;
    step it once at the end of every epoch with `step_scheduler`."""
    return LR_POLICIES.get(opt.lr_policy)(optimizer, opt)


def needs_metric(scheduler: LRScheduler) -> bool:
    """True when `step_scheduler` needs a metric for this scheduler (plateau)."""
    return isinstance(scheduler, ReduceLROnPlateau)


def step_scheduler(scheduler: LRScheduler, metric: float | None = None) -> None:
    """End-of-epoch step. `metric` (lower is better) is required by plateau and ignored by the others."""
    if needs_metric(scheduler):
        if metric is None:
            raise ValueError(
                "the plateau LR policy needs a metric each epoch: call step_scheduler(scheduler, metric) with "
                "the epoch's mean generator loss (or an evaluation metric)"
            )
        scheduler.step(float(metric))
    else:
        scheduler.step()


def current_lr(optimizer: Optimizer) -> float:
    """The learning rate of the optimizer's first parameter group (all groups share one policy)."""
    return float(optimizer.param_groups[0]["lr"])
