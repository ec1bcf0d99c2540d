"""Data-parallel training over processes started by torchrun (`torch.distributed`).

    torchrun --nproc_per_node 8 train.py ...                      # one machine, 8 GPUs (NCCL) or CPU processes (gloo)
    torchrun --nnodes 4 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 train.py ...

Nothing to switch on: `init_distributed` reads torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK). Each
process trains on its own shard of the data (`DistributedSampler`) with `--batch_size` images per step.

How gradients are shared, and why networks are not wrapped in DistributedDataParallel: a GAN step calls the
same network several times before one backward (CycleGAN's G_A sees real_A, fake_A and real_B; D sees real
and fake images) and freezes D while G learns. DDP's per-parameter readiness hooks assume one forward per
backward and every parameter used ("Expected to mark a variable ready only once", or a hang on the frozen
ones). i2i instead averages gradients right before each optimizer step: the gradients of that optimizer's
parameters are flattened into buckets of `--bucket_cap_mb` and all-reduced together. The step itself is
unchanged, so it works for any model, including plugins written against the reference's API that call
`optimizer.step()` themselves: a process-wide optimizer step pre-hook does the averaging for every optimizer.
Parameters and buffers are broadcast from rank 0 when the model is set up, and each optimizer's parameters
again at its first step (which covers networks a model builds late), so all ranks start and stay identical.
The price: communication does not overlap the backward pass (docs/scaling.md estimates what that costs).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from .errors import I2IError

logger = logging.getLogger(__name__)

DEFAULT_BUCKET_MB = 25.0


def env_world_size() -> int:
    """How many processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_distributed() -> bool:
    """True once `init_distributed` has joined a process group of more than one process."""
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


@dataclass
class Distributed:
    """This process's place in the job; `world_size == 1` means a plain single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    shuffle_seed: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def sampler(self, opt: argparse.Namespace) -> Callable[[torch.utils.data.Dataset], torch.utils.data.Sampler] | None:
        """A factory for `create_dataset(opt, sampler=...)`: this rank's shard, reshuffled per epoch
        (`DatasetLoader.set_epoch`), in order with `--serial_batches`; None for a single process."""
        if not self.enabled:
            return None

        def make(dataset: torch.utils.data.Dataset) -> torch.utils.data.Sampler:
            return torch.utils.data.DistributedSampler(dataset, num_replicas=self.world_size, rank=self.rank,
                                                       shuffle=not opt.serial_batches, seed=self.shuffle_seed,
                                                       drop_last=False)

        return make

    def shard_size(self, loader: Any) -> int:
        """Samples this process loads per epoch: its DistributedSampler shard (padded to the same length on every
        rank), capped as the loader caps a pass (its share of --max_dataset_size); the whole loader alone."""
        sampler = getattr(loader, "sampler", None)
        if not self.enabled or sampler is None:
            return len(loader)
        return int(min(getattr(loader, "pass_limit", len(loader)), len(sampler)))

    def close(self) -> None:
        """Leave the process group at the end of a run (all ranks reach it together)."""
        if self.enabled and dist.is_initialized():
            uninstall_gradient_averaging()
            dist.destroy_process_group()


def init_distributed(opt: argparse.Namespace) -> Distributed:
    """Join torchrun's job, if any: pick this rank's device (NCCL on GPUs, gloo on the CPU), silence stdout
    on ranks other than 0, and install gradient averaging. Without torchrun: a no-op returning world size 1."""
    size = env_world_size()
    if size <= 1:
        return Distributed()
    if not dist.is_available():
        raise I2IError("this PyTorch build has no torch.distributed; run without torchrun or install a full build.")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    global_rank = int(os.environ.get("RANK", "0"))
    if opt.gpu_ids:
        opt.gpu_ids = [_local_gpu(opt.gpu_ids, local_rank)]
        torch.cuda.set_device(opt.gpu_ids[0])
        backend = "nccl"
    else:
        backend = "gloo"
        if getattr(opt, "sync_bn", False):
            raise I2IError("--sync_bn needs GPUs (SyncBatchNorm has no CPU implementation); drop --sync_bn on the "
                           "CPU, or train on GPUs with --gpu_ids.")
    timeout = timedelta(seconds=float(getattr(opt, "dist_timeout", 1800)))
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timeout)
    if global_rank != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (one copy of the progress lines, from rank 0)
    install_gradient_averaging(bucket_bytes=int(float(getattr(opt, "bucket_cap_mb", DEFAULT_BUCKET_MB)) * 2**20))
    shuffle_seed = opt.seed if opt.seed is not None else broadcast_int(int(torch.randint(0, 2**31, ()).item()))
    logger.info("rank %d of %d (%s)", global_rank, size, backend)
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                       backend=backend, shuffle_seed=int(shuffle_seed))


def _local_gpu(gpu_ids: list[int], local_rank: int) -> int:
    """One GPU per process: the LOCAL_RANK-th of --gpu_ids when several are listed, else GPU LOCAL_RANK."""
    if len(gpu_ids) > 1:
        if local_rank >= len(gpu_ids):
            raise I2IError(f"--gpu_ids {','.join(map(str, gpu_ids))} lists {len(gpu_ids)} GPUs but torchrun started "
                           f"more processes on this node (local rank {local_rank}); give one id per process or "
                           "leave --gpu_ids at its default.")
        return gpu_ids[local_rank]
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise I2IError(f"torchrun started local rank {local_rank} but this node has {count} GPUs; use "
                       f"--nproc_per_node {count} or fewer.")
    return local_rank


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


def shard_samples(job_samples: int, size: int | None = None) -> int:
    """This process's share of the first `job_samples` samples that all `size` processes trained in an epoch.

    train.py counts a step as batch size x world size samples, and DistributedSampler pads the shards to one
    length, so every process trains a batch of the same size at every step: the job's count is `size` times
    each process's own, and a resumed process skips exactly the batches it trained itself."""
    size = world_size() if size is None else size
    return max(0, int(job_samples)) // max(1, int(size))


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
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=_collective_device())
    with _collective("averaging gradients"):
        dist.all_reduce(present)  # the same model code can still leave a parameter unused on one rank only
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


def install_gradient_averaging(bucket_bytes: int | None = None) -> None:
    """Average gradients over all ranks inside every optimizer's `step()` in this process (idempotent)."""
    if bucket_bytes:
        _STATE.bucket_bytes = bucket_bytes
    if _STATE.handle is None:
        _STATE.handle = register_optimizer_step_pre_hook(_before_step)


def uninstall_gradient_averaging() -> None:
    if _STATE.handle is not None:
        _STATE.handle.remove()
        _STATE.handle = None
    _STATE.presynced.clear()
    _STATE.seen.clear()
