"""ExponentialMovingAverage: the average equals the formula, overwrites, finalises, resumes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.train.callbacks import ExponentialMovingAverage
from cnnlab.train.loader import TensorLoader
from cnnlab.train.losses import make_loss
from cnnlab.train.optim import make_optimizer
from cnnlab.train.trainer import Trainer


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def step(model: nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(8, 3, generator=g), torch.randint(0, 2, (8,), generator=g)
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_average_after_three_steps_equals_the_formula_and_becomes_the_weights_at_the_end():
    model = net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    ema = ExponentialMovingAverage(momentum=0.8)
    trainer = SimpleNamespace(model=model, optimizer=optimizer)
    ema.on_train_begin(trainer)
    w = [snapshot(model)]
    for i in range(3):
        step(model, optimizer, i)
        w.append(snapshot(model))
    m = 0.8
    for key in ("0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var", "2.weight"):
        expected = m**3 * w[0][key] + (1 - m) * (m**2 * w[1][key] + m * w[2][key] + w[3][key])
        assert torch.allclose(ema.average[key], expected, atol=1e-6), key
        assert not torch.allclose(w[3][key], expected, atol=1e-4), key  # the raw weights differ (a bias before BN would not move)
    assert "1.num_batches_tracked" not in ema.average
    assert torch.equal(model[0].weight, w[3]["0.weight"])  # no overwrite without overwrite_frequency
    ema.on_train_end(trainer)
    assert torch.allclose(model[0].weight, m**3 * w[0]["0.weight"] + (1 - m) * (
        m**2 * w[1]["0.weight"] + m * w[2]["0.weight"] + w[3]["0.weight"]), atol=1e-6)
    assert int(model[1].num_batches_tracked) == 3
    step(model, optimizer, 9)  # the hook is gone: no more updates
    assert ema.steps == 3


def test_lookahead_every_two_steps_overwrites_the_weights_with_scheduled_momentum():
    model = net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    asked: list[int] = []

    def momentum(s: int) -> float:
        asked.append(s)
        return 0.5

    ema = ExponentialMovingAverage(momentum=momentum, every=2, overwrite_frequency=1)
    ema.on_train_begin(SimpleNamespace(model=model, optimizer=optimizer))
    w0 = snapshot(model)["0.weight"]
    step(model, optimizer, 0)
    assert asked == [] and not torch.equal(ema.average["0.weight"], model[0].weight)
    before = model[0].weight.detach().clone()
    step(model, optimizer, 1)
    # the raw weights after step 2 are not kept: the model now holds the average
    raw2 = before - 0.5 * model[0].weight.grad
    assert torch.allclose(model[0].weight, 0.5 * w0 + 0.5 * raw2, atol=1e-6)
    assert torch.equal(model[0].weight, ema.average["0.weight"])
    for i in range(2, 6):
        step(model, optimizer, i)
    assert asked == [2, 4, 6] and ema.updates == 3


def test_bad_arguments_are_user_errors():
    with pytest.raises(CnnlabError, match="momentum"):
        ExponentialMovingAverage(momentum=1.0)
    with pytest.raises(CnnlabError, match="every"):
        ExponentialMovingAverage(every=0)


def _trainer(run_dir, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    optimizer = make_optimizer("sgd", model.parameters(), lr=0.1, momentum=0.9)
    return Trainer(model, make_loss("sparse_categorical_crossentropy"), optimizer, metrics=["accuracy"],
                   callbacks=[ExponentialMovingAverage(momentum=0.7, every=2)], device="cpu", run_dir=run_dir,
                   verbose=0, checkpoint_every=3)


def test_resumed_run_ends_with_the_same_averaged_weights(tmp_path):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 1, 3, 4, generator=g), torch.randint(0, 3, (40,), generator=g)
    train = TensorLoader(x, y, 8, shuffle=True, seed=2)
    full = _trainer(tmp_path / "full")
    full.fit(train, epochs=3)
    part = _trainer(tmp_path / "part")
    part.fit(train, epochs=2)
    resumed = _trainer(tmp_path / "part", seed=5)
    resumed.fit(train, epochs=3, resume=True)
    assert resumed.callbacks[0].steps == full.callbacks[0].steps == 15
    for (key, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), key
    # and the finished run holds the average, not its last raw weights
    assert torch.equal(full.model[1].weight, full.callbacks[0].average["1.weight"])
