"""The training loop on plain torch models and in-memory tensors."""

from __future__ import annotations

import warnings

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.inference.bundle import load_bundle, save_bundle
from cnnlab.train.callbacks import CSVLogger, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN
from cnnlab.train.loader import TensorLoader
from cnnlab.train.losses import make_loss
from cnnlab.train.optim import make_optimizer, make_schedule
from cnnlab.train.state import load_latest_state, state_files
from cnnlab.train.trainer import Trainer


def toy_data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 6, 6, generator=g)
    y = (x[:, 0, :3].mean((1, 2)) > x[:, 0, 3:].mean((1, 2))).long() + 2 * (x[:, 0, 0, 0] > 0).long()
    return x, y


def toy_model(seed=0, softmax=True):
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(), nn.Linear(64, 4)]
    return nn.Sequential(*layers, nn.Softmax(dim=-1)) if softmax else nn.Sequential(*layers)


def make_trainer(model, run_dir=None, callbacks=(), schedule="constant", lr=0.05, epochs=3, steps=6, **kw):
    opt = make_optimizer("sgd", [p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    sched = make_schedule(schedule, opt, epochs=epochs, steps_per_epoch=steps)
    return Trainer(model, make_loss("sparse_categorical_crossentropy"), opt, schedule=sched,
                   metrics=["accuracy"], callbacks=callbacks, device="cpu", run_dir=run_dir, verbose=0, **kw)


def loaders(batch=16):
    x, y = toy_data()
    return TensorLoader(x, y, batch, shuffle=True, seed=1), TensorLoader(x[:32], y[:32], 32)


def test_training_lowers_the_loss_and_history_has_keras_keys():
    train, val = loaders()
    history = make_trainer(toy_model()).fit(train, val, epochs=4)
    assert [sorted(r) for r in history] == [sorted(["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"])] * 4
    assert history[-1]["loss"] < history[0]["loss"]


def test_softmax_model_trains_on_its_logits_and_linear_model_gets_softmax_outside():
    train, _ = loaders()
    with_softmax = make_trainer(toy_model(softmax=True))
    without = make_trainer(toy_model(softmax=False))
    torch.manual_seed(0)
    h1 = with_softmax.fit(train, epochs=2)
    torch.manual_seed(0)
    h2 = without.fit(train, epochs=2)
    # Same weights, same data: the softmax is stripped, so the two runs are the same computation.
    assert h1 == h2
    assert with_softmax.head.activation == "softmax" and with_softmax.head.module is not None
    assert without.head.activation == "softmax" and without.head.module is None
    # Outside training the model outputs probabilities again.
    probs = with_softmax.model.eval()(toy_data()[0][:3])
    assert torch.allclose(probs.sum(-1), torch.ones(3))


def test_same_seed_same_history_and_weights(tmp_path):
    runs = []
    for name in ("a", "b"):
        train, val = loaders()
        trainer = make_trainer(toy_model(), run_dir=tmp_path / name, callbacks=[CSVLogger()])
        torch.manual_seed(0)
        runs.append(trainer.fit(train, val, epochs=2))
    assert runs[0] == runs[1]
    assert (tmp_path / "a/history.csv").read_text() == (tmp_path / "b/history.csv").read_text()
    wa, wb = load_file(tmp_path / "a/weights.safetensors"), load_file(tmp_path / "b/weights.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_frozen_layers_stay_frozen_and_regularisation_is_added():
    model = toy_model()
    model[0].requires_grad_(False)
    before = model[0].weight.detach().clone()
    train, _ = loaders()
    penalty = lambda m: 10.0 * m[4].weight.square().sum()
    trainer = make_trainer(model, regularization=penalty)
    history = trainer.fit(train, epochs=1)
    assert torch.equal(model[0].weight, before)
    plain = make_trainer(toy_model()).fit(train, epochs=1)
    assert history[0]["loss"] > plain[0]["loss"] + 1.0  # the penalty is in the reported loss, as in Keras


def test_early_stopping_restores_best_weights_and_checkpoint_keeps_best(tmp_path):
    train, val = loaders()
    model = toy_model()
    # lr so large that the run diverges: the best epoch is early.
    stopper = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    best = ModelCheckpoint(monitor="val_loss", save_best_only=True)
    trainer = make_trainer(model, run_dir=tmp_path, callbacks=[best, stopper], lr=5.0)
    history = trainer.fit(train, val, epochs=30)
    assert len(history) < 30 and stopper.stopped_epoch == len(history) - 1
    losses = [row["val_loss"] for row in history]
    assert stopper.best_epoch == losses.index(min(losses))
    saved, meta = load_bundle(tmp_path / "best", model=toy_model(seed=5))
    assert meta["metrics"]["val_loss"] == min(losses)
    # The restored (final) weights are the best epoch's, i.e. those of the best checkpoint.
    assert all(torch.equal(a, b) for a, b in zip(saved.state_dict().values(), model.state_dict().values()))


def test_reduce_lr_on_plateau_and_terminate_on_nan():
    train, val = loaders()
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)
    history = make_trainer(toy_model(), callbacks=[cb], lr=0.04).fit(train, val, epochs=3)
    assert [r["learning_rate"] for r in history] == pytest.approx([0.04, 0.04, 0.02])  # epoch 1 sets the best
    x, y = toy_data()
    x[5] = float("nan")
    trainer = make_trainer(toy_model(), callbacks=[TerminateOnNaN()])
    history = trainer.fit(TensorLoader(x, y, 16), epochs=5)
    assert len(history) == 1 and trainer.stop_training


def test_bundle_round_trip_predicts_bit_for_bit(tmp_path):
    model = toy_model().eval()
    x = toy_data()[0][:10]
    before = model(x)
    save_bundle(tmp_path / "b", model, {"architecture": {"kind": "module"}, "classes": ["a", "b", "c", "d"]})
    loaded, meta = load_bundle(tmp_path / "b", model=toy_model(seed=3))
    assert torch.equal(loaded(x), before)
    assert meta["classes"] == ["a", "b", "c", "d"] and len(meta["weights_sha256"]) == 64
    # Rebuilding needs an architecture cnnlab knows.
    with pytest.raises(CnnlabError, match="cannot be rebuilt"):
        load_bundle(tmp_path / "b")
    # A damaged weights file is refused by its checksum.
    data = bytearray((tmp_path / "b/weights.safetensors").read_bytes())
    data[-1] ^= 1
    (tmp_path / "b/weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(CnnlabError, match="checksum"):
        load_bundle(tmp_path / "b", model=toy_model())


def test_resume_in_process_equals_uninterrupted(tmp_path):
    train, val = loaders()
    full = make_trainer(toy_model(), run_dir=tmp_path / "full", checkpoint_every=4,
                        callbacks=[EarlyStopping(patience=5)])
    torch.manual_seed(7)
    expected = full.fit(train, val, epochs=3)
    # Stop after 2 epochs, then resume a fresh trainer (fresh model with other init) to 3.
    part = make_trainer(toy_model(), run_dir=tmp_path / "part", checkpoint_every=4,
                        callbacks=[EarlyStopping(patience=5)])
    torch.manual_seed(7)
    part.fit(train, val, epochs=2)
    resumed = make_trainer(toy_model(seed=9), run_dir=tmp_path / "part", checkpoint_every=4,
                           callbacks=[EarlyStopping(patience=5)])
    torch.manual_seed(123)  # whatever the RNG now is, the state restores it
    assert resumed.fit(train, val, epochs=3, resume=True) == expected
    assert all(torch.equal(a, b) for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()))


def test_corrupted_newest_state_falls_back_to_previous_with_warning(tmp_path):
    train, _ = loaders()
    make_trainer(toy_model(), run_dir=tmp_path, checkpoint_every=2).fit(train, epochs=1)
    files = state_files(tmp_path)
    assert len(files) == 3
    files[-1].write_bytes(files[-1].read_bytes()[:100])  # half-written
    with pytest.warns(UserWarning, match="corrupted or half-written"):
        state, path = load_latest_state(tmp_path)
    assert path == files[-2] and state["global_step"] == 6 and state["step"] == 6


def test_resume_without_state_is_a_user_error(tmp_path):
    train, _ = loaders()
    with pytest.raises(CnnlabError, match="no training state"):
        make_trainer(toy_model(), run_dir=tmp_path).fit(train, epochs=1, resume=True)


def test_api_arguments_are_checked_by_errors_not_asserts(tmp_path):
    from cnnlab.train.state import seed_everything

    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    trainer = Trainer(model, make_loss("cce"), make_optimizer("sgd", model.parameters(), lr=0.1), device="cpu",
                      verbose=0)
    with pytest.raises(CnnlabError, match=r"^Trainer.save_bundle: the model's output head is not known yet"):
        trainer.save_bundle(tmp_path / "b")
    with pytest.raises(CnnlabError, match=r"^Trainer\(run_dir=...\): resume needs the run folder"):
        trainer.fit(TensorLoader(torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.long), 2), epochs=1, resume=True)
    with pytest.raises(CnnlabError, match=r"^seed: must be a whole number from 0 to 4294967295, got 4294967296"):
        seed_everything(2**32)


@pytest.mark.parametrize(("device", "message"), [
    ("gpu", "unknown device 'gpu'"), ("", "unknown device ''"), ("cpu:1", "unknown device 'cpu:1'"),
    (3, "must be a device name, got 3"),
])
def test_resolve_device_names_the_valid_values(device, message):
    from cnnlab.train.trainer import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    with pytest.raises(CnnlabError, match=rf"^--device: {message}.* Fix: use auto, cpu, cuda, cuda:N"):
        resolve_device(device, where="--device")
