"""LR policies under i2i's contract: record the epoch's LR, train, then step once at the end of the epoch."""

import io
import math
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.schedulers import (  # noqa: E402
    LR_POLICIES,
    build_scheduler,
    current_lr,
    needs_metric,
    step_scheduler,
)
from util.errors import I2IError  # noqa: E402

LR = 2e-4
N_EPOCHS, N_DECAY = 100, 100
LAST = N_EPOCHS + N_DECAY


def options(policy, **overrides):
    values = dict(lr_policy=policy, lr=LR, n_epochs=N_EPOCHS, n_epochs_decay=N_DECAY, epoch_count=1,
                  lr_decay_iters=50)
    values.update(overrides)
    return SimpleNamespace(**values)


def make_optimizer():
    param = torch.nn.Parameter(torch.zeros(1))
    param.grad = torch.zeros(1)
    return torch.optim.Adam([param], lr=LR, betas=(0.5, 0.999))


def run_epochs(optimizer, scheduler, first, last, metric=None):
    """{epoch: lr the epoch trained at} following the contract; `metric(epoch)` feeds plateau."""
    lrs = {}
    for epoch in range(first, last + 1):
        lrs[epoch] = current_lr(optimizer)
        optimizer.step()  # the epoch's training
        step_scheduler(scheduler, metric(epoch) if metric else None)
    return lrs


def simulate(opt, last=LAST, metric=None):
    optimizer = make_optimizer()
    return run_epochs(optimizer, build_scheduler(optimizer, opt), opt.epoch_count, last, metric)


def test_registry_lists_the_builtin_policies():
    assert {"linear", "step", "plateau", "cosine"} <= set(LR_POLICIES.names())


def test_linear_defaults():
    lrs = simulate(options("linear"))
    assert all(lrs[epoch] == pytest.approx(LR) for epoch in range(1, N_EPOCHS + 1))
    assert lrs[101] == pytest.approx(LR * 100 / 101)
    assert lrs[150] == pytest.approx(LR * (1 - 50 / 101))
    assert lrs[LAST] == pytest.approx(LR / 101)  # last epoch still trains: lr / (n_epochs_decay + 1)
    assert all(lrs[e + 1] < lrs[e] for e in range(N_EPOCHS, LAST))
    assert min(lrs.values()) > 0


def test_linear_without_decay_epochs_is_constant():
    lrs = simulate(options("linear", n_epochs=5, n_epochs_decay=0), last=5)
    assert list(lrs.values()) == pytest.approx([LR] * 5)


def test_step_decays_every_lr_decay_iters_epochs():
    lrs = simulate(options("step"))
    for epoch, lr in lrs.items():
        assert lr == pytest.approx(LR * 0.1 ** ((epoch - 1) // 50)), epoch
    assert lrs[50] == pytest.approx(LR) and lrs[51] == pytest.approx(LR * 0.1)
    assert lrs[LAST] == pytest.approx(LR * 1e-3)


def test_cosine_spans_all_epochs_and_never_climbs_back():
    lrs = simulate(options("cosine"))
    values = [lrs[epoch] for epoch in range(1, LAST + 1)]
    assert values[0] == pytest.approx(LR)
    assert all(later <= earlier for earlier, later in zip(values, values[1:]))
    assert lrs[101] == pytest.approx(LR / 2)  # halfway through the 200 epochs
    assert lrs[LAST] == pytest.approx(LR * 0.5 * (1 + math.cos(math.pi * 199 / 200)))
    assert lrs[LAST] > 0


def test_plateau_keeps_lr_while_the_metric_improves():
    lrs = simulate(options("plateau"), last=40, metric=lambda epoch: 0.9**epoch)
    assert list(lrs.values()) == pytest.approx([LR] * 40)


def test_plateau_decays_when_the_metric_stalls():
    lrs = simulate(options("plateau"), last=14, metric=lambda epoch: 1.0)
    # epoch 1 sets the best value; epochs 2..7 are 6 bad epochs (> patience 5): decay after epoch 7
    assert [lrs[e] for e in range(1, 8)] == pytest.approx([LR] * 7)
    assert [lrs[e] for e in range(8, 14)] == pytest.approx([LR * 0.2] * 6)
    assert lrs[14] == pytest.approx(LR * 0.04)


def test_plateau_ignores_improvements_below_the_threshold():
    # 0.1 % better each epoch stays within 1 % (relative) of the best value over these epochs: stalled
    lrs = simulate(options("plateau"), last=8, metric=lambda epoch: 1.0 - 0.001 * epoch)
    assert lrs[7] == pytest.approx(LR) and lrs[8] == pytest.approx(LR * 0.2)


def test_plateau_without_metric_is_a_clear_error():
    optimizer = make_optimizer()
    scheduler = build_scheduler(optimizer, options("plateau"))
    assert needs_metric(scheduler)
    optimizer.step()
    with pytest.raises(ValueError, match="metric"):
        step_scheduler(scheduler, None)


def test_non_plateau_policies_ignore_the_metric():
    optimizer = make_optimizer()
    scheduler = build_scheduler(optimizer, options("linear", n_epochs=0, n_epochs_decay=3))
    assert not needs_metric(scheduler)
    optimizer.step()
    step_scheduler(scheduler, 123.0)
    assert current_lr(optimizer) == pytest.approx(LR * (1 - 2 / 4))


@pytest.mark.parametrize("policy", ["linear", "step", "cosine"])
@pytest.mark.parametrize("resume_epoch", [2, 50, 101, 150, LAST])
def test_resume_with_epoch_count_continues_the_same_curve(policy, resume_epoch):
    uninterrupted = simulate(options(policy))
    resumed = simulate(options(policy, epoch_count=resume_epoch))
    assert list(resumed) == list(range(resume_epoch, LAST + 1))
    assert list(resumed.values()) == pytest.approx([uninterrupted[e] for e in resumed])


def roundtrip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)  # plain data only: no pickled callables


@pytest.mark.parametrize("policy", ["linear", "step", "cosine", "plateau"])
def test_state_dict_round_trip_continues_exactly(policy):
    metric = (lambda epoch: 1.0 if epoch > 3 else 1.0 / epoch) if policy == "plateau" else None
    opt = options(policy, n_epochs=10, n_epochs_decay=10, lr_decay_iters=4)
    uninterrupted = simulate(opt, last=20, metric=metric)

    optimizer = make_optimizer()
    scheduler = build_scheduler(optimizer, opt)
    first_part = run_epochs(optimizer, scheduler, 1, 12, metric)
    saved = roundtrip({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()})

    optimizer = make_optimizer()
    scheduler = build_scheduler(optimizer, options(policy, n_epochs=10, n_epochs_decay=10, lr_decay_iters=4,
                                                   epoch_count=13))
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    second_part = run_epochs(optimizer, scheduler, 13, 20, metric)
    assert list({**first_part, **second_part}.values()) == pytest.approx(list(uninterrupted.values()))
    if policy != "plateau":
        assert len(set(uninterrupted.values())) > 1  # the schedule actually moved


@pytest.mark.parametrize("policy", ["linear", "step", "cosine", "plateau"])
def test_no_step_order_warning_in_normal_use(policy):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        simulate(options(policy), last=5, metric=lambda epoch: 1.0)
    assert not [w for w in caught if "lr_scheduler.step()" in str(w.message)]


def test_the_step_order_warning_check_is_meaningful():
    """Stepping before the optimizer does warn, so the test above can detect the reference's ordering."""
    optimizer = make_optimizer()
    scheduler = build_scheduler(optimizer, options("linear"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scheduler.step()
    assert [w for w in caught if "lr_scheduler.step()" in str(w.message)]


def test_unknown_policy_names_the_option_and_the_choices():
    with pytest.raises(I2IError) as info:
        build_scheduler(make_optimizer(), options("cosin"))
    message = str(info.value)
    assert "--lr_policy" in message and "cosine" in message and "linear" in message


@pytest.mark.parametrize("overrides", [dict(n_epochs=0, n_epochs_decay=0), dict(n_epochs=-1)])
def test_empty_schedule_is_rejected(overrides):
    with pytest.raises(I2IError, match="--n_epochs"):
        build_scheduler(make_optimizer(), options("linear", **overrides))


def test_step_policy_rejects_zero_decay_period():
    with pytest.raises(I2IError, match="--lr_decay_iters"):
        build_scheduler(make_optimizer(), options("step", lr_decay_iters=0))
