"""Stopping (or skipping) when training diverges: a NaN or Inf loss or gradient.

`--nan_policy stop`: `watch` records on the device (no sync) the first sample count at which each loss was not
finite; `check` reads it where losses are synced anyway (printing, before every save), so a diverged model
never overwrites a good checkpoint. `--nan_policy skip` drops optimizer steps with non-finite gradients (one
sync per step). docs/troubleshooting.md ("How resuming works") has the details.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import torch

from util.errors import I2IError

NAN_POLICIES: tuple[str, ...] = ("stop", "skip")


class DivergenceGuard:
    """Watches the losses of every iteration and the gradients of every optimizer step (see module docstring)."""

    def __init__(self, policy: str = "stop") -> None:
        if policy not in NAN_POLICIES:
            raise I2IError(f"unknown --nan_policy '{policy}'. Valid values: {', '.join(NAN_POLICIES)}.")
        self.policy = policy
        self.names: list[str] = []
        self.first_bad: torch.Tensor | None = None  # per loss: first total_iters with a non-finite value, or -1
        self.first_value: torch.Tensor | None = None
        self.skipped_steps = 0
        self._reported_skips = 0

    def watch(self, losses: Mapping[str, torch.Tensor], total_iters: int) -> Mapping[str, torch.Tensor]:
        """Record which losses are not finite at `total_iters`, on their device (no sync); returns `losses`."""
        if not losses:
            return losses
        values = torch.stack([torch.as_tensor(v).detach().float().reshape(()) for v in losses.values()])
        if self.first_bad is None or list(losses) != self.names:
            self.names = list(losses)
            self.first_bad = torch.full(values.shape, -1, dtype=torch.int64, device=values.device)
            self.first_value = torch.zeros_like(values)
        new = ~torch.isfinite(values) & (self.first_bad < 0)
        self.first_bad = torch.where(new, torch.full_like(self.first_bad, total_iters), self.first_bad)
        self.first_value = torch.where(new, values, self.first_value)
        return losses

    def check(self, where: str = "") -> None:
        """Raise `I2IError` (policy stop) if a watched loss was not finite; policy skip only reports skips."""
        if self.skipped_steps > self._reported_skips:
            warnings.warn(f"skipped {self.skipped_steps} optimizer steps with non-finite gradients so far "
                          "(--nan_policy skip)", stacklevel=2)
            self._reported_skips = self.skipped_steps
        if self.policy != "stop" or self.first_bad is None:
            return
        first = self.first_bad.tolist()
        bad = [(iters, i) for i, iters in enumerate(first) if iters >= 0]
        if not bad:
            return
        iters, i = min(bad)
        value = float(self.first_value[i])  # type: ignore[index]
        others = [self.names[j] for _, j in sorted(bad) if j != i]
        also = f" (then also {', '.join(others)})" if others else ""
        raise I2IError(
            f"training diverged: loss {self.names[i]} is {value} at total_iters {iters}{also}. Stopped before "
            f"saving{where}; the last good checkpoint is kept. Resume from it with --continue_train and a lower "
            "--lr (or another --gan_mode), or pass --nan_policy skip to skip such steps."
        )

    def install(self, optimizers: list[torch.optim.Optimizer]) -> None:
        """With policy skip: make each optimizer drop a step whose gradients are not all finite."""
        if self.policy != "skip":
            return
        for optimizer in optimizers:
            optimizer.register_step_pre_hook(self._skip_non_finite)

    def _skip_non_finite(self, optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        finite = torch.stack([torch.isfinite(g).all() for g in grads]).all()
        if not bool(finite):  # the one sync per step that skipping costs
            for group in optimizer.param_groups:
                for p in group["params"]:
                    p.grad = None  # optimizers leave parameters without a gradient untouched
            self.skipped_steps += 1


def check_finite_weights(state_dicts: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
    """Raise `I2IError` if a network's floating-point weights hold NaN or Inf (nothing is saved then)."""
    for net, state in state_dicts.items():
        for key, value in state.items():
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise I2IError(
                    f"training diverged: net {net} has non-finite weights ({key}). Stopped before saving; the last "
                    "good checkpoint is kept. Resume from it with --continue_train and a lower --lr, or pass "
                    "--nan_policy skip."
                )
