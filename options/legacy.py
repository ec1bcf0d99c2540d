"""Option names of older reference versions, accepted with a deprecation note."""

from __future__ import annotations

import warnings

RENAMED = {
    "--niter": "--n_epochs",
    "--niter_decay": "--n_epochs_decay",
    "--which_epoch": "--epoch",
    "--which_direction": "--direction",
    "--which_model_netG": "--netG",
    "--which_model_netD": "--netD",
    "--batchSize": "--batch_size",
    "--loadSize": "--load_size",
    "--fineSize": "--crop_size",
    "--resize_or_crop": "--preprocess",
    "--nThreads": "--num_threads",
}
# Flags that became an option value.
REPLACED = {"--no_lsgan": ["--gan_mode", "vanilla"]}


def translate_legacy_args(argv: list[str]) -> list[str]:
    """Rewrite legacy option names in `argv` to today's, warning once per name."""
    out: list[str] = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        if name in RENAMED:
            warnings.warn(f"{name} is deprecated; use {RENAMED[name]}", FutureWarning, stacklevel=3)
            out.append(RENAMED[name] + eq + value)
        elif arg in REPLACED:
            warnings.warn(f"{arg} is deprecated; use {' '.join(REPLACED[arg])}", FutureWarning, stacklevel=3)
            out.extend(REPLACED[arg])
        else:
            out.append(arg)
    return out
