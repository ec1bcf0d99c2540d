"""The FID Inception-v3, as torchmetrics runs it through torch-fidelity's feature extractor.

torch-fidelity's port of the 2015-12-05 TensorFlow graph that defines FID and KID (its TensorFlow 1.x resize to
299x299 included), wrapped by torchmetrics as `NoTrainInceptionV3`; `antialias=False` keeps the port unchanged,
so the features are those behind published numbers. The weights file (torch-fidelity's
`weights-inception-2015-12-05-6726825d.pth`) is found by `metrics.weights`, never downloaded by the library.
"""

from __future__ import annotations

import os

import torch

from util.checkpoint import load_state_dict
from util.errors import I2IError

from .weights import INCEPTION_FID, resolve_weights

FEATURE_DIM = 2048


def load_fid_inception(weights: str | os.PathLike | None = None, *, download: bool = False,
                       device: torch.device | str = "cpu") -> torch.nn.Module:
    """The FID Inception with the published weights: call it on uint8 N x 3 x H x W images -> N x 2048 features."""
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
    except ImportError:
        raise I2IError("FID and KID need the `torchmetrics` and `torch-fidelity` packages: "
                       "pip install torchmetrics torch-fidelity (or leave fid and kid out of --metrics).") from None
    path = resolve_weights(INCEPTION_FID, weights, option="--inception_weights", download=download)
    # torch-fidelity unpickles the file in full; a tensors-only load first refuses a file that carries code.
    load_state_dict(path)
    try:
        net = NoTrainInceptionV3("inception-v3-compat", [str(FEATURE_DIM)], str(path), antialias=False)
    except (RuntimeError, KeyError) as exc:  # a strict load: a missing, extra or misshapen weight ends here
        raise I2IError(f"{path} is not the FID Inception-v3 weights file ({INCEPTION_FID.filename}): "
                       f"{' '.join(str(exc).split())[:300]}. Fetch {INCEPTION_FID.url}.") from None
    return net.to(device)
