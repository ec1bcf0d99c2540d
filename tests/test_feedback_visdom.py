"""Visdom end to end: a real server on loopback, a short real training, the windows read back through
visdom's own client; and the same training with no server, which completes with a single warning.

The server is started as `visdom.server.run_server.main()` with `-port N --hostname 127.0.0.1 -env_path DIR`:
`python -m visdom.server` first downloads its web assets, which fails offline. The data API used here
does not need those assets.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ROOT, run_script, tiny_args, unaligned_dataset

visdom = pytest.importorskip("visdom")

SERVER = ("import sys; from visdom.server.run_server import main; "
          "sys.argv = ['visdom', '-port', sys.argv[1], '--hostname', '127.0.0.1', '-env_path', sys.argv[2], "
          "'-bind_local', '-logging_level', 'WARNING']; main()")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"visdom server exited: {process.communicate()[1][-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"visdom server did not open port {port} in {seconds} s")


def _start_server(port: int, env_path: Path) -> subprocess.Popen:
    env_path.mkdir(exist_ok=True)
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(env_path)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_port(port, process)
    except RuntimeError:
        _stop(process)
        raise
    return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def visdom_server(tmp_path):
    """A real visdom server on a free loopback port; yields the port."""
    port = _free_port()
    process = _start_server(port, tmp_path / "visdom_env")
    try:
        yield port
    finally:
        _stop(process)


def _train_args(tmp_path, port: int, env: str, epochs: int = 1) -> list[str]:
    root = unaligned_dataset(tmp_path / "data", count=2)
    args = tiny_args(root, tmp_path, train=False)  # (train=False: without its --display_id 0)
    return args + ["--name", "vis", "--n_epochs", str(epochs), "--n_epochs_decay", "1", "--display_id", "1",
                   "--display_server", "http://127.0.0.1", "--display_port", str(port), "--display_env", env,
                   "--display_freq", "1", "--print_freq", "1", "--display_ncols", "3"]


def _train(tmp_path, port: int, env: str) -> subprocess.CompletedProcess:
    return run_script("train.py", _train_args(tmp_path, port, env), cwd=tmp_path)


def test_training_fills_the_visdom_windows(tmp_path, visdom_server):
    train = _train(tmp_path, visdom_server, env="i2i_test")
    assert train.returncode == 0, train.stderr[-3000:]
    assert "no visdom server" not in train.stderr and "lost the visdom server" not in train.stderr

    vis = visdom.Visdom(server="http://127.0.0.1", port=visdom_server, env="i2i_test", raise_exceptions=True,
                        use_incoming_socket=False)
    assert "i2i_test" in vis.get_env_list()
    for win in ("1", "2", "3", "1_options"):
        assert vis.win_exists(win, env="i2i_test"), f"window {win} missing"

    # Loss window: one trace per loss, named by the legend, one point per logged step (2 epochs x 2 samples),
    # at x = epoch + fraction of the epoch, as in the loss log.
    loss = json.loads(vis.get_window_data(win="1", env="i2i_test"))
    traces = {trace["name"]: trace for trace in loss["content"]["data"]}
    assert set(traces) == {"D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"}
    records = [json.loads(x) for x in (tmp_path / "checkpoints" / "vis" / "loss_log.jsonl").read_text().splitlines()]
    assert len(records) == 4
    assert traces["G_A"]["x"] == pytest.approx([1.5, 2.0, 2.5, 3.0])
    assert traces["G_A"]["y"] == pytest.approx([r["losses"]["G_A"] for r in records])
    assert loss["title"] == "vis loss over time"

    # Image window: the visuals as one grid (cycle_gan shows 8: real/fake/rec/idt for A and B; 3 a row).
    images = json.loads(vis.get_window_data(win="2", env="i2i_test"))
    assert images["type"] == "image" and images["title"] == "vis images"
    src = images["content"]["src"]
    assert src.startswith("data:image/")
    with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as grid:
        pixels = np.asarray(grid.convert("RGB"))
    # 8 visuals + 1 white tile = 3 rows of 3 tiles of 32 px in 36-px cells (visdom puts a tile 3 px in).
    assert pixels.shape == (3 * 36, 3 * 36, 3)
    assert pixels[2 * 36 + 3 : 2 * 36 + 35, 2 * 36 + 3 : 2 * 36 + 35].min() == 255  # the padding tile
    assert pixels[3:35, 3:35].std() > 5  # a real image in the first tile
    labels = json.loads(vis.get_window_data(win="3", env="i2i_test"))["content"]
    for name in ("real_A", "fake_B", "rec_A", "idt_B"):
        assert f">{name}</td>" in labels
    options = json.loads(vis.get_window_data(win="1_options", env="i2i_test"))["content"]
    assert "<td>display_env</td><td>i2i_test</td>" in options and "<td>ngf</td><td>8</td>" in options


def test_no_server_training_completes_with_one_warning(tmp_path):
    port = _free_port()  # nothing listens there
    train = _train(tmp_path, port, env="none")
    assert train.returncode == 0, train.stderr[-3000:]
    warnings = [line for line in train.stderr.splitlines() if "visdom" in line.lower()]
    assert len(warnings) == 1, train.stderr
    assert f"python -m visdom.server -p {port}" in warnings[0] and "continues" in warnings[0]
    assert "Traceback" not in train.stderr and "Connection refused" not in train.stderr
    assert (tmp_path / "checkpoints" / "vis" / "latest_net_G_A.pth").is_file()
    assert (tmp_path / "checkpoints" / "vis" / "web" / "index.html").is_file()


@pytest.mark.slow  # a training of 24 steps with a page and a Visdom attempt each: 1-5 min on 2 loaded cores
def test_a_server_started_mid_run_gets_the_whole_loss_history(tmp_path):
    """No server when training starts; one comes up after losses were logged; window 1 ends with every point."""
    port = _free_port()
    log = tmp_path / "checkpoints" / "vis" / "loss_log.jsonl"
    env = {**os.environ, "PYTHONWARNINGS": "ignore::FutureWarning", "I2I_VISDOM_RETRY_SECONDS": "1"}
    train = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *_train_args(tmp_path, port, "late", epochs=11)],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    server = None
    try:
        deadline = time.monotonic() + 300
        while not (log.is_file() and len(log.read_text().splitlines()) >= 3):  # training has begun, unseen
            assert train.poll() is None and time.monotonic() < deadline, "training ended before logging 3 steps"
            time.sleep(0.2)
        server = _start_server(port, tmp_path / "visdom_env")
        logged_before_server = len(log.read_text().splitlines())
        _, stderr = train.communicate(timeout=600)
    finally:
        if train.poll() is None:
            train.kill()
            train.communicate()
    try:
        assert train.returncode == 0, stderr[-3000:]
        assert "no visdom server" in stderr  # it did start without one
        records = [json.loads(line) for line in log.read_text().splitlines()]
        assert len(records) > logged_before_server, "training ended before the server was up: nothing was tested"
        vis = visdom.Visdom(server="http://127.0.0.1", port=port, env="late", raise_exceptions=True,
                            use_incoming_socket=False)
        traces = {t["name"]: t for t in json.loads(vis.get_window_data(win="1", env="late"))["content"]["data"]}
        assert traces["G_A"]["y"] == pytest.approx([r["losses"]["G_A"] for r in records])  # from the first step
        assert traces["G_A"]["x"] == pytest.approx([r["epoch"] + r["iters"] / r["dataset_size"] for r in records])
    finally:
        _stop(server)
