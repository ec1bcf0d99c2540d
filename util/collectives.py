"""torch.distributed primitives that know no model: this process's rank, small broadcasts, and the gradient
averaging that runs inside every optimizer step of a torchrun job.

Networks are not wrapped in DistributedDataParallel (a GAN step calls a network several times per backward and
freezes D while G learns): a process-wide optimizer step pre-hook averages each optimizer's gradients in flat
buckets instead, so any model works, plugins included. Why and how: docs/scaling.md ("How gradients are
shared"). The job itself is set up by `engine.distributed.init_distributed`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from .errors import I2IError

DEFAULT_BUCKET_MB = 25.0


def is_distributed() -> bool:
    """True once `engine.distributed.init_distributed` has joined a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank: from the process group, or torchrun's RANK before it exists; 0 without torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """Whether this process writes files (logs, pages, checkpoints, options) and talks to Visdom: rank 0 only."""
    return rank() == 0


# -- collectives ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _collective(what: str) -> Iterator[None]:
    """Turn a failed collective (a peer process died or timed out) into one clear line for this rank."""
    try:
        yield
    except (RuntimeError, dist.DistError) as exc:
        raise I2IError(f"rank {rank()}: {what} failed ({str(exc).splitlines()[0] if str(exc) else exc}); another "
                       "process of the job stopped or timed out first: its own message, above, says why.") from exc


def broadcast_int(value: int) -> int:
    """Rank 0's `value` on every rank."""
    box = torch.tensor([value], dtype=torch.int64, device=_collective_device())
    with _collective("broadcasting a seed"):
        dist.broadcast(box, src=0)
    return int(box.item())


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's `obj` (picklable; tensors on the CPU), as a list on rank 0 and None elsewhere; `[obj]` without
    torchrun. All ranks must call it."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] | None = [None] * world_size() if is_main() else None
    with _collective("gathering the training state"):
        dist.gather_object(obj, gathered, dst=0)
    return gathered


def _optional_value(value: float | None) -> torch.Tensor:
    """[value, 1], or [0, 0] for None: summed over ranks, the second entry counts the ranks that had a value."""
    return torch.tensor([0.0 if value is None else float(value), value is not None], dtype=torch.float64,
                        device=_collective_device())


def broadcast_float(value: float | None) -> float | None:
    """Rank 0's `value` (None included) on every rank; `value` itself without torchrun."""
    if not is_distributed():
        return value
    box = _optional_value(value)
    with _collective("broadcasting a metric"):
        dist.broadcast(box, src=0)
    return float(box[0]) if box[1] else None


def mean_float(value: float | None) -> float | None:
    """The mean of `value` over the ranks that have one (None where none has); `value` itself without torchrun."""
    if not is_distributed():
        return value
    box = _optional_value(value)
    with _collective("averaging a metric"):
        dist.all_reduce(box)
    return float(box[0] / box[1]) if box[1] else None


def _collective_device() -> torch.device:
    """Where small bookkeeping tensors must live for the backend: the current GPU for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _buckets(tensors: list[torch.Tensor], bucket_bytes: int) -> Iterator[list[torch.Tensor]]:
    """Consecutive runs of same-dtype, same-device tensors of at most `bucket_bytes` (at least one tensor each)."""
    bucket: list[torch.Tensor] = []
    size = 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        if bucket and (size + nbytes > bucket_bytes or t.dtype != bucket[0].dtype or t.device != bucket[0].device):
            yield bucket
            bucket, size = [], 0
        bucket.append(t)
        size += nbytes
    if bucket:
        yield bucket


def _flat_op(tensors: list[torch.Tensor], bucket_bytes: int, op: Callable[[torch.Tensor], object]) -> None:
    """Apply an in-place collective to `tensors` bucket by bucket through flat copies: one call per bucket,
    all launched before any is waited on so the transfers pipeline, then copied back."""
    pending = []
    for bucket in _buckets(tensors, bucket_bytes):
        flat = torch.cat([t.detach().reshape(-1) for t in bucket]) if len(bucket) > 1 else bucket[0].detach().reshape(-1)
        pending.append((bucket, flat, op(flat)))
    for bucket, flat, work in pending:
        if work is not None:
            work.wait()
        if len(bucket) == 1 and flat.data_ptr() == bucket[0].data_ptr():
            continue  # reduced in place already
        offset = 0
        for t in bucket:
            t.detach().copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()


def broadcast_tensors(tensors: Iterable[torch.Tensor], bucket_bytes: int = 25 * 2**20) -> None:
    """Copy rank 0's values of `tensors` (parameters, buffers) into every rank's, in place."""
    tensors = [t for t in tensors if t.numel() > 0]
    if not is_distributed() or not tensors:
        return
    with _collective("broadcasting the weights from rank 0"), torch.no_grad():
        _flat_op(tensors, bucket_bytes, lambda flat: dist.broadcast(flat, src=0, async_op=True))


def broadcast_modules(modules: Iterable[nn.Module]) -> None:
    """Make every rank's parameters and buffers equal to rank 0's (at set-up: same start on every rank)."""
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
    broadcast_tensors(tensors, _STATE.bucket_bytes)


# -- gradient averaging -----------------------------------------------------------------------------------


class _AveragingState:
    def __init__(self) -> None:
        self.handle: torch.utils.hooks.RemovableHandle | None = None
        self.host_group: Any = None  # NCCL jobs: a gloo group for bookkeeping that must not wait for the GPU
        self.bucket_bytes = int(DEFAULT_BUCKET_MB * 2**20)
        self.presynced: set[int] = set()  # optimizers whose gradients are averaged already for this step
        self.seen: set[int] = set()  # optimizers whose parameters were broadcast at their first step


_STATE = _AveragingState()


def average_gradients(params: list[torch.Tensor], bucket_bytes: int | None = None) -> None:
    """Replace each parameter's gradient with its mean over all ranks (in place; a no-op in one process).

    A parameter with no gradient on some ranks counts as zero there; one with no gradient anywhere keeps
    `grad=None`, so optimizers skip it as they would in one process."""
    if not is_distributed() or not params:
        return
    bucket_bytes = bucket_bytes or _STATE.bucket_bytes
    # Which parameters have a gradient on some rank (the same model code can still leave one unused on one rank
    # only), counted on the host: through a GPU tensor, reading the count back would wait for the backward pass
    # to finish at every step, so nothing could be queued behind it.
    host = _STATE.host_group if dist.get_backend() == "nccl" else None
    device = torch.device("cpu") if host is not None else _collective_device()
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=device)
    with _collective("averaging gradients"):
        dist.all_reduce(present, group=host)
    grads = []
    for p, count in zip(params, present.tolist()):
        if count == 0:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        grads.append(p.grad)
    scale = 1.0 / dist.get_world_size()
    with _collective("averaging gradients"), torch.no_grad():
        _flat_op(grads, bucket_bytes, lambda flat: dist.all_reduce(flat.mul_(scale), async_op=True))


def optimizer_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def sync_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Average `optimizer`'s gradients now (e.g. before a GradScaler checks them for inf, so every rank agrees
    whether to skip the step); its next `step()` then does not average them again."""
    if not is_distributed():
        return
    _prepare_first_step(optimizer)
    average_gradients(optimizer_params(optimizer))
    _STATE.presynced.add(id(optimizer))


def forget_sync(optimizer: torch.optim.Optimizer) -> None:
    """Clear `sync_optimizer`'s mark when the step it prepared was skipped (GradScaler found inf)."""
    _STATE.presynced.discard(id(optimizer))


def _prepare_first_step(optimizer: torch.optim.Optimizer) -> None:
    if id(optimizer) not in _STATE.seen:
        _STATE.seen.add(id(optimizer))
        broadcast_tensors(optimizer_params(optimizer), _STATE.bucket_bytes)


def _before_step(optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
    if id(optimizer) in _STATE.presynced:
        _STATE.presynced.discard(id(optimizer))
        return
    _prepare_first_step(optimizer)
    average_gradients(optimizer_params(optimizer))


def install_gradient_averaging(bucket_bytes: int | None = None, host_group: Any = None) -> None:
    """Average gradients over all ranks inside every optimizer's `step()` in this process (idempotent).
    `host_group`: a gloo group of the same processes, for an NCCL job's bookkeeping (see `average_gradients`)."""
    if bucket_bytes:
        _STATE.bucket_bytes = bucket_bytes
    if host_group is not None:
        _STATE.host_group = host_group
    if _STATE.handle is None:
        _STATE.handle = register_optimizer_step_pre_hook(_before_step)


def uninstall_gradient_averaging() -> None:
    if _STATE.handle is not None:
        _STATE.handle.remove()
        _STATE.handle = None
    _STATE.host_group = None
    _STATE.presynced.clear()
    _STATE.seen.clear()
