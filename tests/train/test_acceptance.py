"""Acceptance figures of issue 7 (slow). The MNIST / Fashion-MNIST runs take two to four CPU
minutes each on two cores; they skip without ../shared/data."""

from __future__ import annotations

import pytest

import cnnlab



@pytest.mark.slow
def test_readme_default_run_on_shapes_reaches_95_percent(tmp_path):
    # The README's default command is `cnnlab train shapes`: only DATA, everything else picked.
    history = cnnlab.fit("shapes", out=tmp_path / "run", verbose=0)
    assert history.history["val_accuracy"][-1] >= 0.95  # the model the user gets, not the best epoch
    # Issue 15's pointing game on the same model: the CAM's maximum on the object's mask
    # (91.6-96.5 % over five trainings on the 1,000 test images, benchmarks/RESULTS.md; a
    # random point hits 13.9 %, the earlier auto model 46.6 %). The margin is for the seed
    # spread and for CPUs that train in fp32 instead of bf16.
    from cnnlab.data.shapes import generate_shapes
    from cnnlab.explain import cam

    images, labels, masks = generate_shapes(1000, seed=0, stream=1, masks=True)  # = load_shapes("test")
    model = cnnlab.load(tmp_path / "run")
    maps = cam(model, images, target=labels.tolist()).maps  # uint8 images, preprocessed the bundle's way
    peaks = maps.reshape(len(maps), -1).argmax(1)
    assert masks.reshape(len(masks), -1)[range(len(masks)), peaks].mean() >= 0.85


def _zoo_run(tmp_path, shared_data, name, source, **options):
    run = tmp_path / "run"
    cnnlab.fit(source, name, out=run, verbose=0, data_root=shared_data, **{"data.val_split": 0.0}, **options)
    from cnnlab.data.sources import open_dataset
    from cnnlab.inference.evaluate import evaluate_model

    model = cnnlab.load(run)
    test = open_dataset(source, split="test", root=shared_data)
    return evaluate_model(model, test)["accuracy"]


@pytest.mark.slow
def test_mnist_3conv_reaches_99_percent_on_mnist(tmp_path, shared_data):
    # Seed 003's plain SGD (lr 0.01, batch 32, 10 epochs, momentum 0.9) ends at 98.9 %: the
    # 94k-parameter net overfits. Small shifts and rotations plus one-cycle Adam: 99.1 %.
    accuracy = _zoo_run(tmp_path, shared_data, "mnist_3conv", "mnist", epochs=12, batch_size=64,
                        optimizer={"name": "adam", "lr": 3e-3}, schedule={"name": "onecycle"},
                        augment={"width_shift_range": 0.08, "height_shift_range": 0.08, "rotation_range": 8})
    assert accuracy >= 0.99


@pytest.mark.slow
def test_fashion_practice_net_reaches_90_5_percent(tmp_path, shared_data):
    accuracy = _zoo_run(tmp_path, shared_data, "fashion_mnist_practice", "fashion-mnist", epochs=8, batch_size=64,
                        optimizer={"name": "adam", "lr": 3e-3}, schedule={"name": "onecycle"})
    assert accuracy >= 0.905
