"""--eval_freq: the metric is logged beside the losses, feeds the plateau policy, and best_net_* is kept."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from engine.evaluator import TrainingEvaluator
from tests.helpers import load_script, tiny_args, unaligned_dataset


def test_training_evaluates_logs_and_keeps_the_best(tmp_path):
    data = unaligned_dataset(tmp_path / "data", count=2, size=32)
    args = tiny_args(data, tmp_path) + ["--model", "cycle_gan", "--name", "ev", "--n_epochs", "2",
                                        "--n_epochs_decay", "0", "--eval_freq", "2", "--eval_metric", "psnr",
                                        "--lr_policy", "plateau", "--netG", "resnet_6blocks"]
    load_script("train").main(args)
    run = tmp_path / "checkpoints" / "ev"
    records = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval_psnr" in r.get("losses", {})]
    assert [r["epoch"] for r in evals] == [1, 2]  # the first epoch, then every 2nd (here also the last)
    best = json.loads((run / "best_metric.json").read_text())
    assert best["metric"] == "psnr" and best["epoch"] in (1, 2)
    assert best["value"] == max(r["losses"]["eval_psnr"] for r in evals)
    assert (run / "best_net_G_A.pth").is_file() and (run / "best_net_D_B.pth").is_file()
    assert "eval_psnr" in (run / "loss_log.txt").read_text()


def test_evaluation_needs_no_training_step_first(tmp_path):
    """A resumed epoch with no batch left evaluates a model that has not trained in this process: CycleGAN has no
    identity images then, and the evaluation must not need them."""
    from models import create_model
    from options.train_options import TrainOptions

    data = unaligned_dataset(tmp_path / "data", count=2, size=32)
    args = tiny_args(data, tmp_path) + ["--model", "cycle_gan", "--eval_freq", "1", "--eval_metric", "psnr",
                                        "--netG", "resnet_6blocks"]
    opt = TrainOptions().parse(args)
    model = create_model(opt)
    model.setup(opt)
    assert not hasattr(model, "idt_B")
    assert TrainingEvaluator(opt).evaluate(model) > 0


def test_plateau_watches_the_metric_the_right_way_round():
    evaluator = TrainingEvaluator(SimpleNamespace(eval_freq=0))
    assert evaluator.lr_metric(3.0) == 3.0  # no evaluation: the generator loss, as before
    evaluator.freq, evaluator.latest = 1, 25.0
    evaluator.spec = SimpleNamespace(higher_is_better=True)
    assert evaluator.lr_metric(3.0) == -25.0  # psnr: higher is better, the policy minimises
    evaluator.spec = SimpleNamespace(higher_is_better=False)
    assert evaluator.lr_metric(3.0) == 25.0


def test_missing_fid_weights_stop_training_before_it_starts(tmp_path, monkeypatch):
    from util.errors import I2IError

    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "empty"))
    data = unaligned_dataset(tmp_path / "data", count=1, size=32)
    args = tiny_args(data, tmp_path) + ["--model", "cycle_gan", "--n_epochs", "1", "--n_epochs_decay", "0",
                                        "--eval_freq", "1"]
    with pytest.raises(I2IError, match="pt_inception-2015-12-05-6726825d.pth"):
        load_script("train").main(args)


def test_best_metric_json_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """A write that fails half-way (here: text that cannot be encoded) leaves the previous best_metric.json as it
    was, as a crash would; writing straight into the file would have emptied it first."""
    import engine.evaluator as evaluator_module
    from metrics.catalog import METRICS

    best_file = tmp_path / "best_metric.json"
    best_file.write_text('{"metric": "psnr", "value": 20.0, "epoch": 1}\n')
    evaluator = TrainingEvaluator.__new__(TrainingEvaluator)
    evaluator.freq, evaluator.opt = 1, SimpleNamespace(epoch_count=1)
    evaluator.metric, evaluator.spec = "psnr", METRICS["psnr"]
    evaluator.best, evaluator.latest, evaluator.best_file = json.loads(best_file.read_text()), None, best_file
    evaluator.evaluate = lambda model: 30.0  # better than 20
    model = SimpleNamespace(save_networks=lambda tag: None)
    monkeypatch.setattr(evaluator_module.json, "dumps", lambda *a, **k: '{"value": "\ud800"}')  # a lone surrogate
    with pytest.raises(UnicodeEncodeError):
        evaluator.end_of_epoch(model, 2, 10)
    monkeypatch.undo()
    assert json.loads(best_file.read_text())["value"] == 20.0
    assert [p.name for p in tmp_path.iterdir()] == ["best_metric.json"]  # no temporary file left behind
    evaluator.evaluate = lambda model: 31.0
    evaluator.end_of_epoch(model, 3, 10)
    assert json.loads(best_file.read_text()) == {"metric": "psnr", "value": 31.0, "epoch": 3}
