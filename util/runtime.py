"""Fast paths for the device: backend flags, network layout and compilation, optimizer kernels.

Each is chosen by an option and measured by `benchmarks/` (figures in README and docs/scaling.md):
- TF32 matmuls/convolutions on GPUs that have them (`--no_tf32` keeps full fp32); cuDNN autotuning unless
  `--seed` asks for reproducibility;
- `--channels_last`: NHWC weights and images (convolutions run in that layout without reordering);
- `--compile`: `torch.compile` of each network, checked up front so a missing compiler is one clear message;
- `--sync_bn`: batch norm statistics over all processes of a torchrun job (GPUs only);
- Adam's fused kernel (one pass over the parameters, not one element-wise op per tensor) where this build
  has it, `--optimizer_impl` to choose.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil

import torch
from torch import nn

from .errors import I2IError

OPTIMIZER_IMPLS = ("auto", "fused", "foreach", "for_loop")


def configure_backends(opt: argparse.Namespace, device: torch.device) -> None:
    """Process-wide backend flags for `device` (idempotent)."""
    if device.type != "cuda":
        return
    tf32 = not getattr(opt, "no_tf32", False)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    if getattr(opt, "seed", None) is None:
        torch.backends.cudnn.benchmark = True  # fixed image sizes: the fastest kernels, found once


def prepare_network(net: nn.Module, opt: argparse.Namespace, device: torch.device) -> nn.Module:
    """Apply --sync_bn, --channels_last and --compile to a network already on `device` (in that order)."""
    if getattr(opt, "sync_bn", False) and getattr(opt, "isTrain", False):
        net = convert_sync_batchnorm(net, device)
    if getattr(opt, "channels_last", False):
        net = net.to(memory_format=torch.channels_last)
    if getattr(opt, "compile", False):
        check_compile_available(device)
        if not getattr(opt, "isTrain", False):
            freeze_weights_when_compiling()
        net = torch.compile(net)
    return net


def freeze_weights_when_compiling() -> None:
    """Inference only: let torch.compile treat the weights as constants (folded and pre-packed into the kernels'
    layouts once, instead of re-laid out on every call). resnet_9blocks at 256 px on the CPU: 2.2-2.4 -> 2.9 img/s."""
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


def optimizer_kwargs(opt: argparse.Namespace, device: torch.device) -> dict[str, bool]:
    """Keyword arguments choosing Adam's implementation for `--optimizer_impl` on `device`.

    auto: the fused kernel (CPU and CUDA in PyTorch >= 2.4), else PyTorch's own default."""
    choice = getattr(opt, "optimizer_impl", "auto")
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
