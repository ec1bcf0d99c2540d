"""Activation checkpointing (`--checkpoint_activations`): recompute activations in the backward pass instead of
storing them, trading about one extra forward pass of the checkpointed parts for their activation memory.

A network opts in per block: a `CheckpointableBlock` runs its body through `checkpoint(...)` (or
`checkpoint_sequence(...)`) when `checkpointing(self)` says so. Which blocks do: the ResNet generators (their
full-resolution stem and head as one segment each, networks/resnet.py), their residual blocks (three to a segment)
and every U-Net level's own layers (networks/unet.py). The switch is a plain
attribute set by `set_activation_checkpointing`, never a parameter or buffer, so the state_dict keys (and the
checkpoints written and read) are exactly those without it. It acts only while training (module in train mode and
autograd recording); evaluation, `torch.no_grad()` and inference run the plain forward.

The recomputation uses PyTorch's non-reentrant checkpoint, which replays the forward under the autocast state
and the RNG state of the first pass, so dropout masks, --amp and --channels_last give what they give without it.
The replay would also update batch norm's running statistics a second time: the buffers of the checkpointed
layers are put back as the first pass left them once the replay is done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.utils.checkpoint
from torch import nn


class CheckpointableBlock(nn.Module):
    """Base of the blocks that can recompute their activations; off unless `set_activation_checkpointing` turns
    it on for the instance."""

    checkpoint_activations = False  # class default; an instance attribute when switched on (not in state_dict)


def checkpointing(module: CheckpointableBlock) -> bool:
    """Whether `module` should checkpoint this call: switched on, in train mode, and autograd recording."""
    return module.checkpoint_activations and module.training and torch.is_grad_enabled()


def checkpoint(function: Callable[..., torch.Tensor], *args: Any, modules: Iterable[nn.Module]) -> torch.Tensor:
    """`function(*args)`, its intermediate activations recomputed in the backward pass (non-reentrant);
    `modules`: the layers `function` runs, whose buffers (running statistics) the replay must leave unchanged."""
    modules = list(modules)
    return torch.utils.checkpoint.checkpoint(
        function, *args, use_reentrant=False,
        context_fn=lambda: (contextlib.nullcontext(), _buffers_kept(modules)))


@contextlib.contextmanager
def _buffers_kept(modules: list[nn.Module]) -> Iterator[None]:
    """Run the replay, then restore every buffer of `modules` (batch norm's running mean/var and batch count)."""
    buffers = [b for m in modules for b in m.buffers()]
    saved = [b.clone() for b in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(buffers, saved):
                buffer.copy_(value)


def checkpoint_sequence(layers: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """`layers` applied in order to `x` as one checkpointed segment. The segment must not open with an in-place op:
    the replay would apply it to its own output."""
    if not layers:
        return x
    assert not getattr(layers[0], "inplace", False), "an in-place op must not open a checkpointed segment"

    def run(y: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            y = layer(y)
        return y

    return checkpoint(run, x, modules=layers)


def set_activation_checkpointing(net: nn.Module) -> int:
    """Switch activation checkpointing on in every block of `net` that supports it; returns how many."""
    blocks = [m for m in net.modules() if isinstance(m, CheckpointableBlock)]
    for block in blocks:
        block.checkpoint_activations = True
    return len(blocks)
