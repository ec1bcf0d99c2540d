"""torchrun data parallelism on the CPU (gloo): gradients really averaged, ranks identical, rank 0 alone writes,
shows progress and evaluates, and a job resumed mid-epoch continues each rank's shard where it stopped.

Each run is a real `python -m torch.distributed.run --nproc_per_node 2` launch of train.py (through
tests/dist_worker.py, which saves every rank's final weights) at tiny width and size; the other tests spawn two
gloo processes around one piece, or simulate the ranks' data in one process.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.helpers import ROOT, aligned_dataset, unaligned_dataset

WORKER = ROOT / "tests" / "dist_worker.py"
BASE = ["--display_id", "0", "--gpu_ids", "-1", "--ngf", "8", "--ndf", "8", "--num_threads", "0", "--no_flip",
        "--pool_size", "0", "--n_epochs", "1", "--n_epochs_decay", "0", "--print_freq", "2", "--display_freq", "2"]
COMMON = [*BASE, "--seed", "0", "--serial_batches"]
MODELS = {
    # --eval_freq: rank 0 alone evaluates and writes best_*, all ranks step the plateau policy with its score
    "cycle_gan": (unaligned_dataset, ["--model", "cycle_gan", "--load_size", "32", "--crop_size", "32",
                                      "--eval_freq", "1", "--eval_metric", "psnr", "--lr_policy", "plateau"]),
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

    # Only rank 0 wrote: checkpoints, options, logs, pages (and the evaluation's best_*).
    files0 = {p.name for p in (tmp_path / "two" / "files_rank0" / "run").iterdir()}
    assert {"latest_net_G_A.pth" if model == "cycle_gan" else "latest_net_G.pth", "train_opt.txt",
            "loss_log.txt"} <= files0, files0
    if model == "cycle_gan":
        assert {"best_metric.json", "best_net_G_A.pth"} <= files0, files0
    assert not (tmp_path / "two" / "files_rank1").exists(), list((tmp_path / "two" / "files_rank1").rglob("*"))
    # One progress line per epoch, from rank 0, counting its shard's batches: 4 images / 2 ranks / batch 1.
    done = [line.split(",")[0] for line in two.stderr.splitlines() if line.startswith("epoch ") and "(100%)" in line]
    assert done == ["epoch 1/1: 2/2 it (100%)"], two.stderr[-3000:]
    assert two.stdout.count("learning rate ") == 1, two.stdout[-3000:]  # one epoch, printed once


@pytest.mark.parametrize("pool_size", ["0", "3"])
def test_a_job_resumed_mid_epoch_ends_as_the_uninterrupted_one(tmp_path, pool_size):
    """Both runs share one checkpoints directory, as a real job does. The first trains straight through a shuffled
    epoch (4 steps per rank) and keeps the state after step 2 (--save_by_iter); the second, without --seed (so
    the shards' shuffle seed is drawn afresh), resumes from that state: every rank must skip its own 2 trained
    batches, in the saved order, take back its own image pool, and end bit for bit where the first run ended."""
    data = unaligned_dataset(tmp_path / "data", count=8, size=32)
    args = [*BASE, *MODELS["cycle_gan"][1], "--dataroot", str(data), "--name", "run", "--batch_size", "1",
            "--save_latest_freq", "4", "--save_by_iter", "--pool_size", pool_size]
    shared = {"I2I_TEST_CHECKPOINTS": str(tmp_path / "checkpoints")}
    straight = launch(tmp_path / "straight", [*args, "--seed", "0"], nproc=2, extra_env=shared)
    assert straight.returncode == 0, straight.stderr[-3000:]
    state = torch.load(tmp_path / "checkpoints" / "run" / "iter_4_state.pth", weights_only=True)
    assert (state["epoch"], state["epoch_iter"], state["world_size"]) == (1, 4, 2)  # 2 steps x 1 image x 2 ranks
    assert len(state["ranks"]) == 2
    pools = [part["pools"]["fake_A_pool"]["images"] for part in state["ranks"]]
    assert [len(p) for p in pools] == [2 * (pool_size != "0")] * 2  # each rank's own two fakes
    if pool_size != "0":
        assert any(not torch.equal(a, b) for a, b in zip(*pools))  # the ranks' shards gave different fakes

    resumed = launch(tmp_path / "resumed", [*args, "--continue_train", "--load_iter", "4"], nproc=2,
                     extra_env=shared)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "iter_4_state.pth: epoch 1, 4 samples into it" in resumed.stdout, resumed.stdout[-3000:]
    expected = torch.load(tmp_path / "straight" / "weights_rank0.pt", weights_only=True)
    for rank in (0, 1):
        got = torch.load(tmp_path / "resumed" / f"weights_rank{rank}.pt", weights_only=True)
        for kind in ("weights", "grads", "outputs"):
            assert got[kind].keys() == expected[kind].keys(), kind
            for key, value in expected[kind].items():
                assert torch.equal(got[kind][key], value), f"rank {rank}: {kind} {key} differs from the straight run"


def test_a_failure_on_one_rank_ends_the_job_with_its_message(tmp_path):
    data = unaligned_dataset(tmp_path / "data", count=4, size=32)
    args = [*COMMON, *MODELS["cycle_gan"][1], "--dataroot", str(data), "--name", "run", "--dist_timeout", "60"]
    result = launch(tmp_path / "fail", args, nproc=2, extra_env={"I2I_TEST_FAIL_RANK": "1"}, timeout=120)
    assert result.returncode != 0
    assert "error: [rank 1] injected failure for the test" in result.stderr, result.stderr[-3000:]
    assert not (tmp_path / "fail" / "weights_rank0.pt").exists()


def _leave_spawned_worker() -> None:
    """End a gloo worker of mp.spawn whose results are saved: without the interpreter's teardown, where a thread
    left by gloo sometimes aborts the process ("terminate called without an active exception", SIGABRT, about one
    run in ten here), which mp.spawn reports as a failure of the test."""
    import torch.distributed as dist

    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _collectives_worker(rank: int, init_file: str, results: str) -> None:
    """One of two gloo processes: the gradient-averaging hook on hand-made parameters."""
    import torch.distributed as dist

    from util import collectives as distributed

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
    _leave_spawned_worker()


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


class Indices(torch.utils.data.Dataset):
    """Items that are their own index, to see which samples a loader yields."""

    def __init__(self, length: int) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"A": torch.tensor(index)}


def rank_loader(rank: int, world: int, sampler_seed: int, data_seed: int, length: int = 11):
    """What `create_dataset(opt, sampler=Distributed(...).sampler(opt))` gives rank `rank`: shuffled, batches of 2."""
    from data import DatasetLoader

    opt = argparse.Namespace(batch_size=2, serial_batches=False, max_dataset_size=math.inf, seed=data_seed,
                             num_threads=0, gpu_ids=[])
    sampler = torch.utils.data.DistributedSampler(Indices(length), num_replicas=world, rank=rank, shuffle=True,
                                                  seed=sampler_seed, drop_last=False)
    return DatasetLoader(opt, Indices(length), sampler)


def epoch_batches(state, loader, epoch: int) -> list[list[int]]:
    """The batches `loader` yields in `epoch` after `state.begin_epoch` (train.py's order of calls)."""
    state.begin_epoch(epoch)
    return [batch["A"].tolist() for batch in loader]


class NoNetworks:
    """A model without networks: only the data order is saved and restored."""

    device = torch.device("cpu")

    def training_state(self, shared: bool = True) -> dict:
        return {"pools": {}} | ({"nets": {}, "optimizers": [], "schedulers": [], "scalers": {}, "metric": 0.0}
                                if shared else {})

    def load_training_state(self, state, source) -> None:
        pass

    def save_networks(self, tag) -> None:
        pass


def fresh_state(tmp_path: Path, loader, world: int):
    from engine.training_state import TrainingState

    opt = argparse.Namespace(checkpoints_dir=str(tmp_path), name="run", epoch_count=1, n_epochs=1, n_epochs_decay=0,
                             nan_policy="stop", keep_last=0)
    state = TrainingState(opt, NoNetworks(), loader)
    state.world_size = world  # as `world_size()` reads it in a torchrun process
    return state


@pytest.mark.parametrize("world", [2, 3])
def test_each_rank_skips_only_the_batches_of_its_own_shard(tmp_path, world):
    """After k steps the job has trained k x batch x world samples (train.py's count): each rank resumes with the
    tail of the batches it would have drawn in the uninterrupted epoch, and none of them was trained already."""
    epoch, steps = 3, 1
    trained, rest = [], []
    for rank in range(world):
        loader = rank_loader(rank, world, sampler_seed=5, data_seed=7)
        full = epoch_batches(fresh_state(tmp_path, loader, world), loader, epoch)
        loader = rank_loader(rank, world, sampler_seed=5, data_seed=7)
        state = fresh_state(tmp_path, loader, world)
        state.epoch_iter, state._skip_epoch = steps * 2 * world, epoch  # as `load` leaves a mid-epoch state
        tail = epoch_batches(state, loader, epoch)
        assert tail == full[steps:] and tail, f"rank {rank} of {world}"
        trained += [i for batch in full[:steps] for i in batch]
        rest += [i for batch in tail for i in batch]
    assert len(trained) == steps * 2 * world
    assert set(trained) | set(rest) == set(range(11))  # every sample, some twice: the shards' padding


def test_a_saved_state_restores_the_shards_order_and_warns_on_another_world_size(tmp_path):
    """Saved by rank 1 of 2 after one step; reloaded by a rank whose sampler and data seeds were drawn afresh (a
    job without --seed): the epoch goes on in the saved order. Another number of processes cannot, and is told."""
    loader = rank_loader(1, 2, sampler_seed=5, data_seed=7)
    saving = fresh_state(tmp_path, loader, world=2)
    full = epoch_batches(saving, loader, 1)
    saving.save_latest(1, 4, 4)  # epoch 1, 4 samples in: one step of 2 images on each of 2 ranks
    loader = rank_loader(1, 2, sampler_seed=9, data_seed=8)
    restarted = fresh_state(tmp_path, loader, world=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same world size: no warning
        restarted.load(tmp_path / "run" / "latest_state.pth")
    assert epoch_batches(restarted, loader, 1) == full[1:]

    other = fresh_state(tmp_path, rank_loader(1, 3, sampler_seed=9, data_seed=8), world=3)
    with pytest.warns(UserWarning, match="by 2 process.*resumes with 3: the rest of that epoch is split afresh"):
        other.load(tmp_path / "run" / "latest_state.pth")


def _agreement_worker(rank: int, init_file: str, results: str) -> None:
    """One of two gloo processes: what rank 0 decides (data seed, plateau metric) every rank must use."""
    import torch.distributed as dist

    from engine.evaluator import TrainingEvaluator
    from engine.training_state import share_data_seed

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    loader = rank_loader(rank, 2, sampler_seed=5, data_seed=100 + rank)  # without --seed each rank drew its own
    share_data_seed(loader)
    plain = TrainingEvaluator(SimpleNamespace(eval_freq=0))
    # --eval_freq on rank 1 builds nothing (no dataroot here: building the test split would fail) and evaluates
    # nothing; rank 0's evaluator is set up by hand with a score, as after its evaluation.
    opt = SimpleNamespace(eval_freq=1, eval_metric="psnr", epoch_count=1)
    evaluating = TrainingEvaluator(opt) if rank == 1 else TrainingEvaluator(SimpleNamespace(eval_freq=0))
    if rank == 0:
        evaluating.freq, evaluating.latest, evaluating.spec = 1, 25.0, SimpleNamespace(higher_is_better=True)
    torch.save({"data_seed": loader.state_dict()["data_seed"], "train_loss": plain.lr_metric(float(rank + 1)),
                "score": evaluating.lr_metric(float(rank + 1)),
                "rank1_scores": evaluating.end_of_epoch(None, 1, 1) if rank == 1 else None},
               f"{results}/{rank}.pt")
    _leave_spawned_worker()


def test_ranks_agree_on_the_data_seed_and_the_plateau_metric(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_agreement_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["data_seed"] == r1["data_seed"] == 100  # rank 0's: the one a training state saves
    assert r0["train_loss"] == r1["train_loss"] == 1.5  # no evaluation: the mean of the ranks' training losses
    assert r0["score"] == r1["score"] == -25.0  # rank 0's psnr, negated (higher is better)
    assert r1["rank1_scores"] == {}  # due, but rank 1 does not evaluate


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
    for name in r0["outputs"]:
        assert torch.equal(r0["outputs"][name], r1["outputs"][name]), name
        assert not torch.equal(r0["outputs"][name], r0["initial_outputs"][name]), f"{name} did not train"


def _sync_free_worker(rank: int, init_file: str, results: str) -> None:
    """One of two NCCL processes: gradient averaging of a step, with CUDA's sync debug mode raising on any host
    synchronisation (a device-to-host read would stall the CPU until the backward pass ends, every step)."""
    import torch.distributed as dist

    from util import collectives

    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"file://{init_file}", rank=rank, world_size=2)
    collectives.install_gradient_averaging(host_group=dist.new_group(backend="gloo"))
    net = torch.nn.Linear(4, 2).cuda()
    unused = torch.nn.Parameter(torch.zeros(3, device="cuda"))
    optimizer = torch.optim.SGD([*net.parameters(), unused], lr=0.1)
    for step in range(2):  # the first step also broadcasts rank 0's weights
        optimizer.zero_grad(set_to_none=True)
        net(torch.full((1, 4), float(rank + 1), device="cuda")).sum().backward()
        if step == 1:
            torch.cuda.set_sync_debug_mode("error")
        try:
            collectives.sync_optimizer(optimizer)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        optimizer.step()
    torch.save({"grad": net.weight.grad.cpu(), "unused": unused.grad}, f"{results}/{rank}.pt")
    collectives.uninstall_gradient_averaging()
    dist.destroy_process_group()


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_gradient_averaging_on_gpus_never_waits_for_the_device(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_sync_free_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in (0, 1))
    assert torch.equal(r0["grad"], r1["grad"]) and torch.allclose(r0["grad"], torch.full((2, 4), 1.5))
    assert r0["unused"] is None and r1["unused"] is None
