"""Optimisers by name, schedules against their formulas, frozen layers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.train.optim import make_optimizer, make_schedule, trainable_parameters

pytestmark = pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")


def _lrs(schedule, optimizer, steps, per_epoch_logs=None):
    """The rate before each of ``steps`` (step + epoch end: a schedule steps at its own interval)."""
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        schedule.after_step()
        schedule.after_epoch(per_epoch_logs or {"val_loss": 1.0})
    return seen


def test_sgd_momentum_nesterov_step_matches_the_update_rule():
    w = nn.Parameter(torch.tensor([1.0]))
    opt = make_optimizer("sgd", [w], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    velocity = 0.0
    value = 1.0
    for _ in range(3):
        opt.zero_grad()
        (w ** 2).sum().backward()
        opt.step()
        grad = 2 * value + 0.01 * value
        velocity = 0.9 * velocity + grad
        value -= 0.1 * (grad + 0.9 * velocity)
        assert w.item() == pytest.approx(value, rel=1e-6)


@pytest.mark.parametrize("name, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                       ("rmsprop", torch.optim.RMSprop), ("SGD", torch.optim.SGD)])
def test_optimizer_names(name, cls):
    assert type(make_optimizer(name, [nn.Parameter(torch.zeros(1))], lr=1e-3)) is cls


@pytest.mark.parametrize("kwargs, field", [({"lr": -1}, "optimizer.lr"), ({"lr": 0.1, "nesterov": True}, "nesterov")])
def test_bad_optimizer_settings_name_the_field(kwargs, field):
    with pytest.raises(CnnlabError, match=field):
        make_optimizer("sgd", [nn.Parameter(torch.zeros(1))], **kwargs)
    with pytest.raises(CnnlabError, match="unknown optimizer 'lbfgs'"):
        make_optimizer("lbfgs", [], lr=0.1)


def test_only_trainable_parameters_reach_the_optimizer():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[0].requires_grad_(False)
    assert len(trainable_parameters(model)) == 2
    with pytest.raises(CnnlabError, match="no trainable parameter"):
        make_optimizer("adam", [], lr=0.1)


def _opt(lr=1.0):
    return make_optimizer("sgd", [nn.Parameter(torch.zeros(1))], lr=lr)


def test_epoch_schedules_follow_their_formulas():
    opt = _opt()
    assert _lrs(make_schedule("step", opt, epochs=6, steps_per_epoch=1, step_size=2, gamma=0.5), opt, 6) == \
        pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.25])
    opt = _opt()
    assert _lrs(make_schedule("exponential", opt, epochs=3, steps_per_epoch=1, gamma=0.9), opt, 3) == \
        pytest.approx([1, 0.9, 0.81])
    opt = _opt()
    assert _lrs(make_schedule("constant", opt, epochs=3, steps_per_epoch=1), opt, 3) == [1, 1, 1]


def test_cosine_is_per_step_over_the_whole_run():
    opt = _opt()
    schedule = make_schedule("cosine", opt, epochs=2, steps_per_epoch=4, eta_min=0.0)
    assert schedule.interval == "step"
    seen = _lrs(schedule, opt, 8)
    assert seen == pytest.approx([(1 + math.cos(math.pi * t / 8)) / 2 for t in range(8)])


def test_onecycle_peaks_at_lr_and_plateau_cuts_on_stall():
    opt = _opt(0.5)
    schedule = make_schedule("onecycle", opt, epochs=1, steps_per_epoch=10, pct_start=0.3)
    seen = _lrs(schedule, opt, 10)
    assert max(seen) == pytest.approx(0.5) and seen[0] < 0.05 and seen[-1] < 0.01
    opt = _opt()
    plateau = make_schedule("plateau", opt, epochs=10, steps_per_epoch=1, factor=0.5, patience=1)
    got = _lrs(plateau, opt, 5, {"val_loss": 1.0})
    assert got == pytest.approx([1, 1, 1, 0.5, 0.5])
    with pytest.raises(CnnlabError, match="schedule.monitor"):
        plateau.after_epoch({"loss": 1.0})


def test_inverse_time_is_keras_legacy_sgd_decay_per_step_and_resumes():
    """Keras's ``SGD(lr=0.002, decay=0.0002)`` (BoNet's recipe): lr / (1 + decay * iterations)."""
    opt = _opt(0.002)
    schedule = make_schedule("inverse_time", opt, epochs=2, steps_per_epoch=3, decay=0.0002)
    assert schedule.interval == "step"
    seen = _lrs(schedule, opt, 5)
    assert seen == pytest.approx([0.002 / (1 + 0.0002 * t) for t in range(5)], rel=1e-12)
    state = schedule.state_dict()
    opt2 = _opt(0.002)
    again = make_schedule("inverse_time", opt2, epochs=2, steps_per_epoch=3, decay=0.0002)
    opt2.load_state_dict(opt.state_dict())
    again.load_state_dict(state)
    again.after_step()
    schedule.after_step()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == pytest.approx(0.002 / (1 + 0.0002 * 6))
