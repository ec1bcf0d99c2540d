"""engine/visualizer.py: loss logs, the training page, visdom degrading gracefully, wandb, test-image saving."""

import json
import logging
import os
import re
import socket
import subprocess
import sys
import types
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from engine import visualizer as vz  # noqa: E402
from util.errors import I2IError  # noqa: E402
from util.html import HTML, ResultPages, save_test_images  # noqa: E402
from util.images import tensor2im  # noqa: E402

LINE = re.compile(r"^\(epoch: \d+, iters: \d+, time: \d+\.\d{3}, data: \d+\.\d{3}\) (\w+: -?\d+\.\d{3} )+$")
HEADER = re.compile(r"^================ Training Loss \(.+\) ================$")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _opt(tmp_path, **overrides):
    opt = dict(name="exp", checkpoints_dir=str(tmp_path), display_id=0, display_server="http://127.0.0.1",
               display_port=_free_port(), display_env="main", display_ncols=4, display_winsize=64, no_html=False,
               use_wandb=False, use_tensorboard=False, isTrain=True)
    opt.update(overrides)
    return SimpleNamespace(**opt)


def _visuals(seed=0, batch=2):
    g = torch.Generator().manual_seed(seed)
    return {"real_A": torch.rand(batch, 3, 8, 8, generator=g) * 2 - 1,
            "fake_B": torch.rand(batch, 3, 8, 8, generator=g) * 2 - 1,
            "rec_A": torch.rand(batch, 1, 8, 8, generator=g) * 2 - 1}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeVisdom:
    """Stands in for a running visdom server; records calls, or fails like a vanished one."""

    instances: list = []
    fail = False

    def __init__(self, server, port, env, raise_exceptions, **kwargs):
        assert raise_exceptions is True
        self.calls = []
        FakeVisdom.instances.append(self)

    def _record(self, kind, *args, **kwargs):
        if FakeVisdom.fail:
            raise ConnectionError("Error connecting to Visdom server")
        self.calls.append((kind, args, kwargs))

    def line(self, **kw):
        self._record("line", **kw)

    def images(self, *a, **kw):
        self._record("images", *a, **kw)

    def image(self, *a, **kw):
        self._record("image", *a, **kw)

    def text(self, *a, **kw):
        self._record("text", *a, **kw)

    def win_exists(self, win, env=None):
        if FakeVisdom.fail:
            raise ConnectionError("Error connecting to Visdom server")
        return True


@pytest.fixture
def fake_visdom(monkeypatch):
    FakeVisdom.instances, FakeVisdom.fail = [], False
    monkeypatch.setitem(sys.modules, "visdom", types.SimpleNamespace(Visdom=FakeVisdom))
    return FakeVisdom


@pytest.fixture
def no_spawning(monkeypatch):
    """Any attempt to start a process (the reference spawns a visdom server) fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"tried to start a process: {args}")
    for target, name in [(subprocess, "Popen"), (subprocess, "run"), (subprocess, "call"), (os, "system"),
                         (os, "popen")]:
        monkeypatch.setattr(target, name, refuse)


# ---- loss log ------------------------------------------------------------------------------------


def test_print_current_losses_writes_reference_line_and_jsonl(tmp_path, capsys):
    viz = vz.Visualizer(_opt(tmp_path))
    losses = {"D_A": 0.25, "G_A": 1.2346, "cycle_A": -0.5}
    viz.print_current_losses(3, 40, losses, t_comp=0.1234, t_data=0.0456, total_iters=840)
    viz.print_current_losses(3, 80, losses, t_comp=0.2, t_data=0.01)
    expected = "(epoch: 3, iters: 40, time: 0.123, data: 0.046) D_A: 0.250 G_A: 1.235 cycle_A: -0.500 "
    assert expected in capsys.readouterr().out.splitlines()

    lines = (tmp_path / "exp" / "loss_log.txt").read_text().splitlines()
    assert HEADER.match(lines[0])
    assert lines[1] == expected
    assert all(LINE.match(line) for line in lines[1:]) and len(lines) == 3

    records = [json.loads(x) for x in (tmp_path / "exp" / "loss_log.jsonl").read_text().splitlines()]
    assert records[0] == {"epoch": 3, "iters": 40, "total_iters": 840, "time": 0.1234, "data": 0.0456,
                          "losses": losses}
    assert "total_iters" not in records[1] and records[1]["iters"] == 80


def test_loss_log_appends_with_one_header_per_visualizer(tmp_path):
    for _ in range(2):  # e.g. a run and its --continue_train
        viz = vz.Visualizer(_opt(tmp_path))
        viz.print_current_losses(1, 1, {"G": 1.0}, 0.0, 0.0)
        viz.print_current_losses(1, 2, {"G": 1.0}, 0.0, 0.0)
    lines = (tmp_path / "exp" / "loss_log.txt").read_text().splitlines()
    assert [bool(HEADER.match(x)) for x in lines] == [True, False, False, True, False, False]
    assert len((tmp_path / "exp" / "loss_log.jsonl").read_text().splitlines()) == 4


# ---- training page ---------------------------------------------------------------------------------


def _headers(index: Path) -> list[str]:
    return re.findall(r"<h3>(.*?)</h3>", index.read_text())


def test_training_page_lists_epochs_newest_first_with_first_image_of_batch(tmp_path):
    viz = vz.Visualizer(_opt(tmp_path))
    for epoch in (1, 2, 3):
        viz.display_current_results(_visuals(seed=epoch), epoch, save_result=True)
    web = tmp_path / "exp" / "web"
    assert _headers(web / "index.html") == ["epoch [3]", "epoch [2]", "epoch [1]"]
    text = (web / "index.html").read_text()
    assert "Experiment name = exp" in text and 'http-equiv="refresh"' in text
    for epoch in (1, 2, 3):
        for label in ("real_A", "fake_B", "rec_A"):
            assert f'src="images/epoch{epoch:03d}_{label}.png"' in text
            assert (web / "images" / f"epoch{epoch:03d}_{label}.png").is_file()
    with Image.open(web / "images" / "epoch002_rec_A.png") as img:
        assert img.mode == "L"
        np.testing.assert_array_equal(np.asarray(img), tensor2im(_visuals(seed=2)["rec_A"], 0)[:, :, 0])

    viz.close()  # training over: the page stops reloading itself
    assert 'http-equiv="refresh"' not in (web / "index.html").read_text()
    assert _headers(web / "index.html") == ["epoch [3]", "epoch [2]", "epoch [1]"]


def test_saves_once_per_epoch_unless_save_result(tmp_path):
    viz = vz.Visualizer(_opt(tmp_path))
    image = tmp_path / "exp" / "web" / "images" / "epoch001_real_A.png"
    viz.display_current_results(_visuals(seed=1), 1, save_result=False)  # nothing saved this epoch yet
    first = image.read_bytes()
    viz.display_current_results(_visuals(seed=2), 1, save_result=False)
    assert image.read_bytes() == first
    viz.display_current_results(_visuals(seed=3), 1, save_result=True)
    assert image.read_bytes() != first


def test_resumed_run_keeps_earlier_epochs_and_scans_folder_once(tmp_path):
    vz.Visualizer(_opt(tmp_path)).display_current_results(_visuals(), 1, save_result=True)
    viz = vz.Visualizer(_opt(tmp_path))  # --continue_train: a new process finds epoch 1 on disk
    viz.display_current_results(_visuals(), 2, save_result=True)
    index = tmp_path / "exp" / "web" / "index.html"
    assert _headers(index) == ["epoch [2]", "epoch [1]"]
    # Epochs are tracked in memory after the first scan, not re-listed from disk at every display.
    (tmp_path / "exp" / "web" / "images" / "epoch009_real_A.png").write_bytes(b"")
    viz.display_current_results(_visuals(), 3, save_result=True)
    assert _headers(index) == ["epoch [3]", "epoch [2]", "epoch [1]"]


def test_training_page_is_incremental_and_paged(tmp_path, monkeypatch):
    viz = vz.Visualizer(_opt(tmp_path))
    k = vz.EPOCHS_PER_PAGE
    visuals = _visuals(batch=1)
    writes = []
    real_save = HTML.save
    monkeypatch.setattr(HTML, "save", lambda self, filename="index.html": writes.append(filename)
                        or real_save(self, filename))
    per_save, sizes = [], []
    for epoch in range(1, 2 * k + 6):
        viz.print_current_losses(epoch, 4, {"G": 1.0 / epoch, "D": 0.5}, 0.1, 0.0, total_iters=4 * epoch,
                                 dataset_size=4)
        viz.plot_current_losses(epoch, 1.0, {"G": 1.0 / epoch, "D": 0.5})
        writes.clear()
        viz.display_current_results(visuals, epoch, save_result=True)
        per_save.append(len(writes))
        sizes.append((tmp_path / "exp" / "web" / "index.html").stat().st_size)
    # Each save writes index.html and its epoch's page, plus a neighbour only when a new page starts.
    assert per_save[:3] == [2, 2, 2] and per_save[k] == per_save[2 * k] == 3 and per_save[-4:] == [2] * 4
    assert max(per_save) == 3
    assert max(sizes[k:]) - min(sizes[k:]) < 200  # index.html stops growing once it holds k epochs
    web = tmp_path / "exp" / "web"
    assert _headers(web / "index.html") == [f"epoch [{e}]" for e in range(2 * k + 5, k + 5, -1)]
    assert 'src="images/loss_curves.png"' in (web / "index.html").read_text()
    assert (web / "images" / "loss_curves.png").is_file()
    pages = sorted(p.name for p in web.glob("epochs_*.html"))
    assert pages == [f"epochs_001-{k:03d}.html", f"epochs_{k + 1:03d}-{2 * k:03d}.html",
                     f"epochs_{2 * k + 1:03d}-{3 * k:03d}.html"]
    first = (web / pages[0]).read_text()
    assert _headers(web / pages[0]) == [f"epoch [{e}]" for e in range(k, 0, -1)]
    assert f'href="{pages[1]}"' in first and 'href="index.html"' in first  # newer page and newest
    assert f'href="{pages[1]}"' in (web / "index.html").read_text()  # older epochs: the page holding epoch 25
    viz.close()
    assert 'http-equiv="refresh"' not in (web / "index.html").read_text() + (web / pages[-1]).read_text()


def test_loss_curves_on_the_page_include_the_earlier_run_when_resuming(tmp_path):
    for epochs in ((1, 2), (3, 4)):  # a run, then its --continue_train
        viz = vz.Visualizer(_opt(tmp_path))
        for epoch in epochs:
            viz.print_current_losses(epoch, 2, {"G": 1.0}, 0.1, 0.0, total_iters=2 * epoch, dataset_size=2)
            viz.plot_current_losses(epoch, 1.0, {"G": 1.0})
            viz.display_current_results(_visuals(), epoch, save_result=True)
    assert viz.page.loss_history().x == [2.0, 3.0, 4.0, 5.0]
    assert _headers(tmp_path / "exp" / "web" / "index.html") == ["epoch [4]", "epoch [3]", "epoch [2]", "epoch [1]"]


def test_training_page_escapes_the_experiment_name(tmp_path):
    viz = vz.Visualizer(_opt(tmp_path, name="<script>x</script>"))
    viz.display_current_results(_visuals(), 1, save_result=True)
    text = (tmp_path / "<script>x</script>" / "web" / "index.html").read_text()
    assert "<script>" not in text and "&lt;script&gt;x&lt;/script&gt;" in text


def test_no_html_writes_no_page(tmp_path):
    vz.Visualizer(_opt(tmp_path, no_html=True)).display_current_results(_visuals(), 1, save_result=True)
    assert not (tmp_path / "exp" / "web").exists()


# ---- visdom -------------------------------------------------------------------------------------


def test_unreachable_visdom_warns_once_and_never_spawns(tmp_path, caplog, no_spawning):
    pytest.importorskip("visdom")
    opt = _opt(tmp_path, display_id=1)
    viz = vz.Visualizer(opt)
    with caplog.at_level(logging.INFO):
        for epoch in (1, 2, 3):
            viz.display_current_results(_visuals(), epoch, save_result=True)
            viz.plot_current_losses(epoch, 0.5, {"G": 1.0, "D": 0.5})
            viz.print_current_losses(epoch, 4, {"G": 1.0, "D": 0.5}, 0.1, 0.1)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert f"python -m visdom.server -p {opt.display_port}" in message and "continues" in message
    assert len(viz.plot_data["X"]) == 3  # history kept for when a server shows up
    assert (tmp_path / "exp" / "web" / "index.html").is_file()  # everything else still happened


def test_visdom_retries_every_minute_and_recovers(tmp_path, caplog, monkeypatch, no_spawning):
    visdom = pytest.importorskip("visdom")
    attempts = []
    real = visdom.Visdom

    def counting(*args, **kwargs):
        attempts.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(visdom, "Visdom", counting)
    viz = vz.Visualizer(_opt(tmp_path, display_id=1, display_env="exp_env"))
    clock = viz.visdom.link.clock = Clock()
    losses = {"G": 1.0, "D": 0.5}
    with caplog.at_level(logging.WARNING):
        for dt in (0, 10, 40):
            clock.now += dt
            viz.plot_current_losses(1, 0.1, losses)
        assert len(attempts) == 1
        assert attempts[0]["env"] == "exp_env" and attempts[0]["raise_exceptions"] is True
        clock.now += 11  # 61 s after the first try
        viz.plot_current_losses(1, 0.2, losses)
        assert len(attempts) == 2

        # The server comes up: the next retry connects and sends the whole history.
        FakeVisdom.instances, FakeVisdom.fail = [], False
        monkeypatch.setattr(visdom, "Visdom", FakeVisdom)
        clock.now += 61
        viz.plot_current_losses(1, 0.3, losses)
        (options, (table,), okw), (kind, _, kw) = FakeVisdom.instances[0].calls
        assert options == "text" and okw["opts"]["title"] == "exp options" and "<td>exp_env</td>" in table
        assert kind == "line" and kw["win"] == 1 and kw["Y"].shape == (5, 2) and kw["X"].shape == (5, 2)
        assert kw["opts"] == {"title": "exp loss over time", "legend": ["G", "D"], "xlabel": "epoch",
                              "ylabel": "loss"}
        # Connected: later points are appended, not the whole curve resent.
        viz.plot_current_losses(1, 0.35, losses)
        kind, _, kw = FakeVisdom.instances[0].calls[-1]
        assert kw["update"] == "append" and kw["win"] == "1" and kw["Y"].shape == (1, 2) and kw["X"][0, 0] == 1.35

        # It goes away again: no exception, back to retrying once a minute, no second warning.
        FakeVisdom.fail = True
        viz.plot_current_losses(1, 0.4, losses)
        viz.display_current_results(_visuals(), 1, save_result=False)
        assert len(FakeVisdom.instances) == 1
        # ... and comes back: the new connection gets the options and the whole curve again.
        FakeVisdom.fail = False
        clock.now += 61
        viz.plot_current_losses(1, 0.5, losses)
        assert len(FakeVisdom.instances) == 2
        kinds = [(kind, kw.get("update")) for kind, _, kw in FakeVisdom.instances[1].calls]
        assert kinds == [("text", None), ("line", None)]
        assert FakeVisdom.instances[1].calls[1][2]["Y"].shape == (8, 2)
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_visdom_not_installed_is_one_warning(tmp_path, caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "visdom", None)  # makes `import visdom` raise ImportError
    viz = vz.Visualizer(_opt(tmp_path, display_id=1, no_html=True))
    with caplog.at_level(logging.WARNING):
        for epoch in (1, 2):
            viz.display_current_results(_visuals(), epoch, save_result=True)
            viz.plot_current_losses(epoch, 0.0, {"G": 1.0})
    assert len(caplog.records) == 1 and "pip install visdom" in caplog.records[0].getMessage()


def test_visdom_grid_pads_to_full_rows_and_labels_window(tmp_path, fake_visdom):
    viz = vz.Visualizer(_opt(tmp_path, display_id=5, display_ncols=2, no_html=True))
    viz.display_current_results(_visuals(), 1, save_result=False)
    calls = {kind: (args, kw) for kind, args, kw in fake_visdom.instances[0].calls}
    (grid,), kw = calls["images"]
    assert grid.shape == (4, 3, 8, 8) and (grid[3] == 255).all()  # 3 visuals + 1 white tile; grayscale as RGB
    assert kw["nrow"] == 2 and kw["win"] == 6 and kw["opts"]["title"] == "exp images"
    (table,), kw = calls["text"]
    assert kw["win"] == 7 and "rec_A" in table and kw["opts"]["title"] == "exp labels"


def test_visdom_one_window_per_visual_without_ncols(tmp_path, fake_visdom):
    viz = vz.Visualizer(_opt(tmp_path, display_id=1, display_ncols=0, no_html=True))
    viz.display_current_results(_visuals(), 1, save_result=False)
    calls = fake_visdom.instances[0].calls
    assert [(kind, kw["win"], kw["opts"]["title"]) for kind, _, kw in calls] == [
        ("text", "1_options", "exp options"), ("image", 2, "real_A"), ("image", 3, "fake_B"), ("image", 4, "rec_A")]


def test_display_id_zero_never_touches_visdom(tmp_path, fake_visdom):
    viz = vz.Visualizer(_opt(tmp_path, display_id=0))
    viz.display_current_results(_visuals(), 1, save_result=True)
    viz.plot_current_losses(1, 0.0, {"G": 1.0})
    assert fake_visdom.instances == []


# ---- wandb ------------------------------------------------------------------------------------


def test_use_wandb_without_wandb_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(I2IError, match="pip install wandb"):
        vz.Visualizer(_opt(tmp_path, use_wandb=True))


def test_wandb_logs_losses_even_without_visdom(tmp_path, monkeypatch):
    logged, inits = [], []
    fake = types.SimpleNamespace(run=None, log=logged.append, Image=lambda im: ("image", im.shape),
                                 init=lambda **kw: inits.append(kw), finish=lambda: None)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    viz = vz.Visualizer(_opt(tmp_path, use_wandb=True, display_id=0, wandb_project_name="proj"))
    assert inits[0]["project"] == "proj" and inits[0]["name"] == "exp"
    viz.plot_current_losses(2, 0.5, {"G": 1.5})
    viz.display_current_results(_visuals(), 2, save_result=False)
    assert logged[0] == {"G": 1.5, "epoch": 2.5}
    assert logged[1]["real_A"] == ("image", (8, 8, 3)) and logged[1]["epoch"] == 2


# ---- test images ----------------------------------------------------------------------------------


def test_save_test_images_writes_every_image_of_the_batch(tmp_path):
    page = ResultPages(tmp_path / "web", "Experiment = exp, Phase = test, Epoch = latest", width=32)
    visuals = _visuals(batch=2)
    save_test_images(page, visuals, ["/data/testA/a.jpg", "/data/testA/b.png"], width=32)
    page.save()
    images = tmp_path / "web" / "images"
    assert sorted(p.name for p in images.glob("*.png")) == sorted(
        f"{stem}_{label}.png" for stem in "ab" for label in visuals)
    for label in visuals:  # a folder per visual, same files under the input's own name
        assert sorted(p.name for p in (images / label).iterdir()) == ["a.png", "b.png"]
        assert (images / label / "b.png").read_bytes() == (images / f"b_{label}.png").read_bytes()
    for i, stem in enumerate("ab"):
        with Image.open(images / "fake_B" / f"{stem}.png") as img:
            np.testing.assert_array_equal(np.asarray(img), tensor2im(visuals["fake_B"], i))
    text = (tmp_path / "web" / "index.html").read_text()
    assert re.findall(r"<th>(.*?)</th>", text) == ["input", "real_A", "fake_B", "rec_A"]  # column labels
    assert re.findall(r'<td class="name">(.*?)</td>', text) == ["a", "b"]
    assert 'src="images/b_rec_A.png"' in text


def test_save_test_images_rerun_replaces_per_visual_files(tmp_path):
    for seed in (1, 2):
        page = ResultPages(tmp_path / "web", "t")
        save_test_images(page, _visuals(seed=seed, batch=1), ["x.png"])
    images = tmp_path / "web" / "images"
    assert (images / "fake_B" / "x.png").read_bytes() == (images / "x_fake_B.png").read_bytes()
    with Image.open(images / "fake_B" / "x.png") as img:
        np.testing.assert_array_equal(np.asarray(img), tensor2im(_visuals(seed=2, batch=1)["fake_B"]))
    assert not [p for p in images.rglob(".*")]  # no temporary files left


def test_save_test_images_into_a_reference_style_page(tmp_path):
    page = HTML(tmp_path / "web", "Experiment = exp")
    save_test_images(page, _visuals(batch=2), ["/data/a.jpg", "/data/b.png"], width=32)
    page.save()
    assert _headers(tmp_path / "web" / "index.html") == ["a", "b"]


# ---- TensorBoard --------------------------------------------------------------------------------


def test_use_tensorboard_without_tensorboard_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as when `tensorboard` is not installed
    with pytest.raises(I2IError, match="pip install tensorboard"):
        vz.Visualizer(_opt(tmp_path, use_tensorboard=True))


def test_tensorboard_gets_losses_at_samples_seen_images_and_options(tmp_path, monkeypatch):
    calls = []

    class Writer:
        def __init__(self, log_dir):
            calls.append(("init", log_dir))

        def __getattr__(self, name):
            return lambda *args, **kwargs: calls.append((name, args, kwargs))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    viz = vz.Visualizer(_opt(tmp_path, use_tensorboard=True, no_html=True))
    viz.print_current_losses(1, 4, {"G": 1.5, "D": 0.25}, 0.1, 0.0, total_iters=40)
    viz.display_current_results(_visuals(), 1, save_result=False)
    viz.close()
    assert calls[0] == ("init", str(tmp_path / "exp" / "tensorboard"))
    assert calls[1][0] == "add_text" and "display_winsize: 64" in calls[1][1][1]
    assert [c[1] for c in calls if c[0] == "add_scalar"] == [("loss/G", 1.5, 40), ("loss/D", 0.25, 40)]
    images = [c for c in calls if c[0] == "add_image"]
    assert [(c[1][0], c[1][1].shape, c[1][2], c[2]) for c in images] == [
        ("visuals/real_A", (8, 8, 3), 40, {"dataformats": "HWC"}), ("visuals/fake_B", (8, 8, 3), 40,
                                                                    {"dataformats": "HWC"}),
        ("visuals/rec_A", (8, 8, 1), 40, {"dataformats": "HWC"})]
    assert calls[-1][0] == "close"
