"""A history of generated images for the discriminator (Shrivastava et al. 2017, used by CycleGAN).

Showing D a mix of current and older fakes keeps it from over-fitting to G's latest output. The pool
draws from torch's RNG, so `torch.manual_seed` makes it reproducible.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

logger = logging.getLogger(__name__)


class ImagePool:
    """Stores up to `pool_size` past images; `query` returns a batch mixing new and stored ones (once the pool
    is full, each image is swapped for a random stored one with probability 1/2); `pool_size == 0` disables it."""

    def __init__(self, pool_size: int) -> None:
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.images: list[Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: Tensor) -> Tensor:
        """A batch of the same size as `images` (detached), partly drawn from the history."""
        if self.pool_size == 0:
            return images
        returned = []
        for image in images.detach():
            # clone: a stored slice would otherwise keep the whole batch's storage alive
            image = image.unsqueeze(0).clone()
            if len(self.images) < self.pool_size:
                self.images.append(image)
                returned.append(image)
            elif torch.rand(()).item() < 0.5:
                index = int(torch.randint(self.pool_size, ()).item())
                returned.append(self.images[index].to(device=image.device, dtype=image.dtype))
                self.images[index] = image
            else:
                returned.append(image)
        return torch.cat(returned, dim=0)

    def state_dict(self) -> dict[str, Any]:
        """The stored images (each of shape 1xCxHxW), for an exact resume."""
        return {"pool_size": self.pool_size, "images": list(self.images)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore stored images; keeps the first `pool_size` if the saved pool was larger."""
        images = list(state["images"])
        if len(images) > self.pool_size:
            logger.warning(
                "image pool: the checkpoint holds %d images but --pool_size is %d; keeping the first %d",
                len(images), self.pool_size, self.pool_size,
            )
        self.images = images[: self.pool_size]
