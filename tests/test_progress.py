"""engine/progress.py: tqdm bars on a terminal, plain periodic lines elsewhere; train.py and test.py use them."""

import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import run_script, tiny_args, unaligned_dataset  # noqa: E402
from engine.progress import Progress, TrainProgress, progress_bar  # noqa: E402


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_only_every_interval_and_at_the_end():
    out, clock = io.StringIO(), Clock()
    bar = Progress(100, "epoch 1/5", "it", stream=out, interval=30, clock=clock)
    assert not bar.terminal
    for _ in range(10):
        clock.now += 5
        bar.update(5)
    bar.show_losses({"G_A": 0.51234, "D_A": 0.25})
    clock.now += 5
    bar.update(5)  # 55 s: less than 30 s after the first line, so none
    bar.close()
    bar.close()  # closing twice writes nothing more
    lines = out.getvalue().splitlines()
    assert lines == ["epoch 1/5: 30/100 it (30%), 1.00 it/s, 0:00:30 elapsed, 0:01:10 left",
                     "epoch 1/5: 55/100 it (55%), 1.00 it/s, 0:00:55 elapsed, 0:00:45 left | G_A 0.512 D_A 0.250"]
    assert "\r" not in out.getvalue()  # no redrawn bar in a log file


def test_terminal_gets_a_tqdm_bar_with_losses_and_rate():
    out = Terminal()
    with progress_bar(4, "test", stream=out) as bar:
        bar.show_losses({"G": 1.5})
        bar.update(4)
    text = out.getvalue()
    assert "\r" in text and "test:" in text and "4/4" in text and "G 1.500" in text and "img/s" in text


def test_train_progress_counts_epochs_and_batches():
    out, clock = io.StringIO(), Clock()
    progress = TrainProgress(3, 4, batches_per_epoch=2, stream=out, interval=1000, clock=clock)
    seen = []
    for epoch in progress.epochs():
        for batch in progress.batches(["a", "b"]):
            seen.append((epoch, batch))
            progress.show_losses({"G": float(epoch)})
    assert seen == [(3, "a"), (3, "b"), (4, "a"), (4, "b")]
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["epoch 3/4: 2/2 it (100%)", "epoch 4/4: 2/2 it (100%)"]
    assert lines[1].endswith("| G 4.000")


def test_a_resumed_epoch_counts_from_its_trained_batches():
    out, clock = io.StringIO(), Clock()
    progress = TrainProgress(2, 2, batches_per_epoch=4, stream=out, interval=1000, clock=clock)
    for _ in progress.epochs():
        for _ in progress.batches(["c", "d"], done=2):  # the first 2 of 4 batches were trained before the stop
            clock.now += 1
    assert out.getvalue().splitlines()[-1].startswith("epoch 2/2: 4/4 it (100%), 1.00 it/s")


def test_train_progress_on_a_terminal_shows_both_bars():
    out = Terminal()
    progress = TrainProgress(1, 2, batches_per_epoch=3, stream=out)
    for _ in progress.epochs():
        for _ in progress.batches(range(3)):
            pass
    text = out.getvalue()
    assert "epochs:" in text and "2/2" in text and "epoch 1/2:" in text and "0/3" in text and "\x1b[A" in text


def test_drivers_print_plain_progress_when_not_a_terminal(tmp_path):
    root = unaligned_dataset(tmp_path / "data", count=2)
    args = tiny_args(root, tmp_path) + ["--name", "p", "--n_epochs", "1", "--n_epochs_decay", "1", "--print_freq", "1"]
    train = run_script("train.py", args, cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-2000:]
    # stderr is a pipe here: plain lines (one every 30 s on a slow machine) and one closing each epoch, with
    # the losses, and no bar redraws.
    lines = [x for x in train.stderr.splitlines() if x.startswith("epoch ")]
    done = [x.split(",")[0] for x in lines if "2/2 it (100%)" in x]
    assert done == ["epoch 1/2: 2/2 it (100%)", "epoch 2/2: 2/2 it (100%)"], train.stderr
    assert all(" it/s, " in x and "| D_A " in x for x in lines if "(100%)" in x) and "\r" not in train.stderr
    test = run_script("test.py", tiny_args(root, tmp_path, train=False) + ["--name", "p", "--model", "cycle_gan"],
                      cwd=tmp_path)
    assert test.returncode == 0, test.stderr[-2000:]
    assert [x.split(",")[0] for x in test.stderr.splitlines() if "(100%)" in x] == ["test: 2/2 img (100%)"]


def test_other_torchrun_ranks_show_no_progress_and_write_no_lines(monkeypatch, capsys):
    """Under torchrun only rank 0 draws bars and prints lines; the other ranks train the same steps silently."""
    import engine.progress as progress

    monkeypatch.setattr(progress, "is_main", lambda: False)
    monkeypatch.setattr("util.cli.is_main", lambda: False)
    out, plain = Terminal(), io.StringIO()
    train = TrainProgress(1, 2, batches_per_epoch=2, stream=out)
    for _ in train.epochs():
        for _ in train.batches(range(2)):
            pass
    bar = Progress(3, "test", stream=plain, interval=0)
    bar.update(3)
    bar.close()
    progress.write("saving the latest model")
    assert out.getvalue() == plain.getvalue() == capsys.readouterr().out == ""


def test_learning_rate_line_goes_above_the_bar_on_rank_0_only(monkeypatch, capsys):
    """BaseModel.update_learning_rate writes through tqdm.write (which clears and redraws a bar on screen), not
    print; a torchrun rank other than 0 writes nothing."""
    import warnings
    from types import SimpleNamespace

    import torch

    import engine.progress as progress
    from models.base_model import BaseModel

    written = []
    monkeypatch.setattr(progress.tqdm, "write", lambda message, *args, **kwargs: written.append(message))
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    model = SimpleNamespace(optimizers=[optimizer], metric=0.0,
                            schedulers=[torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a scheduler stepped before any optimizer step
        BaseModel.update_learning_rate(model)
        monkeypatch.setattr("util.cli.is_main", lambda: False)
        BaseModel.update_learning_rate(model)
    assert written == ["learning rate 0.1000000 -> 0.0500000"]  # the second, on rank 1, went nowhere
    assert capsys.readouterr().out == ""  # no plain print()
