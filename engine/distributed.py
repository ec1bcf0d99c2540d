"""Data-parallel training over processes started by torchrun (`torch.distributed`).

    torchrun --nproc_per_node 8 train.py ...                      # one machine, 8 GPUs (NCCL) or CPU processes (gloo)
    torchrun --nnodes 4 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 train.py ...

Nothing to switch on: `init_distributed` reads torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK). Each
process trains on its own shard of the data (`DistributedSampler`) with `--batch_size` images per step; the
gradients are averaged inside every optimizer step (`util.collectives`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from util.collectives import broadcast_int, install_gradient_averaging, uninstall_gradient_averaging, world_size
from util.errors import I2IError

logger = logging.getLogger(__name__)


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
    size = int(os.environ.get("WORLD_SIZE", "1"))  # how many processes torchrun started
    if size <= 1:
        return Distributed()
    if not dist.is_available():
        raise I2IError("this PyTorch build has no torch.distributed; run without torchrun or install a full build.")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    global_rank = int(os.environ.get("RANK", "0"))
    if opt.gpu_ids:  # one GPU per process, chosen by the parser (options.base_options.process_gpu_ids)
        torch.cuda.set_device(opt.gpu_ids[0])
        backend = "nccl"
    else:
        backend = "gloo"
        if opt.sync_bn:
            raise I2IError("--sync_bn needs GPUs (SyncBatchNorm has no CPU implementation); drop --sync_bn on the "
                           "CPU, or train on GPUs with --gpu_ids.")
    timeout = timedelta(seconds=opt.dist_timeout)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timeout)
    if global_rank != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (one copy of the progress lines, from rank 0)
    # NCCL: the per-step bookkeeping of the gradient averaging goes through a gloo group, off the GPU's stream
    host_group = dist.new_group(backend="gloo", timeout=timeout) if backend == "nccl" else None
    install_gradient_averaging(bucket_bytes=int(opt.bucket_cap_mb * 2**20), host_group=host_group)
    shuffle_seed = opt.seed if opt.seed is not None else broadcast_int(int(torch.randint(0, 2**31, ()).item()))
    logger.info("rank %d of %d (%s)", global_rank, size, backend)
    return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                       backend=backend, shuffle_seed=int(shuffle_seed))


def shard_samples(job_samples: int, size: int | None = None) -> int:
    """This process's share of the first `job_samples` samples that all `size` processes trained in an epoch.

    DistributedSampler pads the shards to one length, so every process trains a batch of the same size at every
    step and the job's count (train.py's) is `size` times each process's own."""
    size = world_size() if size is None else size
    return max(0, int(job_samples)) // max(1, int(size))


