"""One run per run folder: a live run's lock, stale locks, no silent overwrite, and a job stopped before its
first checkpoint that is started again with --continue_train (what a requeued job does)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import ROOT, run_script, unaligned_dataset
from util.checkpoint import saved_checkpoints
from util.run_folder import LOCK_NAME, RunLock, clear_run

SEED = "3"


def args(root: Path, tmp: Path, name: str, *extra: str) -> list[str]:
    """A run of a few seconds that saves only at its end (no latest saves, no epoch saves before the last)."""
    return ["--dataroot", str(root), "--checkpoints_dir", str(tmp / "checkpoints"), "--name", name, "--gpu_ids", "-1",
            "--ngf", "8", "--ndf", "8", "--netG", "resnet_6blocks", "--load_size", "64", "--crop_size", "64",
            "--num_threads", "0", "--display_id", "0", "--n_epochs", "4", "--n_epochs_decay", "0",
            "--print_freq", "1", "--save_latest_freq", "100000", "--save_epoch_freq", "100", "--pool_size", "4",
            "--seed", SEED, *extra]


def start(arguments: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "train.py"), *arguments], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "latest_net_G_A.pth", weights_only=True)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return unaligned_dataset(tmp_path_factory.mktemp("run_folder_data"), count=16, size=64)


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory) -> dict[str, torch.Tensor]:
    """The weights of the run trained in one go, which every other run of these tests must end with."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    result = run_script("train.py", args(data, tmp, "whole"), cwd=tmp)
    assert result.returncode == 0, result.stderr[-2000:]
    return weights(tmp / "checkpoints" / "whole")


def test_a_job_killed_before_its_first_checkpoint_restarts_from_the_beginning(data, tmp_path, uninterrupted):
    run_dir = tmp_path / "checkpoints" / "job"
    first = start(args(data, tmp_path, "job"), tmp_path)
    wait_for(run_dir / "loss_log.jsonl", first)  # training has begun
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert saved_checkpoints(run_dir) == [] and (run_dir / LOCK_NAME).is_file()  # killed before any save
    again = run_script("train.py", args(data, tmp_path, "job", "--continue_train"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]  # the killed run's lock does not block
    assert f"--continue_train: {run_dir} holds no checkpoint yet" in again.stdout
    for key, value in weights(run_dir).items():
        assert torch.equal(value, uninterrupted[key]), key


def test_a_second_live_run_is_refused_and_the_first_finishes_intact(data, tmp_path, uninterrupted):
    run_dir = tmp_path / "checkpoints" / "busy"
    first = start(args(data, tmp_path, "busy"), tmp_path)
    wait_for(run_dir / "loss_log.jsonl", first)
    for extra in ([], ["--continue_train"]):
        second = run_script("train.py", args(data, tmp_path, "busy", *extra), cwd=tmp_path)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"is in use by another live run (PID {first.pid} on " in lines[0], lines
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-2000:]
    for key, value in weights(run_dir).items():
        assert torch.equal(value, uninterrupted[key]), key


def test_a_fresh_run_over_a_trained_one_stops_without_touching_it(data, tmp_path):
    done = run_script("train.py", args(data, tmp_path, "trained", "--n_epochs", "1"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = tmp_path / "checkpoints" / "trained"
    before = digest(run_dir)
    again = run_script("train.py", args(data, tmp_path, "trained", "--n_epochs", "1"), cwd=tmp_path)
    assert again.returncode == 2
    message = again.stderr.strip()
    assert message.startswith(f"error: {run_dir} holds a trained run (")
    assert "--continue_train" in message and "--overwrite_run" in message and "\n" not in message
    assert digest(run_dir) == before
    over = run_script("train.py", args(data, tmp_path, "trained", "--n_epochs", "1", "--overwrite_run"), cwd=tmp_path)
    assert over.returncode == 0, over.stderr[-2000:]
    assert f"--overwrite_run: removed {run_dir / 'latest_net_G_A.pth'}" in over.stdout
    assert len((run_dir / "loss_log.txt").read_text().splitlines()) < len(before) + 100  # a new log, not appended
    assert {p.name for p in saved_checkpoints(run_dir)} == {p for p in before if "_net_" in p or "_state" in p}


def test_continue_train_under_a_mistyped_name_says_so_and_creates_nothing(data, tmp_path):
    done = run_script("train.py", args(data, tmp_path, "horse2zebra", "--n_epochs", "1"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    typo = run_script("train.py", args(data, tmp_path, "horse2zebr", "--continue_train"), cwd=tmp_path)
    assert typo.returncode == 2
    assert "there is no run" in typo.stderr and "Did you mean --name horse2zebra?" in typo.stderr
    assert not (tmp_path / "checkpoints" / "horse2zebr").exists()
    epoch = run_script("train.py", args(data, tmp_path, "horse2zebra", "--continue_train", "--epoch", "7"),
                       cwd=tmp_path)
    assert epoch.returncode == 2 and "7_net_G_A.pth does not exist" in epoch.stderr
    # A job script that always passes --continue_train creates the run folder before its first start.
    (tmp_path / "checkpoints" / "job").mkdir()
    first = run_script("train.py", args(data, tmp_path, "job", "--continue_train", "--n_epochs", "1"), cwd=tmp_path)
    assert first.returncode == 0 and "holds no checkpoint yet" in first.stdout


def test_run_lock_is_exclusive_across_processes_and_released(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]);"
                               "from util.run_folder import RunLock; lock = RunLock(sys.argv[2]).acquire(); print('held', "
                               "flush=True); time.sleep(60)", str(ROOT), str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match=f"in use by another live run \\(PID {holder.pid} "):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path):  # the dead holder's lock is taken over
        pass
    assert (tmp_path / LOCK_NAME).is_file()


def test_clear_run_removes_only_what_a_run_writes(tmp_path):
    for name in ("latest_net_G.pth", "5_net_D.safetensors", "latest_state.pth", "loss_log.txt", "notes.md",
                 "train_opt.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "web" / "images").mkdir(parents=True)
    removed = {p.name for p in clear_run(tmp_path)}
    assert removed == {"latest_net_G.pth", "5_net_D.safetensors", "latest_state.pth", "loss_log.txt", "web"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.md", "train_opt.txt"]
    assert os.path.exists(tmp_path / "notes.md")
