"""Mixed precision (`--amp`, `--amp_dtype`): which dtype, the autocast context and the fp16 gradient scaler.

Only activations are computed in bf16 or fp16; weights, optimizer state and checkpoints stay float32, so a
checkpoint trained with `--amp` runs without it. bf16 (the CPU's choice) needs no loss scaling; fp16 needs a
gradient scaler, and is for GPUs without bf16 units (before Ampere), where bf16 would only be emulated.
"""

from __future__ import annotations

import contextlib

import torch

from .errors import I2IError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
AMP_DTYPES = ("auto", *_DTYPES)


def amp_dtype(enabled: bool, choice: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `--amp` (`--amp_dtype choice`) on `device`, or None when mixed precision is off."""
    if not enabled:
        return None
    if device.type == "cuda":
        if choice == "auto":
            return torch.bfloat16 if native_bf16(device) else torch.float16
        if choice == "bf16" and not native_bf16(device):
            major, minor = torch.cuda.get_device_capability(device)
            raise I2IError(f"--amp_dtype bf16: {torch.cuda.get_device_name(device)} (compute capability "
                           f"{major}.{minor}) has no bfloat16 units, only slow emulation; use --amp_dtype fp16 "
                           "(or auto).")
        return _DTYPES[choice]
    if choice == "fp16":
        raise I2IError("--amp_dtype fp16 is for GPUs; on the CPU use --amp_dtype bf16 (or auto), or drop --amp.")
    return torch.bfloat16


def native_bf16(device: torch.device) -> bool:
    """Whether the GPU computes in bfloat16 itself: NVIDIA from Ampere (compute capability 8.0) on, and ROCm GPUs.
    (`torch.cuda.is_bf16_supported()` also counts emulation, which runs bf16 on V100/T4 through slow kernels.)"""
    if torch.version.hip:
        return True
    return torch.cuda.get_device_capability(device) >= (8, 0)


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to `dtype` on `device`'s type; a no-op context for dtype None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler | None:
    """A gradient scaler where the dtype needs one (fp16), else None."""
    if dtype != torch.float16:
        return None
    return torch.amp.GradScaler(device.type)
