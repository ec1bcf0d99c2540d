"""Run a chosen set of metrics over image batches, folders or model outputs, in bounded memory.

Images enter as uint8 tensors N x C x H x W (what saved results hold). Distribution metrics keep 2048 features
per image, paired metrics one number per pair, so thousands of images are fine.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from util.errors import I2IError

from .catalog import METRICS
from .fid import fid_from_features, kid_from_features
from .paired import psnr, ssim

logger = logging.getLogger(__name__)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Model outputs in [-1, 1] -> uint8, quantised as test.py saves them."""
    return ((images.detach().float().clamp(-1, 1) + 1) / 2 * 255).to(torch.uint8)


def _rgb(images: torch.Tensor) -> torch.Tensor:
    return images.expand(-1, 3, -1, -1) if images.size(1) == 1 else images[:, :3]


class MetricSuite:
    """The metrics `names` (keys of metrics.METRICS), with their networks loaded once."""

    def __init__(self, names: Sequence[str], *, inception_weights: str | os.PathLike | None = None,
                 lpips_weights: str | os.PathLike | None = None, download: bool = False,
                 device: torch.device | str = "cpu", batch_size: int = 50, feature_extractor=None) -> None:
        unknown = [n for n in names if n not in METRICS]
        if unknown:
            raise I2IError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}.")
        self.names = list(names)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.inception = feature_extractor
        self.lpips = None
        if self.inception is None and any(METRICS[n].needs == "inception" for n in names):
            from .inception import load_fid_inception

            self.inception = load_fid_inception(inception_weights, download=download, device=self.device)
        if "lpips" in names:
            from .lpips import load_lpips

            self.lpips = load_lpips(lpips_weights, download=download, device=self.device)

    @property
    def distribution_metrics(self) -> list[str]:
        return [n for n in self.names if not METRICS[n].paired]

    @property
    def paired_metrics(self) -> list[str]:
        return [n for n in self.names if METRICS[n].paired]

    # -- building blocks ------------------------------------------------------------------------------

    @torch.inference_mode()
    def features(self, images: torch.Tensor | list[torch.Tensor]) -> np.ndarray:
        """Inception features (N x 2048) of uint8 images: a batch, or a list of images of any sizes.

        The network resizes each batch to 299x299 itself; a list of mixed sizes runs as one batch per size."""
        if isinstance(images, torch.Tensor):
            return self.inception(_rgb(images).to(self.device)).double().cpu().numpy()
        groups: dict[tuple, list[torch.Tensor]] = {}
        for image in images:
            groups.setdefault(tuple(image.shape), []).append(image)
        return np.concatenate([self.features(torch.stack(group)) for group in groups.values()])

    @torch.inference_mode()
    def pair_scores(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, np.ndarray]:
        """Per-pair values of the paired metrics for two uint8 batches (a is resized to b's size if needed)."""
        if a.shape[-2:] != b.shape[-2:]:
            a = F.interpolate(a.float(), size=b.shape[-2:], mode="bilinear", align_corners=False).round()
        if a.size(1) != b.size(1):
            a, b = _rgb(a), _rgb(b)
        a, b = a.to(self.device).double(), b.to(self.device).double()
        out = {}
        if "psnr" in self.names:
            out["psnr"] = psnr(a, b).cpu().numpy()
        if "ssim" in self.names:
            out["ssim"] = ssim(a, b).cpu().numpy()
        if "lpips" in self.names:
            out["lpips"] = self.lpips(_rgb(a).float() / 127.5 - 1, _rgb(b).float() / 127.5 - 1).flatten().cpu().numpy()
        return out

    def distribution_scores(self, features1: np.ndarray, features2: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        if "fid" in self.names:
            out["fid"] = fid_from_features(features1, features2)
        if "kid" in self.names:
            out["kid"], out["kid_std"] = kid_from_features(features1, features2)
        return out

    # -- whole sets -----------------------------------------------------------------------------------

    def compare_pairs(self, batches: Iterable[list[tuple[torch.Tensor, torch.Tensor]]], *, total: int | None = None,
                      desc: str = "pairs", distributions: bool = True) -> dict[str, float]:
        """Means of the paired metrics (and, if `distributions`, FID/KID) over batches of (a, b) uint8 pairs."""
        feats_a: list[np.ndarray] = []
        feats_b: list[np.ndarray] = []
        per_pair: dict[str, list[np.ndarray]] = {}
        count = 0
        for batch in tqdm(batches, total=total, desc=desc, unit="batch", leave=False, disable=None):
            a_list, b_list = [p[0] for p in batch], [p[1] for p in batch]
            count += len(batch)
            if distributions and self.distribution_metrics:
                feats_a.append(self.features(a_list))
                feats_b.append(self.features(b_list))
            if self.paired_metrics:
                for a, b in _same_shape_groups(a_list, b_list):
                    for name, values in self.pair_scores(a, b).items():
                        per_pair.setdefault(name, []).append(values)
        scores: dict[str, float] = {name: float(np.mean(np.concatenate(v))) for name, v in per_pair.items()}
        if feats_a:
            scores |= self.distribution_scores(np.concatenate(feats_a), np.concatenate(feats_b))
        scores["count"] = count
        return scores

    def folder_features(self, paths: Sequence[Path], desc: str) -> np.ndarray:
        """Inception features of image files, in batches with a progress bar."""
        from .folders import file_batches

        batches, total = file_batches([(p,) for p in paths], self.batch_size)
        feats = [self.features([row[0] for row in batch])
                 for batch in tqdm(batches, total=total, desc=desc, unit="batch", leave=False, disable=None)]
        return np.concatenate(feats)

    def compare_files(self, paths_a: Sequence[Path], paths_b: Sequence[Path], *, paired: bool,
                      distributions: bool = True, desc: str = "images") -> dict[str, float]:
        """Compare two lists of image files: as pairs (same order) and/or as two distributions."""
        from .folders import file_batches

        if paired:
            if len(paths_a) != len(paths_b):
                raise ValueError("paired comparison needs two lists of the same length")
            batches, total = file_batches(list(zip(paths_a, paths_b)), self.batch_size)
            return self.compare_pairs(batches, total=total, desc=desc, distributions=distributions)
        scores: dict[str, float] = {"count": len(paths_a)}
        if self.distribution_metrics and distributions:
            scores |= self.distribution_scores(self.folder_features(paths_a, f"{desc} (1/2)"),
                                               self.folder_features(paths_b, f"{desc} (2/2)"))
        return scores

    def compare_folders(self, folder_a: str | os.PathLike, folder_b: str | os.PathLike, *,
                        paired: bool = False) -> dict[str, float]:
        """Compare two image folders: distributions, plus pairs of same-named files when `paired`."""
        from .folders import list_images, paired_rows

        folder_a, folder_b = Path(folder_a), Path(folder_b)
        if paired:
            rows = paired_rows(folder_a, folder_b)
            return self.compare_files([r[0] for r in rows], [r[1] for r in rows], paired=True, desc=folder_a.name)
        return self.compare_files(list_images(folder_a), list_images(folder_b), paired=False, desc=folder_a.name)


def _same_shape_groups(a_list: list[torch.Tensor], b_list: list[torch.Tensor]):
    """Yield stacked (a, b) batches of pairs whose shapes agree, so mixed sizes still batch where they can."""
    groups: dict[tuple, tuple[list, list]] = {}
    for a, b in zip(a_list, b_list):
        key = (tuple(a.shape), tuple(b.shape))
        groups.setdefault(key, ([], []))
        groups[key][0].append(a)
        groups[key][1].append(b)
    for a_group, b_group in groups.values():
        yield torch.stack(a_group), torch.stack(b_group)
