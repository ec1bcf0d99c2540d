"""Fast paths for the device: backend flags, network layout and compilation, optimizer kernels.

Each is chosen by an option and measured by `benchmarks/` (figures in docs/scaling.md):
- TF32 matmuls/convolutions on GPUs that have them (`--no_tf32` keeps full fp32); cuDNN autotuning unless
  `--seed` asks for reproducibility;
- `--channels_last`: NHWC weights and images (convolutions run in that layout without reordering);
- `--compile`: `torch.compile` of each network, checked up front so a missing compiler is one clear message;
- `--sync_bn`: batch norm statistics over all processes of a torchrun job (GPUs only);
- Adam's fused kernel (one pass over the parameters, not one element-wise op per tensor) where this build
  has it, `--optimizer_impl` to choose.
"""

from __future__ import annotations

import importlib.util
import shutil

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
                    compile: bool = False, training: bool = True) -> nn.Module:
    """Apply --sync_bn, --channels_last and --compile to a network already on `device` (in that order)."""
    if sync_bn:
        net = convert_sync_batchnorm(net, device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if compile:
        check_compile_available(device)
        if not training:
            freeze_weights_when_compiling()
        net = torch.compile(net)
    return net


def freeze_weights_when_compiling() -> None:
    """Inference only: let torch.compile treat the weights as constants (folded and pre-packed into the kernels'
    layouts once, instead of re-laid out on every call)."""
    import torch._inductor.config

    torch._inductor.config.freezing = True


def convert_sync_batchnorm(net: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers -> SyncBatchNorm (statistics over every process of the job); GPUs only."""
    if device.type != "cuda":
        raise I2IError("--sync_bn needs GPUs (SyncBatchNorm has no CPU implementation); drop --sync_bn on the CPU.")
    return nn.SyncBatchNorm.convert_sync_batchnorm(net)


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
