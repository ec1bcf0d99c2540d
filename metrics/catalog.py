"""What each metric compares and which way is better."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    name: str
    paired: bool  # True: image i of one set against image i of the other; False: two distributions
    higher_is_better: bool
    needs: str | None  # the weights it needs: "inception", "lpips" or None
    doc: str


METRICS: dict[str, MetricSpec] = {m.name: m for m in (
    MetricSpec("fid", False, False, "inception", "Frechet Inception distance (lower is better)"),
    MetricSpec("kid", False, False, "inception", "kernel Inception distance, unbiased MMD^2 (lower is better)"),
    MetricSpec("psnr", True, True, None, "peak signal-to-noise ratio in dB (higher is better)"),
    MetricSpec("ssim", True, True, None, "structural similarity (higher is better)"),
    MetricSpec("lpips", True, False, "lpips", "learned perceptual distance, AlexNet (lower is better)"),
)}


def lower_is_better(name: str) -> bool:
    return not METRICS[name].higher_is_better
