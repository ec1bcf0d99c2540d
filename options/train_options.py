"""Training options (section 1.3 of the reference's behaviour)."""

from __future__ import annotations

import argparse

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
        add("--display_freq", type=int, default=400, help="show training results every N samples")
        add("--display_ncols", type=int, default=4, help="images per row in visdom; <= 0: one window each")
        add("--display_id", type=int, default=1, help="window id of the visdom display; <= 0 disables visdom")
        add("--display_server", type=str, default="http://localhost", help="visdom server")
        add("--display_env", type=str, default="main", help="visdom environment")
        add("--display_port", type=int, default=8097, help="visdom port")
        add("--update_html_freq", type=int, default=1000, help="save training results to HTML every N samples")
        add("--print_freq", type=int, default=100, help="print losses every N samples")
        add("--no_html", action="store_true", help="do not save intermediate results to checkpoints/NAME/web/")
        add("--use_tensorboard", action="store_true",
            help="also log losses and visuals to checkpoints/NAME/tensorboard (needs `pip install tensorboard`)")
        # saving and loading
        add("--save_latest_freq", type=int, default=5000, help="save the latest model every N samples")
        add("--save_epoch_freq", type=int, default=5, help="save checkpoints at the end of every N epochs")
        add("--save_by_iter", action="store_true", help="the periodic save writes iter_<N> instead of latest")
        add("--continue_train", action="store_true", help="continue training from the --epoch checkpoint: its full "
            "training state (<epoch>_state.pth) if there is one, else its weights at --epoch_count")
        add("--keep_last", type=int, default=0,
            help="keep only the newest N epoch (and N iter_) checkpoints, deleting older ones; 0 keeps all")
        add("--nan_policy", type=str, default="stop", choices=["stop", "skip"],
            help="on a NaN/Inf loss: stop (keeping the last good checkpoint) or skip steps with non-finite gradients")
        add("--epoch_count", type=int, default=1, help="the starting epoch count")
        add("--phase", type=str, default="train", help="train, val, test, etc.")
        # training parameters
        add("--n_epochs", type=int, default=100, help="number of epochs with the initial learning rate")
        add("--n_epochs_decay", type=int, default=100, help="number of epochs to decay the learning rate")
        add("--beta1", type=float, default=0.5, help="momentum term of Adam")
        add("--lr", type=float, default=0.0002, help="initial learning rate for Adam")
        add("--gan_mode", type=str, default="lsgan", choices=GAN_LOSSES.names(),
            help="GAN objective; wgangp adds the gradient penalty to the discriminator's loss")
        add("--pool_size", type=int, default=50, help="size of the buffer of previously generated images")
        add("--lr_policy", type=str, default="linear", choices=LR_POLICIES.names(), help="learning rate policy")
        add("--lr_decay_iters", type=int, default=50, help="step policy: multiply by 0.1 every N epochs")
        # several processes (torchrun --nproc_per_node N train.py ...) and optimizer kernels; docs/scaling.md
        add("--sync_bn", action="store_true", help="torchrun on GPUs: batch norm statistics over all processes")
        add("--bucket_cap_mb", type=float, default=25.0,
            help="torchrun: gradients are averaged across processes in flat buckets of this many MiB")
        add("--dist_timeout", type=float, default=1800.0,
            help="torchrun: seconds a process waits for the others in a collective before the job stops")
        add("--optimizer_impl", default="auto", choices=list(OPTIMIZER_IMPLS),
            help="Adam's kernel: auto picks the fused one (one pass over the weights) where this PyTorch has it")
        # evaluation during training (metrics/training.py)
        add("--eval_freq", type=int, default=0,
            help="every N epochs (and at the first and last) score the test split and keep best_net_*.pth; 0: off")
        add("--eval_metric", default="fid", choices=["fid", "kid", "psnr", "ssim", "lpips"],
            help="what --eval_freq measures; psnr/ssim/lpips compare pairs (aligned data) or cycle reconstructions")
        add("--inception_weights", default=None, help="FID Inception weights file (default: $I2I_CACHE or "
            "~/.cache/i2i/pt_inception-2015-12-05-6726825d.pth)")
        add("--lpips_weights", default=None, help="LPIPS AlexNet backbone file (alexnet-owt-7be5be79.pth)")
        return parser

    def check(self, opt: argparse.Namespace) -> None:
        super().check(opt)
        from util.errors import I2IError

        for name in ("display_freq", "update_html_freq", "print_freq", "save_latest_freq", "save_epoch_freq"):
            if getattr(opt, name) < 1:
                raise I2IError(f"--{name} must be at least 1 (got {getattr(opt, name)}).")
        if opt.n_epochs < 0 or opt.n_epochs_decay < 0 or opt.n_epochs + opt.n_epochs_decay < 1:
            raise I2IError("--n_epochs and --n_epochs_decay must be >= 0 and train at least one epoch together.")
        for name in ("bucket_cap_mb", "dist_timeout"):
            if getattr(opt, name) <= 0:
                raise I2IError(f"--{name} must be positive (got {getattr(opt, name)}).")
        if opt.keep_last < 0:
            raise I2IError(f"--keep_last must be >= 0 (got {opt.keep_last}); 0 keeps every checkpoint.")
