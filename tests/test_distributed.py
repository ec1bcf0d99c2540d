"""torchrun data parallelism on the CPU (gloo): gradients really averaged, ranks identical, rank 0 alone writes.

Each run is a real `python -m torch.distributed.run --nproc_per_node 2` launch of train.py (through
tests/dist_worker.py, which saves every rank's final weights) at tiny width and size.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import ROOT, aligned_dataset, unaligned_dataset

WORKER = ROOT / "tests" / "dist_worker.py"
COMMON = ["--display_id", "0", "--gpu_ids", "-1", "--ngf", "8", "--ndf", "8", "--num_threads", "0", "--seed", "0",
          "--serial_batches", "--no_flip", "--pool_size", "0", "--n_epochs", "1", "--n_epochs_decay", "0",
          "--print_freq", "2", "--display_freq", "2"]
MODELS = {
    "cycle_gan": (unaligned_dataset, ["--model", "cycle_gan", "--load_size", "32", "--crop_size", "32"]),
    # instance norm: batch norm's statistics depend on how a batch is split, by definition
    "pix2pix": (aligned_dataset, ["--model", "pix2pix", "--netG", "unet_128", "--norm", "instance", "--no_dropout",
                                  "--load_size", "128", "--crop_size", "128"]),
}


def launch(out: Path, args: list[str], nproc: int, extra_env: dict[str, str] | None = None,
           timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the worker alone (nproc 1, no torchrun) or under torchrun with `nproc` CPU processes."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", **(extra_env or {})}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    if nproc == 1:
        command = [sys.executable, str(WORKER), str(out), *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                   "--rdzv_backend", "c10d", "--rdzv_endpoint", "localhost:0", "--monitor_interval", "0.2",
                   str(WORKER), str(out), *args]
    return subprocess.run(command, cwd=out, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_two_processes_equal_one_process_with_twice_the_batch(tmp_path, model):
    make_data, model_args = MODELS[model]
    data = make_data(tmp_path / "data", count=4, size=32 if model == "cycle_gan" else 128)
    args = [*COMMON, *model_args, "--dataroot", str(data), "--name", "run"]

    two = launch(tmp_path / "two", [*args, "--batch_size", "1"], nproc=2)
    assert two.returncode == 0, two.stderr[-3000:]
    one = launch(tmp_path / "one", [*args, "--batch_size", "2"], nproc=1)
    assert one.returncode == 0, one.stderr[-3000:]

    rank0, rank1, single = (torch.load(path, weights_only=True) for path in
                            (tmp_path / "two" / "weights_rank0.pt", tmp_path / "two" / "weights_rank1.pt",
                             tmp_path / "one" / "weights_rank0.pt"))
    for kind in ("weights", "grads", "outputs"):
        assert rank0[kind].keys() == rank1[kind].keys() == single[kind].keys(), kind
        for key in rank0[kind]:
            assert torch.equal(rank0[kind][key], rank1[kind][key]), f"{kind} {key} differs between the ranks"
    # Same data, same start: the mean of the gradients of 2 x 1 image is the gradient of 1 x 2 images. (Biases
    # right before an instance norm get only rounding noise as gradient, which Adam turns into +-lr steps: they
    # differ, but cannot change any output, so the networks are compared by their outputs and gradients.)
    for key, value in rank0["outputs"].items():
        torch.testing.assert_close(value, single["outputs"][key], rtol=1e-4, atol=1e-5, msg=f"output of {key}")
    scale: dict[str, float] = {}  # per network: its largest gradient
    for key, grad in single["grads"].items():
        net = key.split(".")[0]
        scale[net] = max(scale.get(net, 0.0), float(grad.abs().max()))
    for key, grad in rank0["grads"].items():
        torch.testing.assert_close(grad, single["grads"][key], rtol=1e-3, atol=1e-4 * scale[key.split(".")[0]],
                                   msg=f"gradient of {key}: 2 x 1 != 1 x 2")
    for key, value in rank0["initial_outputs"].items():  # else the comparison above would prove nothing
        assert (value - rank0["outputs"][key]).abs().max() > 1e-3, f"training did not change {key}"

    # Only rank 0 wrote: checkpoints, options, logs, pages.
    files0 = {p.name for p in (tmp_path / "two" / "files_rank0" / "run").iterdir()}
    assert {"latest_net_G_A.pth" if model == "cycle_gan" else "latest_net_G.pth", "train_opt.txt",
            "loss_log.txt"} <= files0, files0
    assert not (tmp_path / "two" / "files_rank1").exists(), list((tmp_path / "two" / "files_rank1").rglob("*"))


def test_a_failure_on_one_rank_ends_the_job_with_its_message(tmp_path):
    data = unaligned_dataset(tmp_path / "data", count=4, size=32)
    args = [*COMMON, *MODELS["cycle_gan"][1], "--dataroot", str(data), "--name", "run", "--dist_timeout", "60"]
    result = launch(tmp_path / "fail", args, nproc=2, extra_env={"I2I_TEST_FAIL_RANK": "1"}, timeout=120)
    assert result.returncode != 0
    assert "error: [rank 1] injected failure for the test" in result.stderr, result.stderr[-3000:]
    assert not (tmp_path / "fail" / "weights_rank0.pt").exists()
