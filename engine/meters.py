"""Running means of the losses over an epoch, kept on the device (no per-iteration sync)."""

from __future__ import annotations

import torch


class EpochLosses:
    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for name, value in losses.items():
            self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()
        self.count += 1

    def means(self) -> dict[str, float]:
        return {name: float(total) / max(self.count, 1) for name, total in self.sums.items()}

    def generator_objective(self) -> float | None:
        """The epoch's mean generator-side loss (every loss not named D*): what the plateau policy watches."""
        means = self.means()
        terms = [value for name, value in means.items() if not name.startswith("D")]
        return sum(terms) if terms else None
