"""Image-translation metrics: FID and KID (distributions), PSNR, SSIM and LPIPS (pairs).

    from metrics import MetricSuite
    suite = MetricSuite(["fid", "psnr"], inception_weights="pt_inception-2015-12-05-6726825d.pth")
    scores = suite.compare_folders("results/x/test_latest/images/fake_B", "datasets/x/testB")

`python evaluate.py --help` runs them on folders.
"""

from __future__ import annotations

from .catalog import METRICS, MetricSpec, lower_is_better
from .suite import MetricSuite

__all__ = ["METRICS", "MetricSpec", "MetricSuite", "lower_is_better"]
