"""Losses and metrics against direct formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.train.losses import class_weights_from_counts, make_loss, resolve_class_weight
from cnnlab.train.metrics import MetricTracker

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, 1.0, 1.0], [-2.0, 4.0, 0.0]])
LABELS = torch.tensor([0, 2, 1, 0])


def manual_ce(logits, labels, smoothing=0.0, weights=None):
    k = logits.shape[1]
    total = 0.0
    for row, label in zip(logits.tolist(), labels.tolist()):
        log_z = math.log(sum(math.exp(v) for v in row))
        target = [smoothing / k + (1 - smoothing) * (i == label) for i in range(k)]
        loss = -sum(t * (v - log_z) for t, v in zip(target, row))
        total += loss * (weights[label] if weights is not None else 1.0)
    return total / len(labels)


def test_sparse_and_categorical_cross_entropy_agree_with_the_formula():
    sparse = make_loss("sparse_categorical_crossentropy")(LOGITS, LABELS)
    onehot = make_loss("categorical_crossentropy")(LOGITS, F.one_hot(LABELS, 3).float())
    assert sparse.item() == pytest.approx(manual_ce(LOGITS, LABELS), rel=1e-6)
    assert onehot.item() == pytest.approx(sparse.item(), rel=1e-6)


def test_label_smoothing_matches_keras_definition():
    for name, target in (("sparse_categorical_crossentropy", LABELS), ("cce", F.one_hot(LABELS, 3).float())):
        value = make_loss(name, label_smoothing=0.2)(LOGITS, target).item()
        assert value == pytest.approx(manual_ce(LOGITS, LABELS, smoothing=0.2), rel=1e-6)


def test_class_weights_scale_each_sample_and_divide_by_batch_size():
    weights = torch.tensor([2.0, 0.5, 1.0])
    value = make_loss("sparse_categorical_crossentropy", class_weight=weights)(LOGITS, LABELS).item()
    assert value == pytest.approx(manual_ce(LOGITS, LABELS, weights=weights.tolist()), rel=1e-6)


def test_auto_class_weights_are_balanced():
    assert class_weights_from_counts([10, 30, 0]).tolist() == pytest.approx([40 / 20, 40 / 60, 0.0])
    assert resolve_class_weight("auto", [1, 3], 2).tolist() == pytest.approx([2.0, 2 / 3])
    assert resolve_class_weight({"b": 3.0}, None, 2, ["a", "b"]).tolist() == [1.0, 3.0]
    with pytest.raises(CnnlabError, match="class_weight"):
        resolve_class_weight({"zebra": 1.0}, None, 2, ["a", "b"])


def test_binary_cross_entropy_uses_logits_and_smoothing():
    logits = torch.tensor([[3.0], [-1.0], [0.5]])
    target = torch.tensor([1, 0, 0])
    p = torch.sigmoid(logits[:, 0]).double()
    y = target.double()
    expected = -(y * p.log() + (1 - y) * (1 - p).log()).mean().item()
    assert make_loss("binary_crossentropy")(logits, target).item() == pytest.approx(expected, rel=1e-5)
    ys = y * 0.9 + 0.05
    smoothed = -(ys * p.log() + (1 - ys) * (1 - p).log()).mean().item()
    assert make_loss("bce", label_smoothing=0.1)(logits, target).item() == pytest.approx(smoothed, rel=1e-5)
    # Stable for huge logits where log(sigmoid) would be -inf.
    assert math.isfinite(make_loss("bce")(torch.tensor([[-200.0]]), torch.tensor([1])).item())


def test_regression_losses():
    out = torch.tensor([[1.0], [2.0], [5.0]])
    y = torch.tensor([1.5, 2.0, 2.0])
    assert make_loss("mse")(out, y).item() == pytest.approx((0.25 + 0 + 9) / 3)
    assert make_loss("mae")(out, y).item() == pytest.approx((0.5 + 0 + 3) / 3)
    assert make_loss("huber")(out, y).item() == pytest.approx((0.125 + 0 + 2.5) / 3)


def test_bad_loss_names_and_smoothing_are_user_errors():
    with pytest.raises(CnnlabError, match="unknown loss 'hinge'"):
        make_loss("hinge")
    with pytest.raises(CnnlabError, match="label_smoothing"):
        make_loss("mse", label_smoothing=0.1)
    with pytest.raises(CnnlabError, match="label_smoothing"):
        make_loss("cce", label_smoothing=1.5)


def test_metric_tracker_accumulates_accuracy_top5_and_loss():
    tracker = MetricTracker(["accuracy", "top5"])
    logits = torch.zeros(4, 7)
    logits[0, 3] = 5  # right
    logits[1, 1] = 5  # wrong; label 6 has the lowest score -> outside top 5
    logits[1, 6] = -5
    logits[2, 2] = 5  # right
    logits[3, 0] = 5  # wrong; label 4 in the top 5 (ties broken by index)
    labels = torch.tensor([3, 6, 2, 4])
    tracker.update(torch.tensor(2.0), logits[:2], labels[:2])
    tracker.update(torch.tensor(1.0), logits[2:], labels[2:])
    logs = tracker.compute("val_")
    assert logs["val_loss"] == pytest.approx(1.5)
    assert logs["val_accuracy"] == pytest.approx(0.5)
    # Labels 3, 2 and 4 are in their row's top 5, label 6 is not (see the comments above).
    assert logs["val_top5_accuracy"] == pytest.approx(0.75)
    clone = MetricTracker(["accuracy", "top5"])
    clone.load_state_dict(tracker.state_dict())
    assert clone.compute("val_") == logs


def test_binary_accuracy_thresholds_at_half_and_mae_metric():
    tracker = MetricTracker(["accuracy"])
    tracker.update(torch.tensor(0.0), torch.tensor([[0.3], [-0.1], [2.0]]), torch.tensor([1, 1, 0]))
    assert tracker.compute()["accuracy"] == pytest.approx(1 / 3)
    reg = MetricTracker(["mae", "mse"])
    reg.update(torch.tensor(0.0), torch.tensor([[1.0], [3.0]]), torch.tensor([2.0, 3.0]))
    assert reg.compute() == {"loss": 0.0, "mae": 0.5, "mse": 0.5}


def test_a_regression_loss_on_targets_of_the_wrong_shape_is_a_clear_error():
    mse = make_loss("mse")
    assert float(mse(torch.ones(4, 1), torch.zeros(4))) == 1.0  # (N, 1) against (N,): fine
    with pytest.raises(CnnlabError, match=r"loss: mse takes as many outputs per image as the target has numbers: "
                                          r"the model's output is \(4, 3\) and the targets are \(4,\)"):
        mse(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(CnnlabError, match=r"binary_crossentropy takes one output"):
        make_loss("binary_crossentropy")(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(CnnlabError, match=r"sparse_categorical_crossentropy takes outputs \(N, K\)"):
        make_loss("sparse_categorical_crossentropy")(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))


def test_check_loss_refuses_a_loss_that_cannot_train_the_task():
    from cnnlab.train.losses import check_loss

    assert check_loss("cce", "classification", 10) == "categorical_crossentropy"
    assert check_loss("mae", "regression", 1) == "mae"
    for name, task, units, message in [
        ("mse", "classification", 3, "mse is a regression loss and the data is a classification"),
        ("bce", "regression", 1, "binary_crossentropy is a classification loss and the data is a regression"),
        ("binary_crossentropy", "classification", 3, "binary_crossentropy needs a model with one sigmoid output; this one has 3"),
        ("sparse_categorical_crossentropy", "classification", 1, "sparse_categorical_crossentropy needs one output per class"),
    ]:
        with pytest.raises(CnnlabError, match=f"^loss: {message}"):
            check_loss(name, task, units)
