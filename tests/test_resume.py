"""Exact resume: a training process killed with SIGKILL at arbitrary moments, once in the middle of writing a
checkpoint, and resumed with `--continue_train` alone logs the same per-iteration losses and ends with the same
weights, bit for bit, as an uninterrupted run with the same `--seed`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import ROOT, tiny_args, unaligned_dataset

# Runs train.py with os.replace slowed down at the N-th training-state write, to kill the process in the middle
# of writing a checkpoint: the temporary file is complete on disk but not yet renamed over the previous one.
WRAPPER = """
import os, runpy, sys, time
slow_write, marker = int(os.environ.get("SLOW_STATE_WRITE", "0")), os.environ.get("SLOW_MARKER", "")
real_replace, writes = os.replace, [0]

def replace(src, dst):
    if slow_write and str(dst).endswith("_state.pth") and not str(src).endswith(".link.tmp"):
        writes[0] += 1
        if writes[0] == slow_write:
            open(marker, "w").close()
            time.sleep(600)
    return real_replace(src, dst)

os.replace = replace
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(sys.argv[0]))
runpy.run_path(sys.argv[0], run_name="__main__")
"""

NETS = ["G_A", "G_B", "D_A", "D_B"]
# One intra-op thread: on a shared 2-core machine several busy-waiting threads per process slow runs down ~4x.
QUIET_ONE_THREAD = {"PYTHONWARNINGS": "ignore::FutureWarning", "OMP_NUM_THREADS": "1"}


def train_args(root: Path, tmp: Path, name: str) -> list[str]:
    """9 iterations (3 images x 3 epochs), every loss logged, a training state every 2 samples and epoch."""
    return tiny_args(root, tmp, size=32) + [
        "--name", name, "--seed", "1", "--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--load_size", "36",
        "--pool_size", "2", "--n_epochs", "2", "--n_epochs_decay", "1", "--print_freq", "1",
        "--save_latest_freq", "2", "--save_epoch_freq", "1", "--keep_last", "2"]


def log_records(run_dir: Path) -> list[tuple]:
    lines = (run_dir / "loss_log.jsonl").read_text().splitlines() if (run_dir / "loss_log.jsonl").is_file() else []
    return [(r["epoch"], r["iters"], r["total_iters"], r["losses"]) for r in map(json.loads, lines)]


def start(args: list[str], cwd: Path, **env: str) -> subprocess.Popen:
    wrapper = cwd / "slow_replace.py"
    wrapper.write_text(WRAPPER)
    log = open(cwd / "child.log", "a")
    return subprocess.Popen([sys.executable, str(wrapper), str(ROOT / "train.py"), *args], cwd=cwd, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, **QUIET_ONE_THREAD, **env})


def run_train(args: list[str], cwd: Path, script: str = "train.py") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **QUIET_ONE_THREAD}, timeout=600)


def run_test(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_train(args, cwd, script="test.py")


def kill_when(proc: subprocess.Popen, ready, cwd: Path, what: str) -> None:
    """SIGKILL the process (and its loader workers) as soon as `ready()` holds."""
    deadline = time.monotonic() + 300
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
            pytest.fail(f"train.py ended before {what} (status {proc.returncode}):\n"
                        + (cwd / "child.log").read_text()[-3000:])
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    root = unaligned_dataset(tmp / "data", count=3)
    result = run_train(train_args(root, tmp, "straight"), cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, root, tmp / "checkpoints" / "straight"


def test_killed_and_resumed_run_matches_the_uninterrupted_one(uninterrupted):
    tmp, root, straight = uninterrupted
    run_dir = tmp / "checkpoints" / "killed"
    # The interrupted run loads with a DataLoader worker: augmentations must not depend on who loads an item.
    args = train_args(root, tmp, "killed") + ["--num_threads", "1"]
    resume = args + ["--continue_train"]

    # 1. Killed mid-iteration, after its first training state.
    proc = start(args, tmp)
    kill_when(proc, lambda: (run_dir / "latest_state.pth").is_file() and len(log_records(run_dir)) >= 3, tmp,
              "the third logged iteration")
    # 2. Resumed, then killed while writing its second training state (the temporary file is complete but not
    #    yet renamed): the previous state must still be the one resumed from.
    marker = tmp / "writing"
    proc = start(resume, tmp, SLOW_STATE_WRITE="2", SLOW_MARKER=str(marker))
    kill_when(proc, marker.is_file, tmp, "the second state write")
    assert list(run_dir.glob(".*.tmp")), "the kill should leave the half-done write behind"
    # 3. Resumed, killed again later on.
    proc = start(resume, tmp)
    kill_when(proc, lambda: len(log_records(run_dir)) >= 7, tmp, "the seventh logged iteration")
    # 4. Resumed to the end.
    proc = start(resume, tmp)
    assert proc.wait(timeout=600) == 0, (tmp / "child.log").read_text()[-3000:]
    assert not list(run_dir.glob(".*.tmp")), "resuming removes temporary files left by a killed write"

    expected, got = log_records(straight), log_records(run_dir)
    assert len(expected) == 9
    assert got == expected, ("loss sequences differ\nuninterrupted:\n" + "\n".join(map(str, expected))
                             + "\nkilled and resumed:\n" + "\n".join(map(str, got)))
    for name in NETS:
        a = torch.load(straight / f"latest_net_{name}.pth", weights_only=True)
        b = torch.load(run_dir / f"latest_net_{name}.pth", weights_only=True)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"net {name} differs"
    log = (tmp / "child.log").read_text()
    assert "resuming from" in log and "Traceback" not in log


def test_state_file_contents_and_keep_last(uninterrupted):
    _, _, straight = uninterrupted
    state = torch.load(straight / "latest_state.pth", weights_only=True)  # plain data only
    assert (state["epoch"], state["epoch_iter"], state["total_iters"]) == (4, 0, 9)  # resumes after the last epoch
    assert set(state["nets"]) == set(NETS) and len(state["optimizers"]) == len(state["schedulers"]) == 2
    assert [len(p["images"]) for p in state["pools"].values()] == [2, 2]
    assert json.loads(state["options"])["seed"] == 1 and state["i2i_version"]
    assert {"python", "numpy", "torch"} <= set(state["rng"])
    # --keep_last 2: epoch 1's files are gone, epochs 2 and 3 and latest remain.
    names = {p.name for p in straight.iterdir()}
    assert not any(n.startswith("1_") for n in names)
    assert {"2_state.pth", "3_state.pth", "latest_state.pth", "3_net_G_A.pth", "2_net_D_B.pth"} <= names


def test_weights_only_checkpoint_resumes_at_epoch_count(uninterrupted):
    """A run with only reference-format files (no *_state.pth) resumes as the reference does: --epoch_count."""
    tmp, root, straight = uninterrupted
    run_dir = tmp / "checkpoints" / "weights_only"
    run_dir.mkdir(parents=True)
    for name in NETS:
        (run_dir / f"latest_net_{name}.pth").write_bytes((straight / f"2_net_{name}.pth").read_bytes())
    args = train_args(root, tmp, "weights_only") + ["--continue_train", "--epoch_count", "3"]
    result = run_train(args, cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming from the weights latest_net_*.pth only, at --epoch_count 3" in result.stderr
    assert [r[:3] for r in log_records(run_dir)] == [(3, 1, 1), (3, 2, 2), (3, 3, 3)]


def test_test_py_reads_the_architecture_from_train_opt_json(uninterrupted):
    """No --netG/--ngf/--no_dropout needed to test an i2i run; a flag given explicitly still wins."""
    tmp, root, _ = uninterrupted
    base = ["--dataroot", str(root / "testA"), "--checkpoints_dir", str(tmp / "checkpoints"), "--gpu_ids", "-1",
            "--crop_size", "32", "--num_threads", "0", "--model", "test", "--name", "straight", "--num_test", "1"]
    for suffix in ("_A", "_B"):
        result = run_test(base + ["--model_suffix", suffix], cwd=tmp)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "architecture from" in result.stdout and "--netG resnet_6blocks" in result.stdout
    result = run_test(base + ["--model_suffix", "_A", "--ngf", "8"], cwd=tmp)
    assert result.returncode == 2 and "--ngf" in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_resuming_a_finished_run_says_how_to_train_on():
    import argparse

    from engine.training_state import TrainingState

    opt = argparse.Namespace(checkpoints_dir="ck", name="run", epoch_count=1, n_epochs=1, n_epochs_decay=1,
                             nan_policy="stop")
    state = TrainingState(opt, model=None, dataset=None)
    assert state.describe() == "starting at epoch 1"
    state.resumed_from, state.epoch, state.total_iters = Path("ck/run/latest_state.pth"), 3, 6
    assert "already finished its 2 epochs (raise --n_epochs or --n_epochs_decay" in state.describe()


@pytest.mark.skipif(not any(__import__("shutil").which(c) for c in ("g++", "c++", "clang++")),
                    reason="--compile on the CPU needs a C++ compiler")
def test_a_training_state_saved_with_compile_resumes_without_it(tmp_path):
    """torch.compile wraps each network (state_dict keys gain `_orig_mod.`); the state keeps the plain keys, so a
    run saved with --compile resumes without it (and the other way round)."""
    from models import create_model
    from options.train_options import TrainOptions

    root = unaligned_dataset(tmp_path / "data")
    args = tiny_args(root, tmp_path) + ["--name", "c", "--netG", "resnet_6blocks", "--seed", "0"]
    compiled = create_model(TrainOptions().parse([*args, "--compile"]))
    compiled.setup(compiled.opt)
    assert any(k.startswith("_orig_mod.") for k in compiled.netG_A.state_dict())  # compiled, not yet run
    state = compiled.training_state()
    assert not any("_orig_mod" in key for net in state["nets"].values() for key in net)
    plain = create_model(TrainOptions().parse(args + ["--seed", "1"]))
    plain.setup(plain.opt)
    plain.load_training_state(state, "state.pth")
    for name in compiled.model_names:
        for key, value in state["nets"][name].items():
            assert torch.equal(plain.training_state()["nets"][name][key], value), (name, key)
