"""Training options."""

from __future__ import annotations

import argparse
from pathlib import Path

from util.errors import I2IError
from util.option_types import number
from util.runtime import OPTIMIZER_IMPLS

from .base_options import BaseOptions


class TrainOptions(BaseOptions):
    is_train = True

    def initialize(self, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        from models.losses import GAN_LOSSES
        from models.schedulers import LR_POLICIES

        parser = super().initialize(parser)
        add = parser.add_argument
        # visdom and HTML visualization; frequencies count samples (iterations x batch size)
        add("--display_freq", type=number(int, at_least=1), default=400, help="show training results every N samples")
        add("--display_ncols", type=number(int), default=4, help="images per row in visdom; <= 0: one window each")
        add("--display_id", type=number(int), default=1, help="window id of the visdom display; <= 0 disables visdom")
        add("--display_server", type=str, default="http://localhost", help="visdom server")
        add("--display_env", type=str, default="main", help="visdom environment")
        add("--display_port", type=number(int, at_least=1, at_most=65535), default=8097, help="visdom port")
        add("--update_html_freq", type=number(int, at_least=1), default=1000, help="save training results to HTML every N samples")
        add("--print_freq", type=number(int, at_least=1), default=100, help="print losses every N samples")
        add("--no_html", action="store_true", help="do not save intermediate results to checkpoints/NAME/web/")
        add("--use_tensorboard", action="store_true",
            help="also log losses and visuals to checkpoints/NAME/tensorboard (needs `pip install tensorboard`)")
        # saving and loading
        add("--save_latest_freq", type=number(int, at_least=1), default=5000, help="save the latest model every N samples")
        add("--save_epoch_freq", type=number(int, at_least=1), default=5, help="save checkpoints at the end of every N epochs")
        add("--save_by_iter", action="store_true", help="the periodic save writes iter_<N> instead of latest")
        add("--continue_train", action="store_true", help="continue training from the --epoch checkpoint: its full "
            "training state (<epoch>_state.pth) if there is one, else its weights at --epoch_count")
        add("--overwrite_run", action="store_true", help="start over in a run folder that holds checkpoints, "
            "deleting its checkpoints, logs and pages first (without it such a run stops and says so)")
        add("--keep_last", type=number(int, at_least=0), default=0,
            help="keep only the newest N epoch (and N iter_) checkpoints, deleting older ones; 0 keeps all")
        add("--nan_policy", type=str, default="stop", choices=["stop", "skip"],
            help="on a NaN/Inf loss: stop (keeping the last good checkpoint) or skip steps with non-finite gradients")
        add("--epoch_count", type=number(int, at_least=1), default=1, help="the starting epoch count")
        add("--phase", type=str, default="train", help="train, val, test, etc.")
        # training parameters
        add("--n_epochs", type=number(int, at_least=0), default=100, help="number of epochs with the initial learning rate")
        add("--n_epochs_decay", type=number(int, at_least=0), default=100, help="number of epochs to decay the learning rate")
        add("--beta1", type=number(float, at_least=0, below=1), default=0.5, help="momentum term of Adam")
        add("--lr", type=number(float, above=0), default=0.0002, help="initial learning rate for Adam")
        add("--lr_D", type=number(float, at_least=0), default=0.0,
            help="initial learning rate of the discriminators (two time-scale updates); 0: --lr")
        add("--ema_decay", type=number(float, at_least=0, below=1), default=0.0,
            help="keep an exponential moving average of the generators' weights with this decay (e.g. 0.999) and "
            "save it as the generators' checkpoints (what test.py and export.py use); 0: off")
        add("--diff_augment", type=str, default="",
            help="differentiable augmentation of every image the discriminators see: comma-separated from color, "
            "translation, cutout; empty: off")
        add("--spectral_norm", action="store_true", help="spectral normalisation of every convolution of the "
            "discriminators (Miyato et al., 2018); their checkpoints then hold each weight as "
            "<layer>.parametrizations.weight.original")
        add("--gan_mode", type=str, default="lsgan", choices=GAN_LOSSES.names(),
            help="GAN objective; wgangp adds the gradient penalty to the discriminator's loss")
        add("--pool_size", type=number(int, at_least=0), default=50, help="size of the buffer of previously generated images")
        add("--lr_policy", type=str, default="linear", choices=LR_POLICIES.names(), help="learning rate policy")
        add("--lr_decay_iters", type=number(int, at_least=1), default=50, help="step policy: multiply by 0.1 every N epochs")
        # several processes (torchrun --nproc_per_node N train.py ...) and optimizer kernels; docs/scaling.md
        add("--sync_bn", action="store_true", help="torchrun on GPUs: batch norm statistics over all processes")
        add("--bucket_cap_mb", type=number(float, above=0), default=25.0,
            help="torchrun: gradients are averaged across processes in flat buckets of this many MiB")
        add("--dist_timeout", type=number(float, above=0), default=1800.0,
            help="torchrun: seconds a process waits for the others in a collective before the job stops")
        add("--checkpoint_activations", action="store_true",
            help="recompute the generators' activations in the backward pass instead of storing them (ResNet stem, "
            "residual blocks and head / U-Net levels): less memory for larger crops or batches, more time per step (docs/scaling.md)")
        add("--fast_convs", action="store_true",
            help="CPU: the ResNet generators' 3x3 convolutions of 256+ channels run their forward pass by Winograd's "
            "F(4x4, 3x3) (backward: the direct convolution's) and their last 7x7 convolution by kernel rows: the same "
            "mathematics, rounded differently, 1.5-3%% less time per CycleGAN 256 px step, 0.1 GiB more peak memory "
            "(docs/scaling.md); not with --amp")
        add("--optimizer_impl", default="auto", choices=list(OPTIMIZER_IMPLS),
            help="Adam's kernel: auto picks the fused one (one pass over the weights) where this PyTorch has it")
        # evaluation during training (engine/evaluator.py)
        add("--eval_freq", type=number(int, at_least=0), default=0,
            help="every N epochs (and at the first and last) score the test split and keep best_net_*.pth; 0: off")
        add("--eval_metric", default="fid", choices=["fid", "kid", "psnr", "ssim", "lpips"],
            help="what --eval_freq measures; psnr/ssim/lpips compare pairs (aligned data) or cycle reconstructions")
        add("--inception_weights", default=None, help="FID Inception weights file (default: $I2I_CACHE or "
            "~/.cache/i2i/pt_inception-2015-12-05-6726825d.pth)")
        add("--lpips_weights", default=None, help="LPIPS AlexNet backbone file (alexnet-owt-7be5be79.pth)")
        return parser

    def resolve_run(self, opt: argparse.Namespace) -> None:
        """--continue_train in a run folder that holds no checkpoint yet (a job stopped before its first save and
        started again with the same command) starts from the beginning, with a note."""
        from util.checkpoint import saved_checkpoints

        run_dir = Path(opt.checkpoints_dir) / opt.name
        if opt.continue_train and run_dir.is_dir() and not saved_checkpoints(run_dir):
            opt.continue_train = False
            self.notes.append(f"--continue_train: {run_dir} holds no checkpoint yet (the run stopped before its first "
                              "save), so training starts from the beginning")
        elif opt.continue_train and not run_dir.is_dir():
            raise I2IError(no_run_message(run_dir))

    def check(self, opt: argparse.Namespace) -> None:
        super().check(opt)
        if opt.n_epochs + opt.n_epochs_decay < 1:
            raise I2IError("--n_epochs and --n_epochs_decay must train at least one epoch together.")
        if opt.fast_convs:
            from networks.fast_convs import check_precision

            check_precision(opt)


def no_run_message(run_dir: Path) -> str:
    """--continue_train under a name with no run folder: most likely a mistyped --name."""
    import difflib

    runs = sorted(p.name for p in run_dir.parent.iterdir() if p.is_dir()) if run_dir.parent.is_dir() else []
    close = difflib.get_close_matches(run_dir.name, runs, n=1)
    hint = f" Did you mean --name {close[0]}?" if close else (f" Runs there: {', '.join(runs[:10])}." if runs else "")
    return (f"--continue_train: there is no run {run_dir} to continue.{hint} Check --name and --checkpoints_dir, or "
            "drop --continue_train to start a new run.")
