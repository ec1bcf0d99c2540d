"""LPIPS (Zhang et al. 2018) through the `lpips` package, with its AlexNet backbone loaded from a local file.

The optional `lpips` package ships the learned linear layers; the AlexNet backbone it would download through
torchvision comes from `--lpips_weights PATH`, the i2i cache, or a checksummed download (`metrics.weights`).
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from util.checkpoint import load_state_dict
from util.errors import I2IError

from .weights import ALEXNET, resolve_weights

# torchvision's alexnet.features index -> the lpips slice holding it (lpips keeps the index as the name)
_SLICE_OF_LAYER = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}


def backbone_state(alexnet_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision AlexNet keys (`features.3.weight`) -> the lpips backbone's keys (`slice2.3.weight`)."""
    out = {}
    for index, slice_number in _SLICE_OF_LAYER.items():
        for kind in ("weight", "bias"):
            key = f"features.{index}.{kind}"
            if key not in alexnet_state:
                raise KeyError(key)
            out[f"slice{slice_number}.{index}.{kind}"] = alexnet_state[key]
    return out


def load_lpips(weights: str | os.PathLike | None = None, *, download: bool = False,
               device: torch.device | str = "cpu") -> nn.Module:
    """LPIPS-Alex; call it on two N x 3 x H x W batches in [-1, 1] to get N x 1 x 1 x 1 distances."""
    try:
        import lpips
    except ImportError:
        raise I2IError("the LPIPS metric needs the `lpips` package: pip install lpips "
                       "(or leave lpips out of --metrics).") from None
    path = resolve_weights(ALEXNET, weights, option="--lpips_weights", download=download)
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=` argument
        warnings.simplefilter("ignore")
        net = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    try:  # strict: every backbone weight comes from the file, with its shape, or loading fails
        net.net.load_state_dict(backbone_state(load_state_dict(path)), strict=True)
    except (KeyError, RuntimeError) as exc:
        raise I2IError(f"{path} is not torchvision's AlexNet weights file ({ALEXNET.filename}): "
                       f"{' '.join(str(exc).split())[:300]}. "
                       f"Fetch {ALEXNET.url}.") from None
    return net.to(device).eval().requires_grad_(False)
