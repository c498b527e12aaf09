from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.data import (Augment, BatchLoader, ImageSet, apply_split, make_preprocessing, open_dataset,
                         prepare_images, split_train_val)
from cnnlab.errors import CnnlabError


def tiny(n: int = 50, classes: int = 3) -> ImageSet:
    rng = np.random.default_rng(0)
    return ImageSet(data=rng.integers(0, 256, (n, 4, 5, 3), dtype=np.uint8),
                    targets=(np.arange(n) % classes).astype(np.int64),
                    classes=[f"c{i}" for i in range(classes)], task="classification")


def epoch_batches(loader: BatchLoader, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    loader.set_epoch(epoch)
    return list(loader)


def test_batches_cover_every_sample_once_normalised_to_unit_range():
    data = tiny()
    loader = BatchLoader(data, 16, shuffle=True, seed=0, device="cpu")
    assert len(loader) == 4
    batches = list(loader)
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert x.shape == (50, 3, 4, 5) and x.dtype == torch.float32 and y.dtype == torch.int64
    order = loader.order(0)
    assert sorted(order.tolist()) == list(range(50)) and order.tolist() != list(range(50))
    expected = torch.from_numpy(data.images[order]).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(x, expected) and torch.equal(y, torch.from_numpy(data.targets[order]))
    assert len(BatchLoader(data, 16, shuffle=False, drop_last=True)) == 3


def test_resumed_epoch_gives_the_same_batches_as_an_uninterrupted_run():
    data = tiny()
    aug = Augment(rotation_range=30, horizontal_flip=True, crop_padding=1)
    straight = BatchLoader(data, 8, shuffle=True, seed=7, augment=aug)
    runs = [list(straight) for _ in range(3)]  # epochs 0, 1, 2 back to back
    assert straight.epoch == 3
    resumed = BatchLoader(data, 8, shuffle=True, seed=7, augment=aug)
    again = epoch_batches(resumed, 2)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(runs[2], again))
    assert not torch.equal(runs[0][0][1], runs[1][0][1])  # epochs differ
    mid = list(resumed.iter_epoch(1, start_batch=3))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(runs[1][3:], mid)) and len(mid) == len(runs[1]) - 3
    other_seed = BatchLoader(data, 8, shuffle=True, seed=8, augment=aug)
    assert not torch.equal(next(iter(other_seed))[1], runs[0][0][1])


def test_host_gather_path_equals_resident_path():
    data = tiny().subset(np.arange(5, 45))
    a = list(BatchLoader(data, 7, shuffle=True, seed=1))
    b = list(BatchLoader(data, 7, shuffle=True, seed=1, resident_limit_bytes=0))
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b))


def test_standardisation_and_rescale():
    data = tiny()
    pre = make_preprocessing(data, standardize=True)
    x = torch.cat([b[0] for b in BatchLoader(data, 64, shuffle=False, preprocessing=pre)])
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    raw = BatchLoader(data, 64, shuffle=False, augment=Augment(rescale=1.0))  # Keras rescale=1: 0..255
    x = next(iter(raw))[0]
    assert raw.preprocessing["scale"] == 1.0
    assert torch.allclose(x, torch.from_numpy(data.images).permute(0, 3, 1, 2).float(), atol=1e-4)
    assert json.loads(json.dumps(pre)) == pre


def test_ranks_partition_an_epoch():
    data = tiny(10, classes=10)  # target == position: batches name their samples
    seen = []
    batches = []
    for rank in range(3):
        loader = BatchLoader(data, 2, shuffle=True, seed=3, rank=rank, world_size=3)
        assert len(loader) == 2  # every rank runs the single-process count of global batches of 6
        assert [loader.global_batch_size(b) for b in range(2)] == [6, 4]
        seen.extend(loader.order(0).tolist())
        batches.append([y.tolist() for _, y in loader.iter_epoch(0)])
    # Exactly once each (no padding); the last global batch of 4 leaves rank 2 one empty batch.
    assert sorted(seen) == list(range(10))
    assert [len(b) for rank in batches for b in rank] == [2, 2, 2, 1, 2, 1]
    single = [y.tolist() for _, y in BatchLoader(data, 6, shuffle=True, seed=3).iter_epoch(0)]
    for b in range(2):  # the ranks' batch b together is the one-process batch b
        assert sorted(sum((rank[b] for rank in batches), [])) == sorted(single[b])
    # 4 ranks, last global batch of 2: ranks 2 and 3 get an empty batch of the right shape.
    last = [list(BatchLoader(data, 2, shuffle=False, rank=r, world_size=4).iter_epoch(0))[-1] for r in range(4)]
    assert [tuple(x.shape) for x, _ in last] == [(1, 3, 4, 5), (1, 3, 4, 5), (0, 3, 4, 5), (0, 3, 4, 5)]
    assert [y.tolist() for _, y in last] == [[8], [9], [], []]
    with pytest.raises(CnnlabError, match="fewer than the 11 processes"):
        BatchLoader(data, 2, shuffle=False, rank=0, world_size=11)


def test_prepare_images_at_predict_time_matches_the_loader(tmp_path: Path, kit):
    kit.make_class_folder(tmp_path / "set", {"a": 2, "b": 1}, size=(10, 6))
    data = open_dataset(str(tmp_path / "set"), image_size=(5, 4))
    pre = make_preprocessing(data, standardize=True)
    x, _ = next(iter(BatchLoader(data, 3, shuffle=False, preprocessing=pre)))
    files = [tmp_path / "set" / f for f in data.files]
    assert torch.allclose(prepare_images(files, pre), x)
    assert torch.allclose(prepare_images([np.asarray(data.images[0])], pre), x[:1])
    with pytest.raises(CnnlabError, match="cannot use this image"):
        (tmp_path / "bad.png").write_text("no")
        prepare_images([tmp_path / "bad.png"], pre)


def test_stratified_split_is_seeded_and_reapplied_from_its_record(tmp_path: Path, kit):
    data = tiny(60)
    train, val, record = split_train_val(data, 0.2, seed=4)
    assert len(train) == 48 and val.class_counts() == {"c0": 4, "c1": 4, "c2": 4}
    same_train, same_val = apply_split(data, json.loads(json.dumps(record)))
    assert np.array_equal(same_val.targets, val.targets) and np.array_equal(same_val.images, val.images)
    _, other, _ = split_train_val(data, 0.2, seed=5)
    assert not np.array_equal(other.images, val.images)
    assert set(record) == {"version", "fraction", "seed", "n", "task", "val_indices"}
    with pytest.raises(CnnlabError, match="for 60 images, this set has 59"):
        apply_split(tiny(59), record)


def test_split_of_a_folder_is_by_file_and_survives_new_files(tmp_path: Path, kit):
    root = kit.make_class_folder(tmp_path / "set", {"a": 5, "b": 5})
    train, val, record = split_train_val(open_dataset(str(root)), 0.4, seed=0)
    assert len(record["val_files"]) == 4 and all(f in val.files for f in record["val_files"])
    kit.save(root / "a" / "zzz.png", __import__("PIL.Image").Image.fromarray(kit.noise(8, 8, 50)))
    train2, val2 = apply_split(open_dataset(str(root)), record)
    assert val2.files == val.files and len(train2) == len(train) + 1
    (root / val.files[0]).unlink()
    with pytest.raises(CnnlabError, match="validation file"):
        apply_split(open_dataset(str(root)), record)


def test_regression_split_and_bad_fraction():
    data = ImageSet(data=np.zeros((10, 2, 2, 1), np.uint8), targets=np.arange(10, dtype=np.float32), classes=None,
                    task="regression")
    train, val, _ = split_train_val(data, 0.3, seed=0)
    assert (len(train), len(val)) == (7, 3) and val.targets.dtype == np.float32
    with pytest.raises(CnnlabError, match="between 0 and 1"):
        split_train_val(data, 1.0, seed=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_equal_cpu_batches():
    data = tiny(40)
    aug = Augment(rotation_range=20, zoom_range=0.1, horizontal_flip=True, crop_padding=2, brightness_range=(0.8, 1.2))
    cpu = list(BatchLoader(data, 16, shuffle=True, seed=2, augment=aug, device="cpu"))
    gpu = list(BatchLoader(data, 16, shuffle=True, seed=2, augment=aug, device="cuda"))
    host = list(BatchLoader(data, 16, shuffle=True, seed=2, augment=aug, device="cuda", resident_limit_bytes=0))
    for (xc, yc), (xg, yg), (xh, yh) in zip(cpu, gpu, host):
        assert xg.device.type == "cuda" and yg.device.type == "cuda"
        assert torch.equal(yc, yg.cpu()) and torch.equal(yg, yh)
        assert torch.allclose(xc, xg.cpu(), atol=1e-4) and torch.equal(xg, xh)


def _labelled(targets: list[int], classes: list[str]) -> ImageSet:
    n = len(targets)
    return ImageSet(data=np.zeros((n, 2, 2, 1), np.uint8), targets=np.asarray(targets, np.int64), classes=classes,
                    task="classification", files=[f"{classes[t]}/{i}.png" for i, t in enumerate(targets)])


def test_a_saved_split_that_leaves_a_class_without_training_images_is_refused():
    imageset = _labelled([0, 0, 0, 1, 1], ["a", "b"])
    record = {"version": 1, "fraction": 0.5, "seed": 0, "n": 5, "task": "classification",
              "val_files": ["b/3.png", "b/4.png"]}  # every 'b' image in validation
    with pytest.raises(CnnlabError, match=r"^validation split: the split leaves class\(es\) b with no training image"):
        apply_split(imageset, record)
    record["val_files"] = [f"{c}/{i}.png" for i, c in enumerate("aaabb")]
    with pytest.raises(CnnlabError, match="leaves no training image"):
        apply_split(imageset, record)
    bad = {"version": 1, "n": 5, "val_indices": [0, 7]}
    with pytest.raises(CnnlabError, match=r"'val_indices' must be positions 0 \.\. 4"):
        apply_split(ImageSet(data=imageset.data, targets=imageset.targets, classes=["a", "b"], task="classification"),
                    bad)
    train, val = apply_split(imageset, {**record, "val_files": ["a/0.png", "b/3.png"]})
    assert train.targets.tolist() == [0, 0, 1] and val.targets.tolist() == [0, 1]


def test_split_arguments_are_checked():
    imageset = _labelled([0, 0, 1, 1], ["a", "b"])
    with pytest.raises(CnnlabError, match="^validation_split: validation fraction must be between 0 and 1"):
        split_train_val(imageset, "0.2", 0)
    with pytest.raises(CnnlabError, match="^seed: must be a whole number"):
        split_train_val(imageset, 0.5, -3)


def test_a_set_opened_with_another_sets_classes_keeps_their_indices(tmp_path):
    from PIL import Image

    for name in ("a", "c"):
        (tmp_path / "val" / name).mkdir(parents=True)
        Image.fromarray(np.full((4, 4, 3), 9, np.uint8)).save(tmp_path / "val" / name / "0.png")
    val = open_dataset(str(tmp_path / "val"), classes=["a", "b", "c"])
    assert val.classes == ["a", "b", "c"] and val.targets.tolist() == [0, 2]
    own = open_dataset(str(tmp_path / "val"))
    assert own.classes == ["a", "c"] and own.targets.tolist() == [0, 1]
    with pytest.raises(CnnlabError, match=r"has class\(es\) the training set lacks: c Fix: use only the training "
                                          r"set's classes \(a, b\)"):
        open_dataset(str(tmp_path / "val"), classes=["a", "b"])
