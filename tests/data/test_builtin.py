from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from cnnlab.data import open_dataset
from cnnlab.data.idx import read_idx, write_idx
from cnnlab.data.shapes import CLASSES, generate_shapes
from cnnlab.errors import CnnlabError


def _write_mnist(folder: Path, n_train: int = 5, n_test: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    train_x = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    train_y = rng.integers(0, 10, n_train).astype(np.uint8)
    write_idx(folder / "train-images-idx3-ubyte.gz", train_x)
    write_idx(folder / "train-labels-idx1-ubyte.gz", train_y)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", train_x[:n_test])
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", train_y[:n_test])
    return train_x, train_y


def test_idx_bytes_follow_the_format(tmp_path: Path):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3])
    assert raw[4:16] == bytes([0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3])
    assert raw[16:] == bytes(range(6))
    assert read_idx(path).tolist() == [[[0, 1, 2], [3, 4, 5]]]


def test_mnist_reads_tiny_idx_gz_files(tmp_path: Path):
    x, y = _write_mnist(tmp_path / "mnist")
    train = open_dataset("mnist", root=tmp_path)
    test = open_dataset("mnist", root=tmp_path, split="test")
    assert train.image_shape == (28, 28, 1) and len(train) == 5 and len(test) == 3
    assert np.array_equal(train.images[..., 0], x) and train.targets.tolist() == y.tolist()
    assert train.classes == [str(d) for d in range(10)]
    rgb = open_dataset("mnist", root=tmp_path, channels=3)  # gray -> RGB repeats the channel exactly
    assert rgb.image_shape == (28, 28, 3) and np.array_equal(rgb.images, np.repeat(x[..., None], 3, axis=-1))
    padded = open_dataset("mnist", root=tmp_path, image_size=(32, 32), channels=3)
    assert padded.image_shape == (32, 32, 3)
    big = padded.images.astype(np.int64)
    assert np.array_equal(big[..., 0], big[..., 1]) and np.array_equal(big[..., 0], big[..., 2])
    # bilinear resizing keeps each image's mean brightness (to within rounding and the border)
    assert np.abs(big[..., 0].mean((1, 2)) - x.astype(np.int64).mean((1, 2))).max() < 3


def test_truncated_idx_is_a_clear_error(tmp_path: Path):
    _write_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((2, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    (tmp_path / "mnist" / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(CnnlabError, match="truncated or damaged"):
        open_dataset("mnist", root=tmp_path)


def test_missing_builtin_files_say_where_to_put_them(tmp_path: Path):
    with pytest.raises(CnnlabError) as error:
        open_dataset("fashion-mnist", root=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "fashion-mnist") in message and "train-images-idx3-ubyte.gz" in message
    assert "http" in message and "--data" in message
    with pytest.raises(CnnlabError, match="cifar-10-python.tar.gz"):
        open_dataset("cifar10", root=tmp_path)


def _cifar_batch(images: np.ndarray, labels: list[int], key: bytes = b"labels") -> bytes:
    # The original layout: rows of 3072 bytes, the R plane, then G, then B.
    data = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    return pickle.dumps({b"batch_label": b"x", key: labels, b"data": data}, protocol=2)


def _add(tar: tarfile.TarFile, name: str, blob: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(blob)
    tar.addfile(info, io.BytesIO(blob))


def test_cifar10_python_archive_is_read_in_place(tmp_path: Path):
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8) for _ in range(6)]
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        for i in range(5):
            _add(tar, f"cifar-10-batches-py/data_batch_{i + 1}", _cifar_batch(batches[i], [i, 9 - i]))
        _add(tar, "cifar-10-batches-py/test_batch", _cifar_batch(batches[5], [3, 4]))
        _add(tar, "cifar-10-batches-py/batches.meta", pickle.dumps({b"label_names": names}, protocol=2))
    train = open_dataset("cifar10", root=tmp_path)
    test = open_dataset("cifar10", root=tmp_path, split="test")
    assert len(train) == 10 and len(test) == 2 and train.image_shape == (32, 32, 3)
    assert np.array_equal(train.images, np.concatenate(batches[:5]))
    assert train.targets.tolist() == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
    assert test.targets.tolist() == [3, 4] and train.classes[1] == "automobile"


def test_cifar100_folder_and_fine_labels(tmp_path: Path):
    folder = tmp_path / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    images = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    (folder / "train").write_bytes(_cifar_batch(images, [5, 99, 0], key=b"fine_labels"))
    (folder / "test").write_bytes(_cifar_batch(images[:1], [7], key=b"fine_labels"))
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}))
    train = open_dataset("cifar100", root=tmp_path)
    assert train.targets.tolist() == [5, 99, 0] and len(train.classes) == 100
    assert np.array_equal(train.images, images)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch SHOULD_NOT_EXIST",))


def test_cifar_reader_refuses_pickles_that_run_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "batches.meta").write_bytes(pickle.dumps(_Evil()))
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(b"")
    with pytest.raises(CnnlabError, match="refusing to load"):
        open_dataset("cifar10", root=tmp_path)
    assert not (tmp_path / "SHOULD_NOT_EXIST").exists()


def test_shapes_is_deterministic_balanced_and_splits_differ():
    a, la = generate_shapes(40, seed=3)
    b, lb = generate_shapes(40, seed=3)
    c, _ = generate_shapes(40, seed=3, stream=1)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)
    assert np.bincount(la).tolist() == [10, 10, 10, 10]
    train = open_dataset("shapes")
    again = open_dataset("shapes")  # second time from the cache
    assert train.classes == CLASSES and len(train) == 4000 and train.image_shape == (32, 32, 3)
    assert np.array_equal(train.images, again.images)
    assert len(open_dataset("shapes", split="test")) == 1000


def test_shapes_pixels_are_pinned():
    # Same seed, same set on any machine (guards the README's reproducibility). Labels
    # come from integer draws and are exact; pixels go through sin/cos, whose last bit
    # may differ between CPUs: a pixel may round one step the other way, so each image's
    # sum is pinned to +-16 (16 such pixels of 3,072) and two pixels exactly to +-1.
    images, labels = generate_shapes(8, seed=0)
    assert images.shape == (8, 32, 32, 3) and labels.tolist() == [2, 0, 3, 2, 1, 0, 1, 3]
    sums = images.astype(np.int64).reshape(8, -1).sum(1)
    expected = [562_904, 264_515, 401_205, 407_331, 408_565, 408_961, 298_821, 309_471]
    assert np.abs(sums - np.asarray(expected)).max() <= 16
    assert np.abs(images[0, 16, 16].astype(int) - [120, 219, 215]).max() <= 1
    assert np.abs(images[3, 5, 7].astype(int) - [209, 38, 170]).max() <= 1


@pytest.mark.shared_data
def test_real_mnist_and_fashion_counts(shared_data: Path):
    before = sorted(p.name for p in shared_data.iterdir())
    for name in ("mnist", "fashion-mnist"):
        train = open_dataset(name, root=shared_data)
        test = open_dataset(name, root=shared_data, split="test")
        assert (len(train), len(test)) == (60000, 10000)
        assert np.bincount(test.targets).tolist() == ([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
                                                     if name == "mnist" else [1000] * 10)
    assert sorted(p.name for p in shared_data.iterdir()) == before  # no cache written into the shared folder


@pytest.mark.shared_data
@pytest.mark.slow
def test_real_cifar10_jpeg_tree_counts(shared_data: Path):
    test = open_dataset("cifar10", root=shared_data, split="test")
    assert len(test) == 10000 and test.image_shape == (32, 32, 3)
    assert test.class_counts() == {name: 1000 for name in test.classes}
    assert test.classes[:3] == ["airplane", "automobile", "bird"] and not test.skipped
    assert not (shared_data / "cache").exists()  # the cache went to $CNNLAB_DATA, not the read-only folder


def test_read_only_data_root_keeps_its_files_and_caches_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kit):
    import stat

    from cnnlab.data import cache_dir

    root = tmp_path / "shared"
    kit.make_class_folder(root / "cifar10-jpeg" / "train", {"cat": 2})
    kit.make_class_folder(root / "cifar10-jpeg" / "test", {"cat": 1})
    root.chmod(stat.S_IRUSR | stat.S_IXUSR)  # read-only, like ../shared/data (root ignores it, cnnlab must not)
    try:
        before = kit.snapshot(root)
        assert cache_dir(root) == Path(os.environ["CNNLAB_DATA"]) / "cache"
        assert len(open_dataset("cifar10", root=root)) == 2
        assert kit.snapshot(root) == before
    finally:
        root.chmod(stat.S_IRWXU)
    writable = tmp_path / "mine"
    writable.mkdir()
    assert cache_dir(writable) == writable / "cache"
