"""Fast paths for the device: backend flags, network layout and compilation, optimizer kernels.

TF32 and cuDNN autotuning, `--channels_last`, `DataParallel` over several `--gpu_ids`, `--compile`, `--sync_bn`
and Adam's fused kernel (`--optimizer_impl`); each is chosen by an option, and docs/scaling.md ("Fast paths")
has what it does and what it measured. Also: the plain network inside a wrapper (`unwrap`) and swapping a network's
layers in place (`replace_modules`).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .errors import I2IError

OPTIMIZER_IMPLS = ("auto", "fused", "foreach", "for_loop")


def configure_backends(device: torch.device, *, tf32: bool = True, autotune: bool = True) -> None:
    """Process-wide backend flags for `device` (idempotent): its CUDA device current, TF32, cuDNN autotuning."""
    if device.type != "cuda":
        return
    torch.cuda.set_device(device)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    if autotune:
        torch.backends.cudnn.benchmark = True  # fixed image sizes: the fastest kernels, found once


def prepare_network(net: nn.Module, device: torch.device, *, sync_bn: bool = False, channels_last: bool = False,
                    compile: bool = False, training: bool = True, device_ids: Sequence[int] = ()) -> nn.Module:
    """Apply --sync_bn and --channels_last to a network already on `device`, then wrap it: in `DataParallel` over
    several `device_ids` (one process driving several GPUs), else in torch.compile with --compile.

    The two do not combine: a DataParallel copy of a compiled module still runs the graph compiled for the first
    GPU's weights, and compiling the wrapper compiles nothing of the copies, which run in worker threads."""
    if sync_bn:  # batch-norm statistics over every process of the job
        if device.type != "cuda":
            raise I2IError("--sync_bn needs GPUs (SyncBatchNorm has no CPU implementation); drop --sync_bn on the CPU.")
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if len(device_ids) > 1:
        if compile:
            raise I2IError(f"--compile does not combine with --gpu_ids {','.join(map(str, device_ids))} in one process "
                           "(nn.DataParallel's per-GPU copies would run the graph compiled for the first GPU); run one "
                           f"process per GPU instead: torchrun --nproc_per_node {len(device_ids)} ... --compile "
                           "(faster too), or drop --compile.")
        return DataParallel(net, list(device_ids))
    if compile:
        check_compile_available(device)
        if not training:  # the weights are constants: folded and pre-packed into the kernels' layouts once
            import torch._inductor.config as inductor_config  # `as`: else `torch` would be local

            inductor_config.freezing = True
        net = torch.compile(net)
    return net


class DataParallel(nn.DataParallel):
    """`nn.DataParallel` whose per-GPU copies compute in the caller's autocast dtype.

    DataParallel runs each copy in a worker thread that re-enters autocast with the caller's on/off state only;
    the dtype is per thread and defaults to fp16 on CUDA, so under bf16 `--amp` the copies would compute in fp16
    with no gradient scaler. State_dict keys and `util.runtime.unwrap` are those of `nn.DataParallel`."""

    def parallel_apply(self, replicas: Sequence[nn.Module], inputs: Sequence[Any], kwargs: Any) -> list[Any]:
        device_type = self.src_device_obj.type
        if torch.is_autocast_enabled(device_type):
            dtype = torch.get_autocast_dtype(device_type)
            replicas = [_InAutocast(replica, device_type, dtype) for replica in replicas]
        return super().parallel_apply(replicas, inputs, kwargs)


class _InAutocast:
    """Calls a module inside autocast of a given device type and dtype (in whichever thread calls it)."""

    def __init__(self, module: nn.Module, device_type: str, dtype: torch.dtype) -> None:
        self.module, self.device_type, self.dtype = module, device_type, dtype

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.module(*args, **kwargs)


def check_compile_available(device: torch.device) -> None:
    """Fail at set-up, with the fix, where torch.compile cannot work (it would fail at the first step)."""
    import torch._dynamo

    if not hasattr(torch, "compile") or not torch._dynamo.is_dynamo_supported():
        raise I2IError(f"--compile: torch.compile is not supported by this PyTorch ({torch.__version__}) on this "
                       "Python; drop --compile or use a supported Python/PyTorch pair.")
    if device.type == "cuda" and importlib.util.find_spec("triton") is None:
        raise I2IError("--compile on GPUs needs Triton (`pip install triton`, shipped with CUDA builds of PyTorch); "
                       "drop --compile otherwise.")
    if device.type == "cpu" and not any(shutil.which(cxx) for cxx in ("g++", "c++", "clang++")):
        raise I2IError("--compile on the CPU needs a C++ compiler (g++ or clang++ on the PATH); install one "
                       "or drop --compile.")


def optimizer_kwargs(choice: str, device: torch.device) -> dict[str, bool]:
    """Keyword arguments choosing Adam's implementation for `--optimizer_impl` on `device`.

    auto: the fused kernel (CPU and CUDA in PyTorch >= 2.4), else PyTorch's own default."""
    if choice == "fused" or (choice == "auto" and fused_adam_available(device)):
        if not fused_adam_available(device):
            raise I2IError(f"--optimizer_impl fused: this PyTorch ({torch.__version__}) has no fused Adam for "
                           f"{device.type}; use --optimizer_impl auto.")
        return {"fused": True}
    if choice == "foreach":
        return {"foreach": True}
    if choice == "for_loop":
        return {"foreach": False}
    return {}


def fused_adam_available(device: torch.device) -> bool:
    try:
        from torch.optim.optimizer import _get_fused_kernels_supported_devices
    except ImportError:
        return False
    return device.type in _get_fused_kernels_supported_devices()


def unwrap(net: nn.Module) -> nn.Module:
    """The plain network inside a DataParallel/DistributedDataParallel wrapper or a torch.compile module (whose
    state_dict keys carry an `_orig_mod.` prefix), so every checkpoint holds the plain keys."""
    if isinstance(net, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        net = net.module
    return getattr(net, "_orig_mod", net)


def replace_modules(net: nn.Module, select: Callable[[nn.Module], bool],
                    make: Callable[[nn.Module], nn.Module]) -> list[tuple[nn.Module, str, nn.Module]]:
    """Swap, in place, every submodule of `net` that `select` picks for `make(it)`; returns (parent, attribute name,
    the module replaced) for each, so a caller can put them back. The modules are picked before any is swapped."""
    picked = [(parent, name, child) for parent in net.modules() for name, child in parent.named_children()
              if select(child)]
    for parent, name, child in picked:
        setattr(parent, name, make(child))
    return picked
