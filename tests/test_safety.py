"""Nothing lost, nothing executed: malicious checkpoints are refused, a failed write keeps the previous
checkpoint and stops with one line, and a diverging run stops (or skips the step) before saving garbage."""

from __future__ import annotations

import errno
import json
import os
import pickle
import tempfile

import pytest
import torch

from tests.helpers import load_script, tiny_args, unaligned_dataset, write_images
from util.checkpoint import load_state_dict
from util.cli import run_main
from util.errors import I2IError


class Payload:
    """Unpickling this runs `exec`, which writes a file: the proof that pickled code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny nets: more threads only contend on the shared CPU
    yield
    torch.set_num_threads(threads)


def run_cli(script: str, args: list[str], capsys) -> tuple[int, str]:
    """Run a driver in this process, as `python <script>.py args` would -> (exit status, stderr)."""
    capsys.readouterr()
    try:
        run_main(load_script(script).main, args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def assert_one_error_line(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def train_args(root, tmp, name="run", *extra: str) -> list[str]:
    return tiny_args(root, tmp) + ["--name", name, "--seed", "0", "--ngf", "4", "--ndf", "4", "--netG",
                                   "resnet_6blocks", "--n_epochs", "1", "--n_epochs_decay", "0", "--pool_size", "0",
                                   "--print_freq", "100", "--save_latest_freq", "2", *extra]


# -- pickled code ------------------------------------------------------------------------------------------

def test_the_payload_is_real(tmp_path):
    """Guard for the tests below: plain unpickling of this file does run the code."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps({"w": Payload(marker)}))
    assert marker.read_text() == "pwned"


def test_malicious_checkpoint_is_refused_and_its_code_never_runs(tmp_path, capsys):
    marker = tmp_path / "pwned.txt"
    run_dir = tmp_path / "checkpoints" / "evil"
    run_dir.mkdir(parents=True)
    torch.save({"model.1.weight": torch.zeros(1), "hook": Payload(marker)}, run_dir / "latest_net_G.pth")
    with pytest.raises(I2IError, match="refused to load"):
        load_state_dict(run_dir / "latest_net_G.pth")
    images = tmp_path / "images"
    write_images(images, 1)
    code, err = run_cli("test", tiny_args(images, tmp_path, train=False) + ["--model", "test", "--name", "evil"],
                        capsys)
    assert_one_error_line(code, err, "refused to load", "latest_net_G.pth", "never executes")
    assert not marker.exists(), "the pickled payload ran"


def test_malicious_training_state_is_refused(tmp_path, capsys):
    marker = tmp_path / "pwned.txt"
    root = unaligned_dataset(tmp_path / "data")
    assert run_cli("train", train_args(root, tmp_path), capsys)[0] == 0
    state_path = tmp_path / "checkpoints" / "run" / "latest_state.pth"
    state = torch.load(state_path, weights_only=True)
    state["rng"]["python"] = Payload(marker)
    torch.save(state, state_path)
    code, err = run_cli("train", train_args(root, tmp_path, "run", "--continue_train"), capsys)
    assert_one_error_line(code, err, "refused to load", "latest_state.pth")
    assert not marker.exists(), "the pickled payload ran"


# -- failed writes -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("failure", ["disk full", "permission denied"])
def test_failed_write_keeps_the_previous_checkpoint_and_stops_cleanly(failure, tmp_path, capsys, monkeypatch):
    root = unaligned_dataset(tmp_path / "data", count=3)
    run_dir = tmp_path / "checkpoints" / "run"
    first_state = run_dir / "latest_state.pth"
    real_fsync, real_mkstemp = os.fsync, tempfile.mkstemp

    def fsync(fd):  # the disk fills up once the first training state is on it
        if first_state.exists():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    def mkstemp(*args, **kwargs):  # the folder turns read-only once the first training state is in it
        if first_state.exists():
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_mkstemp(*args, **kwargs)

    if failure == "disk full":
        monkeypatch.setattr(os, "fsync", fsync)
    else:
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    code, err = run_cli("train", train_args(root, tmp_path, "run", "--save_latest_freq", "1"), capsys)
    expected = "No space left on device" if failure == "disk full" else "Permission denied"
    assert_one_error_line(code, err, "could not write", expected, str(run_dir))
    monkeypatch.undo()
    state = torch.load(first_state, weights_only=True)
    assert state["total_iters"] == 1, "the previous training state is intact"
    assert not list(run_dir.glob(".*.tmp")), "no temporary file left behind"
    assert {f"latest_net_{n}.pth" for n in ("G_A", "G_B", "D_A", "D_B")} <= {p.name for p in run_dir.iterdir()}


# -- divergence --------------------------------------------------------------------------------------------

def poison(monkeypatch, at_call: int, what: str) -> None:
    """From the `at_call`-th step on, make loss G_A NaN (`loss`) or G_A's gradients NaN once (`grad`)."""
    from models.cycle_gan_model import CycleGANModel

    real_backward_g, calls = CycleGANModel.backward_G, [0]

    def backward_G(self):
        real_backward_g(self)
        calls[0] += 1
        if what == "loss" and calls[0] >= at_call:
            self.loss_G_A = torch.tensor(float("nan"))
        if what == "grad" and calls[0] == at_call:
            for p in self.netG_A.parameters():
                p.grad.fill_(float("nan"))

    monkeypatch.setattr(CycleGANModel, "backward_G", backward_G)


def test_nan_loss_stops_before_saving_and_names_loss_and_iteration(tmp_path, capsys, monkeypatch):
    root = unaligned_dataset(tmp_path / "data", count=4)
    poison(monkeypatch, at_call=3, what="loss")
    code, err = run_cli("train", train_args(root, tmp_path), capsys)
    assert_one_error_line(code, err, "loss G_A is nan at total_iters 3", "last good checkpoint is kept",
                          "--nan_policy skip")
    state = torch.load(tmp_path / "checkpoints" / "run" / "latest_state.pth", weights_only=True)
    assert state["total_iters"] == 2, "the checkpoint of total_iters 2 was kept; the one at 4 was refused"


def test_nan_gradient_stops_before_saving_nan_weights(tmp_path, capsys, monkeypatch):
    root = unaligned_dataset(tmp_path / "data", count=4)
    poison(monkeypatch, at_call=4, what="grad")  # losses stay finite; the weights do not
    code, err = run_cli("train", train_args(root, tmp_path), capsys)
    assert_one_error_line(code, err, "non-finite weights", "net G_A")
    state = torch.load(tmp_path / "checkpoints" / "run" / "latest_state.pth", weights_only=True)
    assert state["total_iters"] == 2


def test_nan_policy_skip_drops_the_bad_step(tmp_path, capsys, monkeypatch):
    root = unaligned_dataset(tmp_path / "data", count=4)
    poison(monkeypatch, at_call=3, what="grad")
    with pytest.warns(UserWarning, match="skipped 1 optimizer steps with non-finite gradients"):
        code, err = run_cli("train", train_args(root, tmp_path, "run", "--nan_policy", "skip", "--print_freq", "1"),
                            capsys)
    assert code == 0, err
    run_dir = tmp_path / "checkpoints" / "run"
    weights = torch.load(run_dir / "latest_net_G_A.pth", weights_only=True)
    assert all(torch.isfinite(v).all() for v in weights.values())
    logged = [json.loads(line)["total_iters"] for line in (run_dir / "loss_log.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]


# -- safetensors -------------------------------------------------------------------------------------------

def test_safetensors_checkpoints_train_and_test_without_the_flag(tmp_path, capsys):
    pytest.importorskip("safetensors")
    root = unaligned_dataset(tmp_path / "data")
    assert run_cli("train", train_args(root, tmp_path, "st", "--checkpoint_format", "safetensors"), capsys)[0] == 0
    run_dir = tmp_path / "checkpoints" / "st"
    assert (run_dir / "latest_net_G_A.safetensors").is_file() and not (run_dir / "latest_net_G_A.pth").exists()
    from safetensors.torch import load_file

    assert torch.equal(load_file(run_dir / "latest_net_G_A.safetensors")["model.1.weight"],
                       torch.load(run_dir / "latest_state.pth", weights_only=True)["nets"]["G_A"]["model.1.weight"])
    # test.py finds the .safetensors files by itself (and the architecture in train_opt.json).
    args = ["--dataroot", str(root / "testA"), "--checkpoints_dir", str(tmp_path / "checkpoints"), "--gpu_ids", "-1",
            "--crop_size", "32", "--num_threads", "0", "--model", "test", "--model_suffix", "_A", "--name", "st"]
    code, err = run_cli("test", args, capsys)
    assert code == 0, err


def test_safetensors_without_the_package_says_how_to_install(tmp_path, monkeypatch):
    import sys

    from util.checkpoint import save_state_dict

    monkeypatch.setitem(sys.modules, "safetensors", None)  # `import safetensors` now raises ImportError
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(I2IError, match="pip install safetensors"):
        save_state_dict({"w": torch.zeros(2)}, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()
