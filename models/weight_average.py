"""An exponential moving average of a model's generator weights (`--ema_decay`), used for testing and export.

After each optimizer step of the generators, every floating-point weight w moves its average a towards it,
a <- a + (1 - min(decay, (1 + n) / (10 + n))) (w - a) after n updates (buffers are copied). Generators trained
this way are saved with their averaged weights (what test.py, translate.py and export.py load); the training
state keeps both.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from util.runtime import unwrap


class WeightAverage:
    """Averages of the networks `nets` (name -> module), updated by `update()`."""

    def __init__(self, nets: dict[str, nn.Module], decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.averages = {name: {k: v.detach().clone() for k, v in unwrap(net).state_dict().items()}
                         for name, net in nets.items()}

    @torch.no_grad()
    def update(self, nets: dict[str, nn.Module]) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, net in nets.items():
            average = self.averages[name]
            for key, value in unwrap(net).state_dict().items():
                if value.is_floating_point():
                    average[key].lerp_(value.detach(), 1 - decay)
                else:
                    average[key].copy_(value)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates,
                "averages": {name: {k: v.detach().cpu().clone() for k, v in average.items()}
                             for name, average in self.averages.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = int(state["updates"])
        for name, average in state["averages"].items():
            if name in self.averages:
                for key, value in average.items():
                    self.averages[name][key].copy_(value)
