"""Evaluation during training (`--eval_freq N --eval_metric M`): score the test split, keep the best weights.

At the first, every N-th and the last epoch, the generators (in eval mode) translate the test split (resized
to --crop_size). fid / kid compare `fake_B` with `real_B` as distributions; psnr / ssim / lpips compare
`fake_B` with `real_B` image by image on pairs (`--dataset_mode aligned`), else `rec_A` with `real_A`. The
score is logged as `eval_<metric>`, watched by the plateau LR policy, and the best weights so far are saved as
`best_net_<name>.pth` (`best_metric.json` names the epoch). Under torchrun rank 0 alone evaluates.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from metrics.catalog import METRICS
from metrics.suite import MetricSuite, to_uint8
from util.collectives import broadcast_float, is_main, mean_float
from util.errors import I2IError
from util.files import atomic_write
from util.option_types import replaced

logger = logging.getLogger(__name__)


class TrainingEvaluator:
    """Does nothing when `--eval_freq` is 0; see the module docstring otherwise."""

    def __init__(self, opt: argparse.Namespace) -> None:
        self.freq = opt.eval_freq
        self.opt = opt
        self.latest: float | None = None
        self.best: dict[str, Any] | None = None
        if self.freq <= 0:
            return
        self.metric = opt.eval_metric
        self.spec = METRICS[self.metric]
        if not is_main():
            return  # torchrun: rank 0 evaluates for the job; `lr_metric` shares its score
        self.best_file = Path(opt.checkpoints_dir) / opt.name / "best_metric.json"
        if opt.continue_train and self.best_file.is_file():
            self.best = json.loads(self.best_file.read_text())
        device = f"cuda:{opt.gpu_ids[0]}" if opt.gpu_ids else "cpu"
        self.suite = MetricSuite([self.metric], inception_weights=opt.inception_weights,
                                 lpips_weights=opt.lpips_weights, device=device, batch_size=opt.batch_size)
        from data import create_dataset

        try:
            self.dataset = create_dataset(replaced(opt, phase="test", isTrain=False, serial_batches=True, no_flip=True,
                                                   num_threads=0, preprocess="resize_and_crop",
                                                   load_size=opt.crop_size))
        except I2IError as exc:
            raise I2IError(f"--eval_freq {self.freq} evaluates on the test split: {exc}") from None
        self.paired = opt.dataset_mode == "aligned"

    def due(self, epoch: int, last_epoch: int) -> bool:
        return self.freq > 0 and (epoch == self.opt.epoch_count or epoch % self.freq == 0 or epoch == last_epoch)

    def end_of_epoch(self, model, epoch: int, last_epoch: int) -> dict[str, float]:
        """Evaluate if due; log-ready {"eval_<metric>": value} (empty when not due, and on ranks other than 0
        under torchrun); saves best_net_*."""
        if not self.due(epoch, last_epoch) or not is_main():
            return {}
        value = self.evaluate(model)
        self.latest = value
        better = self.best is None or (value > self.best["value"] if self.spec.higher_is_better
                                       else value < self.best["value"])
        if better:
            self.best = {"metric": self.metric, "value": value, "epoch": epoch}
            model.save_networks("best")
            atomic_write(self.best_file, lambda f: f.write(json.dumps(self.best, indent=2) + "\n"), mode="w")
            logger.info("new best %s %.4f at epoch %d: saved best_net_*.pth", self.metric, value, epoch)
        return {f"eval_{self.metric}": value}

    def lr_metric(self, fallback: float | None) -> float | None:
        """What the plateau policy watches: the latest score (lower is better), or `fallback` without evaluation.

        Call it on every rank: it returns the same value on all of them (rank 0's score, else the mean of the
        ranks' fallbacks), so their schedulers stay equal."""
        score = None
        if self.freq > 0 and self.latest is not None:
            score = -self.latest if self.spec.higher_is_better else self.latest
        score = broadcast_float(score)
        return score if score is not None else mean_float(fallback)

    def evaluate(self, model) -> float:
        """The metric over the whole test split, with the generators in eval mode (restored afterwards)."""
        model.eval()
        try:
            if self.spec.paired:
                return self._paired(model)
            return self._distribution(model)
        finally:
            model.train()

    def _visuals(self, model):
        """The visuals `model.test()` made for each test batch (training-only ones, such as CycleGAN's identity
        images, are left out: a resumed epoch with no step left has none)."""
        for data in self.dataset:
            model.set_input(data)
            model.test()
            yield {name: getattr(model, name) for name in model.visual_names if hasattr(model, name)}

    def _pick(self, visuals, names: tuple[str, str]):
        missing = [n for n in names if n not in visuals]
        if missing:
            raise I2IError(f"--eval_metric {self.metric} compares {names[0]} with {names[1]}, but the model has no "
                           f"visual {missing[0]} (it has {', '.join(visuals)}). Pick another --eval_metric.")
        return to_uint8(visuals[names[0]]).cpu(), to_uint8(visuals[names[1]]).cpu()

    def _paired(self, model) -> float:
        names = ("fake_B", "real_B") if self.paired else ("rec_A", "real_A")
        values = []
        for visuals in self._visuals(model):
            a, b = self._pick(visuals, names)
            values.append(self.suite.pair_scores(a, b)[self.metric])
        return float(np.mean(np.concatenate(values)))

    def _distribution(self, model) -> float:
        fake, real = [], []
        for visuals in self._visuals(model):
            a, b = self._pick(visuals, ("fake_B", "real_B"))
            fake.append(self.suite.features(a))
            real.append(self.suite.features(b))
        return self.suite.distribution_scores(np.concatenate(fake), np.concatenate(real))[self.metric]
