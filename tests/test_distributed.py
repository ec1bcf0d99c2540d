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


def _collectives_worker(rank: int, init_file: str, results: str) -> None:
    """One of two gloo processes: the gradient-averaging hook on hand-made parameters."""
    import torch.distributed as dist

    from util import distributed

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    distributed.install_gradient_averaging(bucket_bytes=16)  # a few floats per bucket: many buckets
    torch.manual_seed(rank)  # different starting values on each rank
    used, unused_here, unused_anywhere = (torch.nn.Parameter(torch.randn(3, 2)) for _ in range(3))
    optimizer = torch.optim.SGD([used, unused_here, unused_anywhere], lr=1.0)
    used.grad = torch.full((3, 2), float(rank + 1))  # mean over the ranks: 1.5
    if rank == 0:
        unused_here.grad = torch.full((3, 2), 4.0)  # rank 1 has none: the mean is 2.0
    start = [p.detach().clone() for p in (used, unused_here, unused_anywhere)]
    optimizer.step()  # first step: rank 0's parameters are broadcast, then gradients averaged
    start0 = [t.clone() for t in start]
    for t in start0:
        dist.broadcast(t, src=0)
    torch.save({"params": [p.detach() for p in (used, unused_here, unused_anywhere)], "start0": start0,
                "grads": [used.grad, unused_here.grad, unused_anywhere.grad]}, f"{results}/{rank}.pt")
    distributed.uninstall_gradient_averaging()
    dist.destroy_process_group()


def test_averaging_hook_buckets_missing_gradients_and_first_step_broadcast(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_collectives_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1))
    for a, b in zip(r0["params"], r1["params"]):
        assert torch.equal(a, b)
    used, unused_here, unused_anywhere = r0["params"]
    start_used, start_here, start_anywhere = r0["start0"]
    torch.testing.assert_close(used, start_used - 1.5)
    torch.testing.assert_close(unused_here, start_here - 2.0)
    torch.testing.assert_close(unused_anywhere, start_anywhere)  # no gradient anywhere: not stepped
    assert r0["grads"][2] is None and r1["grads"][2] is None


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_gpu_processes_with_nccl_end_identical(tmp_path):
    data = unaligned_dataset(tmp_path / "data", count=4, size=32)
    args = [*[a if a != "-1" else "0" for a in COMMON], *MODELS["cycle_gan"][1], "--dataroot", str(data),
            "--name", "run", "--amp", "--channels_last"]
    env_args = {"OMP_NUM_THREADS": "1"}
    result = launch(tmp_path / "gpu", args, nproc=2, extra_env=env_args)
    assert result.returncode == 0, result.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / "gpu" / f"weights_rank{r}.pt", weights_only=True) for r in (0, 1))
    for key in r0["weights"]:
        assert torch.equal(r0["weights"][key], r1["weights"][key]), key
